package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/basebuild/basebuild/internal/faultproxy"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
)

// transientFaults fault every third first attempt in every way a client
// should retry through.
var transientFaults = faultproxy.EveryNth(3, faultproxy.Reset, faultproxy.Status500, faultproxy.Truncate, faultproxy.Slow)

func faultProxy(t *testing.T, upstream string, s faultproxy.Schedule) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(upstream, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// checkCache fails t unless every entry under cache/sha256 hashes to its
// name and no temporary file is left in the cache.
func checkCache(t *testing.T, cache string) {
	t.Helper()
	for _, sub := range []string{"sha256", "url"} {
		entries, err := os.ReadDir(filepath.Join(cache, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			p := filepath.Join(cache, sub, e.Name())
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("cache: temporary file left: %s", p)
				continue
			}
			if sub != "sha256" {
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != e.Name() {
				t.Errorf("cache: bad entry %s: content hashes to %s", p, got)
			}
		}
	}
	// The data cache: whole entries only, each of a cached deb.
	entries, err := os.ReadDir(filepath.Join(cache, "data"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(cache, "data", e.Name())
		sum, ok := strings.CutSuffix(e.Name(), ".tar.zst")
		if !ok || len(sum) != 64 {
			t.Errorf("cache: not a data entry: %s", p)
			continue
		}
		if _, err := os.Stat(filepath.Join(cache, "sha256", sum)); err != nil {
			t.Errorf("cache: data entry %s of no cached deb", p)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := zstd.NewReader(f)
		if err == nil {
			_, err = io.Copy(io.Discard, zr)
			zr.Close()
		}
		f.Close()
		if err != nil {
			t.Errorf("cache: damaged data entry %s: %v", p, err)
		}
	}
}

// checkNoLeftovers fails t if dir holds anything but keep: the hidden
// temporary files outputs and --rootfs write beside their destination,
// basebuild-* temporary directories, or a partial destination.
func checkNoLeftovers(t *testing.T, dir string, keep ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) {
			t.Errorf("left behind in %s: %s", dir, e.Name())
		}
	}
}

// oneLineError fails t unless err is a one-line error containing want.
func oneLineError(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, want) {
		t.Errorf("%s: error %q, want one line naming %q", what, msg, want)
	}
}

// TestFaultsDryRun resolves bookworm through a proxy that resets, fails,
// truncates and slows down requests: retries get the same package list as
// a direct run, and the cache holds only good entries.
func TestFaultsDryRun(t *testing.T) {
	server := testenv.SnapshotServer(t)
	args := []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot, "--dry-run"}
	want, stderr, err := runCLI(t, append(args, "--snapshot-server", server, "--cache-dir", t.TempDir())...)
	if err != nil {
		t.Fatalf("direct: %v\n%s", err, stderr)
	}
	p := faultProxy(t, server, transientFaults)
	cache := t.TempDir()
	got, stderr, err := runCLI(t, append(args, "--snapshot-server", p.URL, "--cache-dir", cache)...)
	if err != nil {
		t.Fatalf("through faults: %v\n%s", err, stderr)
	}
	if got != want {
		t.Errorf("through faults the package list differs:\n%s", lineDiff(want, got))
	}
	if inj := p.Injected(); len(inj) == 0 {
		t.Errorf("no fault injected in %d requests", p.Requests())
	}
	checkCache(t, cache)

	// Wrong bytes in every answer: the signature check fails, in one
	// line, and nothing enters the cache.
	bad := faultProxy(t, server, func(*http.Request, int, int) faultproxy.Fault { return faultproxy.Corrupt })
	cache = t.TempDir()
	_, _, err = runCLI(t, append(args, "--snapshot-server", bad.URL, "--cache-dir", cache)...)
	oneLineError(t, "corrupted InRelease", err, "InRelease")
	checkCache(t, cache)
	for _, sub := range []string{"sha256", "url"} {
		if entries, _ := os.ReadDir(filepath.Join(cache, sub)); len(entries) > 0 {
			t.Errorf("cache/%s holds %d entries after corrupted answers", sub, len(entries))
		}
	}
}

// TestFaultsCorruptDebs builds, through the binary, from a proxy that
// corrupts every .deb: the build fails in one line naming the mismatch,
// the cache holds no bad entry, and neither the destination nor any
// temporary file (nor its tmpfs) is left.
func TestFaultsCorruptDebs(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	p := faultProxy(t, server, func(r *http.Request, _, _ int) faultproxy.Fault {
		if strings.HasSuffix(r.URL.Path, ".deb") {
			return faultproxy.Corrupt
		}
		return faultproxy.None
	})
	work, tmp := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)
	cache := filepath.Join(work, "cache")
	_, _, err := runBinary(t, "--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
		"--snapshot-server", p.URL, "--cache-dir", cache,
		"--output", "oci:"+filepath.Join(work, "layout"), "--output", "docker-archive:"+filepath.Join(work, "image.tar"),
		"--rootfs", filepath.Join(work, "rootfs"))
	oneLineError(t, "corrupted debs", err, "sha256 mismatch")
	checkCache(t, cache)
	checkNoLeftovers(t, work, "cache")
	checkNoLeftovers(t, tmp)
}

// TestFaultsConcurrentBuilds runs two cold builds at once through a
// faulty proxy, sharing one cache: both get through with the same digest,
// the cache holds only good entries, and the host is unchanged outside
// the builds' directories.
func TestFaultsConcurrentBuilds(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	bin := testenv.Binary(t)
	p := faultProxy(t, server, transientFaults)
	work := t.TempDir()
	cache := filepath.Join(work, "cache")
	before := hostState(t, work)

	var wg sync.WaitGroup
	digests := make([]string, 2)
	for i := range digests {
		dir := filepath.Join(work, string(rune('a'+i)))
		if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			cmd := exec.Command(bin, "--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
				"--snapshot-server", p.URL, "--cache-dir", cache, "--output", "oci:"+filepath.Join(dir, "layout"))
			cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Errorf("build %d: %v\n%s", i, err, lastLines(stderr.String(), 20))
				return
			}
			digests[i] = lastLine(stdout.String())
			checkNoLeftovers(t, dir, "layout", "tmp")
			checkNoLeftovers(t, filepath.Join(dir, "tmp"))
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if digests[0] != digests[1] || !strings.HasPrefix(digests[0], "sha256:") {
		t.Errorf("two builds sharing a cache: digests %q and %q", digests[0], digests[1])
	}
	if inj := p.Injected(); len(inj) == 0 {
		t.Errorf("no fault injected in %d requests", p.Requests())
	}
	t.Logf("%d requests, faults injected: %v", p.Requests(), p.Injected())
	checkCache(t, cache)
	hostUnchanged(t, before, hostState(t, work))
}

// hostState records what a build must not change on the host: a sentinel
// directory beside the test's, /etc, and the mounts of this process and of
// init that are of the kinds a chroot makes or lie under work (where the
// builds' directories are).
func hostState(t *testing.T, work string) map[string]string {
	t.Helper()
	state := map[string]string{}
	sentinel := filepath.Join(filepath.Dir(work), "sentinel")
	if err := os.MkdirAll(sentinel, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sentinel, "file")); err != nil {
		if err := os.WriteFile(filepath.Join(sentinel, "file"), []byte("sentinel\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, root := range []string{sentinel, "/etc"} {
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				state[p] = "error: " + err.Error()
				return nil
			}
			state[p] = fi.Mode().String() + " " + fi.ModTime().String()
			if fi.Mode().IsRegular() {
				state[p] += " " + fmt.Sprint(fi.Size())
			}
			return nil
		})
	}
	for _, table := range []string{"/proc/self/mountinfo", "/proc/1/mountinfo"} {
		data, err := os.ReadFile(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			i := slices.Index(f, "-")
			if len(f) < 5 || i < 0 || i+1 >= len(f) {
				continue
			}
			point, fstype := f[4], f[i+1]
			switch {
			case strings.HasPrefix(point, work), fstype == "proc", fstype == "sysfs", fstype == "devpts":
				state[table+" "+point+" "+fstype] = strings.Join(f[:4], " ") // ids and root: a remount shows
			}
		}
	}
	return state
}

// hostUnchanged fails t for each difference between two hostStates.
func hostUnchanged(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if w, ok := after[k]; !ok {
			t.Errorf("host changed: %s is gone", k)
		} else if w != v {
			t.Errorf("host changed: %s: %s, was %s", k, w, v)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("host changed: %s is new", k)
		}
	}
}

// TestFaultsPush pushes, from the binary, through a proxy in front of the
// registry: through transient faults the push succeeds; when every
// uploaded blob arrives corrupted it fails in one line and the tag stays
// where it was.
func TestFaultsPush(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	registry := testenv.Registry(t)
	t.Setenv("TMPDIR", t.TempDir())
	common := []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
		"--snapshot-server", server, "--cache-dir", sharedCache}
	// A new repository each run, so that the blobs must be uploaded.
	repo := fmt.Sprintf("/faults-%d/debian:bookworm", time.Now().UnixNano())
	// A push retries whole attempts, a few seconds apart: a few faults
	// spread over them, each of which fails one attempt (but Slow).
	faults := map[int]faultproxy.Fault{2: faultproxy.Slow, 3: faultproxy.Reset, 9: faultproxy.Status500, 20: faultproxy.Truncate}
	p := faultProxy(t, registry, func(_ *http.Request, n, _ int) faultproxy.Fault { return faults[n] })
	out, stderr, err := runBinary(t, append(common, "--push", p.Host+repo)...)
	if err != nil {
		t.Fatalf("push through faults: %v\n%s", err, lastLines(stderr, 20))
	}
	digest := lastLine(out)
	t.Logf("%d requests, faults injected: %v", p.Requests(), p.Injected())
	if len(p.Injected()) < len(faults) {
		t.Errorf("no fault injected in %d requests", p.Requests())
	}
	tagged := func() string {
		src, err := oci.Open(t.Context(), registry+repo, true)
		if err != nil {
			t.Fatalf("read %s: %v", registry+repo, err)
		}
		return src.Digest.String()
	}
	if got := tagged(); got != digest {
		t.Errorf("registry has %s, basebuild printed %s", got, digest)
	}

	// Another image (zstd: new layer blob) whose uploads all arrive with
	// wrong bytes: the registry refuses them, and the tag does not move.
	bad := faultProxy(t, registry, func(r *http.Request, _, _ int) faultproxy.Fault {
		if r.Method == http.MethodPatch || r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			return faultproxy.CorruptRequest
		}
		return faultproxy.None
	})
	_, _, err = runBinary(t, append(common, "--compression", "zstd", "--push", bad.Host+repo)...)
	t.Logf("corrupted push: %v", err)
	oneLineError(t, "push of corrupted blobs", err, "push")
	if got := tagged(); got != digest {
		t.Errorf("after a failed push the tag moved from %s to %s", digest, got)
	}
	checkNoLeftovers(t, os.Getenv("TMPDIR"))
}
