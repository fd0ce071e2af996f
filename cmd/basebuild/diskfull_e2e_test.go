package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/plan"
)

// mountTmpfs mounts a tmpfs of size (as mount's size= option), mode 0755
// (a cache writable by others is refused), at a new
// directory and unmounts it when t ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// resize changes the size of the tmpfs at dir.
func resize(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s size=%s: %v: %s", dir, size, err, out)
	}
}

// checkSets fails t unless every resolved set remembered in cache reads
// back and no temporary file is left beside them.
func checkSets(t *testing.T, cache string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(cache, "sets"))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(cache, "sets", e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("cache: temporary file left: %s", p)
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = plan.Read(f)
		f.Close()
		if err != nil {
			t.Errorf("cache: bad set %s: %v", p, err)
		}
	}
}

// TestDiskFull runs out of space, in turn, in the cache (while it takes
// the indexes, then the debs), on the outputs' filesystem (an OCI layout,
// a docker archive) and in TMPDIR (while the rootfs is unpacked, then
// while the layer is written): each build must exit 1 with a one-line
// error naming the problem, leave only good entries in the cache, and no
// partial output, temporary file or mount; then, with enough space, the
// same filesystems take a build.
func TestDiskFull(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	bin := testenv.Binary(t)
	// One tmpfs each for the cache, the outputs and TMPDIR, shrunk in
	// turn; each case starts from what the previous ones left.
	cacheFS, outFS, tmpFS := mountTmpfs(t, "5m"), mountTmpfs(t, "20m"), mountTmpfs(t, "20m")
	cases := []struct {
		name string
		fs   string // the tmpfs that runs full
		size string
		// output, if not "": the --output, in outFS. Else the image goes
		// to a layout on the real disk, which the build never reaches.
		output string
	}{
		// The bookworm indexes take some 9 MB, the debs some 40 MB.
		{name: "cache-indexes", fs: cacheFS, size: "5m"},
		{name: "cache-debs", fs: cacheFS, size: "15m"},
		// The layer is some 50 MB.
		{name: "oci", fs: outFS, size: "20m", output: "oci:" + filepath.Join(outFS, "layout")},
		{name: "docker-archive", fs: outFS, size: "20m", output: "docker-archive:" + filepath.Join(outFS, "img.tar")},
		// The rootfs is some 130 MB, built in TMPDIR with the layer.
		{name: "tmpdir-rootfs", fs: tmpFS, size: "20m"},
		{name: "tmpdir-layer", fs: tmpFS, size: "150m"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resize(t, c.fs, c.size)
			work := t.TempDir()
			cache, tmp := sharedCache, t.TempDir()
			if c.fs == cacheFS {
				cache = cacheFS
			}
			if c.fs == tmpFS {
				tmp = tmpFS
			}
			output := c.output
			if output == "" {
				output = "oci:" + filepath.Join(work, "layout")
			}
			args := []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
				"--snapshot-server", server, "--cache-dir", cache, "--output", output}
			if c.fs == tmpFS {
				// The tree and the layer in TMPDIR, not in basebuild's tmpfs.
				args = append(args, "--tmpfs=false")
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1 for a full %s:\n%s", err, c.fs, lastLines(string(out), 10))
			}
			last := lastLine(string(out))
			if !strings.HasPrefix(last, "basebuild: ") || !strings.Contains(strings.ToLower(last), "no space left on device") {
				t.Errorf("last line of stderr %q is not a one-line error naming \"no space left on device\":\n%s", last, lastLines(string(out), 10))
			}
			t.Logf("%s full: %s", c.name, last)
			mounts, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			for _, dir := range []string{work, tmp, outFS} {
				if strings.Contains(string(mounts), " "+dir+"/") {
					t.Errorf("mounts left under %s", dir)
				}
			}
			if cache == cacheFS {
				checkCache(t, cache)
				checkSets(t, cache)
				checkNoLeftovers(t, cache, "sha256", "url", "sets", "data")
				// Unpacking starts as the first debs arrive: the data
				// cache may hold theirs, each complete, and nothing else.
				checkData(t, cache)
			}
			checkNoLeftovers(t, work)
			checkNoLeftovers(t, tmp)
			checkNoLeftovers(t, outFS)
		})
	}
	if t.Failed() {
		return
	}

	// By default the tree and the layer are in basebuild's own tmpfs:
	// a TMPDIR too small for them takes the build, and is left empty.
	t.Run("tmpfs", func(t *testing.T) {
		resize(t, tmpFS, "1m")
		cmd := exec.Command(bin, "--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
			"--snapshot-server", server, "--cache-dir", sharedCache, "--output", "oci:"+filepath.Join(t.TempDir(), "layout"))
		cmd.Env = append(os.Environ(), "TMPDIR="+tmpFS)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build with a 1 MB TMPDIR: %v\n%s", err, lastLines(string(out), 20))
		}
		checkNoLeftovers(t, tmpFS)
		if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), " "+tmpFS+"/") {
			t.Errorf("mounts left under %s", tmpFS)
		}
	})

	// With enough space, the same filesystems take the build, the cache
	// keeping what the failed builds verified.
	resize(t, cacheFS, "200m")
	resize(t, outFS, "200m")
	resize(t, tmpFS, "300m")
	layout, archive := filepath.Join(outFS, "layout"), filepath.Join(outFS, "img.tar")
	cmd := exec.Command(bin, "--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
		"--snapshot-server", server, "--cache-dir", cacheFS,
		"--output", "oci:"+layout, "--output", "docker-archive:"+archive)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmpFS)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rerun with enough space: %v\n%s", err, lastLines(string(out), 20))
	}
	checkCache(t, cacheFS)
	checkSets(t, cacheFS)
	checkNoLeftovers(t, outFS, "layout", "img.tar")
	checkNoLeftovers(t, tmpFS)
	if _, err := os.Stat(filepath.Join(layout, "index.json")); err != nil {
		t.Error(err)
	}
}

// checkData fails t unless each entry of cache's data cache is the whole
// decompressed data of a deb the cache holds, and no temporary file is
// left there.
func checkData(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "data"))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		sum, ok := strings.CutSuffix(e.Name(), ".tar.zst")
		if _, err := os.Stat(filepath.Join(dir, "sha256", sum)); !ok || err != nil {
			t.Errorf("data cache: %s is no entry of a cached deb", e.Name())
			continue
		}
		r, err := cc.OpenData(sum)
		if err == nil {
			_, err = io.Copy(io.Discard, r)
			r.Close()
		}
		if err != nil {
			t.Errorf("data cache: %s: %v", e.Name(), err)
		}
	}
}
