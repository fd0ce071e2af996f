package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
)

// TestReproducible builds bookworm twice, as separate processes that
// differ in everything reprotest varies and basebuild does not take as an
// input: cold vs warm cache, TZ, umask, LANG and LC_ALL, working and
// output directory, --jobs, hostname (the second runs in its own UTS
// namespace) and the wall-clock time. The digests and layers must match.
func TestReproducible(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	testenv.LookPath(t, "unshare")
	bin := testenv.Binary(t)
	hostname, _ := os.Hostname()
	type variant struct {
		name, cache, umask, hostname string
		env                          []string
		jobs                         string
		unshare                      bool
	}
	variants := []variant{
		{name: "cold", cache: t.TempDir(), umask: "022", jobs: "1",
			env: []string{"TZ=UTC", "LANG=C", "LC_ALL=C"}},
		{name: "warm", cache: sharedCache, umask: "077", jobs: "8", hostname: "reprotest-" + hostname, unshare: true,
			env: []string{"TZ=Pacific/Kiritimati", "LANG=fr_FR.UTF-8", "LC_ALL=tr_TR.UTF-8"}},
	}
	var digests []string
	var layouts []string
	for _, v := range variants {
		work := filepath.Join(t.TempDir(), v.name, "deeper")
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
		layout := filepath.Join(work, "out-"+v.name)
		args := []string{bin, "--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
			"--snapshot-server", server, "--cache-dir", v.cache, "--jobs", v.jobs, "--output", "oci:" + layout}
		script := "umask " + v.umask + "; exec " + shellQuote(args)
		if v.unshare {
			script = "hostname " + v.hostname + " && " + script
		}
		cmd := exec.Command("sh", "-c", script)
		if v.unshare {
			cmd = exec.Command("unshare", "--uts", "sh", "-c", script)
		}
		cmd.Dir = work
		cmd.Env = append(os.Environ(), v.env...)
		cmd.Env = append(cmd.Env, "TMPDIR="+work)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s build: %v\n%s", v.name, err, lastLines(stderr.String(), 20))
		}
		digests = append(digests, lastLine(stdout.String()))
		layouts = append(layouts, layout)
	}
	t.Logf("digests: %s", digests)
	if digests[0] == digests[1] {
		return
	}
	t.Errorf("two builds of the same inputs: %s != %s", digests[0], digests[1])
	var trees []map[string]oci.Entry
	for _, l := range layouts {
		src, err := oci.Open(t.Context(), "oci:"+l+":bookworm", false)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := src.Image.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%d layers, %v", len(layers), err)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tree, err := oci.ReadTar(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, tree)
	}
	for _, d := range oci.Compare(trees[0], trees[1]) {
		t.Errorf("cold (A) and warm (B) layers differ: %s", d)
	}
}

// shellQuote quotes args for sh.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
