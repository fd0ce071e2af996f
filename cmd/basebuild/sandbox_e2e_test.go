package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/sentinel"
	"github.com/basebuild/basebuild/internal/testenv"
)

// TestSandboxHostileRepo builds bookworm through the binary with a signed
// third-party repository whose package's maintainer scripts, and a
// --customize hook, attack the host the way a hostile package would: they
// know where basebuild's registry credentials are, that its environment
// holds a proxy password, and that a service listens on host loopback.
// Each attack runs (markers prove it) and reaches nothing: the host's
// files are unchanged, no connection arrives, no process outlives the
// build, and the secrets are in no output.
func TestSandboxHostileRepo(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	bin := testenv.Binary(t)
	ts := time.Now().UTC().Format("20060102T150405Z")
	work := t.TempDir()
	before := hostState(t, work)

	const secret = "s3cr3t-c0nfined"
	hostDir := t.TempDir()
	dockerDir := filepath.Join(hostDir, "docker")
	if err := os.Mkdir(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dockerConfig := filepath.Join(dockerDir, "config.json")
	if err := os.WriteFile(dockerConfig, []byte(`{"auths":{"registry.example":{"auth":"`+secret+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	listener := sentinel.Listen(t)
	port := listener.Port
	const leftover = "31337" // sleep's argument, to find a survivor by

	attack := fmt.Sprintf(`#!/bin/bash
who=$1
for d in /proc/[0-9]*; do
	echo pwned > $d/root%[1]s/via-proc-$who 2>/dev/null
	cat $d/root%[2]s >> /root/stolen 2>/dev/null
	tr '\0' '\n' < $d/environ >> /root/stolen 2>/dev/null
	nsenter -t ${d#/proc/} -m -p -- /bin/sh -c "echo pwned > %[1]s/nsenter-$who" 2>/dev/null
done
cat %[2]s >> /root/stolen 2>/dev/null
echo pwned > %[1]s/abs-$who 2>/dev/null
echo hi 2>/dev/null > /dev/tcp/127.0.0.1/%[3]s
unshare -m true 2>/dev/null && echo mount-namespace >> /root/escapes
unshare -U -r true 2>/dev/null && echo user-namespace >> /root/escapes
mount -t tmpfs none /mnt 2>/dev/null && echo mounted >> /root/escapes
setsid sh -c 'exec sleep %[4]s' </dev/null >/dev/null 2>&1 &
grep -E '^(CapBnd|NoNewPrivs|Seccomp):' /proc/self/status > /usr/share/evil/status-$who
echo ran > /usr/share/evil/ran-$who
exit 0
`, hostDir, dockerConfig, port, leftover)
	evil := apttest.NewAt(t, "127.0.0.2:0", apttest.Suite{Archive: "evil", Name: "bookworm", Origin: "Evil", Label: "Evil",
		Debs: []apttest.Deb{{Name: "evil", Version: "1.0", Arch: "all",
			Fields:  map[string]string{"Priority": "optional", "Depends": "bash, util-linux"},
			Files:   []apttest.File{{Path: "usr/share/evil/attack", Mode: 0o755, Body: attack}},
			Scripts: map[string]string{"postinst": "#!/bin/sh\nexec /usr/share/evil/attack postinst\n"},
		}}})
	repo := "deb [signed-by=" + evil.KeyringPath + "] " + evil.URL("evil") + " bookworm main"
	out := filepath.Join(work, "out")
	report := filepath.Join(work, "report.json")
	cmd := exec.Command(bin, "--suite", "bookworm", "--arch", "amd64", "--snapshot", ts, "--snapshot-server", server,
		"--cache-dir", sharedCache, "--repo", repo, "--include", "evil",
		"--customize", "/usr/share/evil/attack hook", "--output", "oci:"+out, "--report", report)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerDir, "BASEBUILD_TEST_SECRET="+secret,
		"https_proxy=http://user:"+secret+"@proxy.invalid:3128")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("basebuild: %v\n%s", err, stderr.Bytes())
	}

	files := imageFiles(t, out)
	for _, who := range []string{"postinst", "hook"} {
		if files["usr/share/evil/ran-"+who] != "ran\n" {
			t.Fatalf("the %s attack did not run to its end", who)
		}
		status := files["usr/share/evil/status-"+who]
		for _, want := range []string{"CapBnd:\t00000000800405fb", "NoNewPrivs:\t1", "Seccomp:\t2"} {
			if !strings.Contains(status, want) {
				t.Errorf("%s ran with %q, want %s", who, status, want)
			}
		}
	}
	if esc := files["root/escapes"]; esc != "" {
		t.Errorf("the sandbox allowed: %s", esc)
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 1 {
		t.Errorf("the attacks wrote into the host's %s: %v", hostDir, entries)
	}
	if n := listener.Accepted(); n != 0 {
		t.Errorf("%d connections reached a host loopback listener", n)
	}
	for name, data := range files {
		if strings.Contains(data, secret) {
			t.Errorf("the image's /%s holds the secret", name)
		}
	}
	rep, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for what, data := range map[string][]byte{"report": rep, "stdout": stdout.Bytes(), "stderr": stderr.Bytes()} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the %s holds the secret", what)
		}
	}
	// No process of the build outlives it.
	deadline := time.Now().Add(5 * time.Second)
	for survivorsOf(leftover) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a process the attack started (sleep %s) outlived the build by 5 s", leftover)
		}
		time.Sleep(50 * time.Millisecond)
	}
	hostUnchanged(t, before, hostState(t, work))
}

// survivorsOf counts the host's processes whose command line is "sleep arg".
func survivorsOf(arg string) int {
	n := 0
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		if data, err := os.ReadFile(p); err == nil && string(data) == "sleep\x00"+arg+"\x00" {
			n++
		}
	}
	return n
}

// imageFiles reads the regular files of the single-layer image in the OCI
// layout dir.
func imageFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) == 0 {
		t.Fatalf("index: %v", err)
	}
	img, err := p.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				data, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				files[strings.TrimPrefix(h.Name, "./")] = string(data)
			}
		}
		rc.Close()
	}
	return files
}

// TestSandboxEpochSymlink: a package that ships ./debuerreotype-epoch as a
// symlink to a host file fails the build in one line, and the host file
// is untouched (basebuild writes the epoch there before configuring).
func TestSandboxEpochSymlink(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	bin := testenv.Binary(t)
	ts := time.Now().UTC().Format("20060102T150405Z")
	work := t.TempDir()
	target := filepath.Join(t.TempDir(), "host-file")
	if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	evil := apttest.NewAt(t, "127.0.0.2:0", apttest.Suite{Archive: "evil", Name: "bookworm", Origin: "Evil",
		Debs: []apttest.Deb{{Name: "evil-epoch", Version: "1.0", Arch: "all",
			Fields: map[string]string{"Priority": "optional"},
			Files:  []apttest.File{{Path: "debuerreotype-epoch", Type: tar.TypeSymlink, Linkname: target}},
		}}})
	repo := "deb [signed-by=" + evil.KeyringPath + "] " + evil.URL("evil") + " bookworm main"
	out := filepath.Join(work, "out")
	cmd := exec.Command(bin, "--suite", "bookworm", "--arch", "amd64", "--snapshot", ts, "--snapshot-server", server,
		"--cache-dir", sharedCache, "--repo", repo, "--include", "evil-epoch", "--output", "oci:"+out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("got %v, want exit status 1\n%s", err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "debuerreotype-epoch") {
		t.Errorf("last line of stderr %q does not name debuerreotype-epoch", last)
	}
	if data, err := os.ReadFile(target); err != nil || string(data) != "keep\n" {
		t.Errorf("host file %s: %q, %v; want it untouched", target, data, err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written", out)
	}
}
