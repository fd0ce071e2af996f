package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/testenv"
)

func TestParseCopyRefuses(t *testing.T) {
	src := testenv.CopySource(t)
	for _, arg := range []string{
		"nocolon",
		":/opt/x",
		src + ":relative/x",
		src + ":/",
		src + ":/../etc",
		src + ":/opt/../../etc",
		src + "/missing:/opt/x",
	} {
		if _, err := ParseCopy(arg); err == nil {
			t.Errorf("ParseCopy(%q) accepted", arg)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseCopy(%q): multi-line error %q", arg, err)
		}
	}
	c, err := ParseCopy(src + ":/opt//site/")
	if err != nil {
		t.Fatal(err)
	}
	if c.Dst != "/opt/site" {
		t.Errorf("Dst %q, want /opt/site", c.Dst)
	}
}

func TestCopyIntoAndAptConf(t *testing.T) {
	testenv.RequireRoot(t)
	src := testenv.CopySource(t)
	c, err := ParseCopy(src + ":/opt/site")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := CopyInto(dir, c); err != nil {
		t.Fatal(err)
	}
	if err := WriteConfig(dir, []ConfigFile{AptConf([]string{"a;", "b;"})}); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, AptConfFile)); err != nil || string(data) != "a;\nb;\n" {
		t.Errorf("%s: %q, %v", AptConfFile, data, err)
	}
	for rel, mode := range map[string]os.FileMode{
		".": os.ModeDir | 0o755, "index.html": 0o644, "sub": os.ModeDir | 0o755,
		"sub/run": 0o750, "run": os.ModeSymlink | 0o777,
	} {
		p := filepath.Join(dir, "opt/site", rel)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: owner %d:%d", rel, st.Uid, st.Gid)
		}
	}
	if target, _ := os.Readlink(filepath.Join(dir, "opt/site/run")); target != "sub/run" {
		t.Errorf("symlink to %q", target)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "opt/site/sub/run")); string(data) != "#!/bin/sh\necho run\n" {
		t.Errorf("sub/run: %q", data)
	}
	// A source that changed since it was scanned is refused.
	os.WriteFile(filepath.Join(src, "index.html"), []byte("changed\n"), 0o644)
	if err := CopyInto(t.TempDir(), c); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("copy of a changed source: %v", err)
	}
}

// TestCopySymlinkSwap swaps a --copy source file for a symlink to a
// root-only host file and back while the source is scanned and copied:
// what is read must be what was checked, so the secret never reaches the
// fingerprint or the image.
func TestCopySymlinkSwap(t *testing.T) {
	base := t.TempDir()
	secret := filepath.Join(base, "secret")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(secret, []byte("SECRET"), 0o600))
	src := filepath.Join(base, "src")
	must(os.Mkdir(src, 0o755))
	must(os.WriteFile(filepath.Join(src, "f"), []byte("public"), 0o644))
	secretSum := sha256.Sum256([]byte("SECRET"))

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		link, file := filepath.Join(base, "link"), filepath.Join(base, "file")
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Symlink(secret, link)
			os.Rename(link, filepath.Join(src, "f"))
			os.WriteFile(file, []byte("public"), 0o644)
			os.Rename(file, filepath.Join(src, "f"))
		}
	}()
	defer func() { close(stop); <-done }()

	dir := t.TempDir()
	scanned, copied := 0, 0
	for start := time.Now(); time.Since(start) < 2*time.Second; {
		c, err := ParseCopy(src + ":/opt/x")
		if err != nil {
			continue // refused: the file changed under the scan
		}
		scanned++
		for _, f := range c.Files {
			if f.SHA256 == hex.EncodeToString(secretSum[:]) {
				t.Fatalf("the scan read the secret through the symlink swapped in for %s", f.Rel)
			}
		}
		if CopyInto(dir, c) != nil {
			continue
		}
		copied++
		// A symlink scanned as one is copied as one; only a regular
		// file holding the secret is a leak.
		got := filepath.Join(dir, "opt/x/f")
		if fi, err := os.Lstat(got); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if b, err := os.ReadFile(got); err == nil && string(b) == "SECRET" {
			t.Fatal("the copy read the secret through the symlink swapped in")
		}
	}
	if scanned == 0 || copied == 0 {
		t.Errorf("no scan (%d) or copy (%d) got through: the test proves nothing", scanned, copied)
	}
}

// TestCopyDirSymlinkSwap swaps a subdirectory of a --copy source for a
// relative symlink to a directory outside it, holding a root-only file
// of the same name, between the listing of the subdirectory and the
// opening of that file, in the scan and then in the copy: the file
// outside must never be read.
func TestCopyDirSymlinkSwap(t *testing.T) {
	base := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	src, sub := filepath.Join(base, "src"), filepath.Join(base, "src/sub")
	must(os.MkdirAll(sub, 0o755))
	must(os.WriteFile(filepath.Join(sub, "f"), []byte("public"), 0o644))
	must(os.Mkdir(filepath.Join(base, "outside"), 0o700))
	must(os.WriteFile(filepath.Join(base, "outside/f"), []byte("SECRET"), 0o600))
	secretSum := sha256.Sum256([]byte("SECRET"))
	swap := func(rel string) {
		if rel != "sub/f" {
			return
		}
		must(os.Rename(sub, filepath.Join(base, "moved")))
		must(os.Symlink("../outside", sub))
	}
	unswap := func() {
		must(os.Remove(sub))
		must(os.Rename(filepath.Join(base, "moved"), sub))
	}

	// The scan reads the directory it listed, where it is now.
	c := Copy{Src: src, Dst: "/opt/x", opening: swap}
	must(c.scan())
	unswap()
	publicSum := sha256.Sum256([]byte("public"))
	for _, f := range c.Files {
		if f.SHA256 == hex.EncodeToString(secretSum[:]) {
			t.Fatalf("the scan read the file outside the source as %s", f.Rel)
		}
		if f.Rel == "sub/f" && f.SHA256 != hex.EncodeToString(publicSum[:]) {
			t.Errorf("sub/f scanned as %s, want the listed file's %x", f.SHA256, publicSum)
		}
	}

	// The copy of a clean scan: it fails, and the file outside is not
	// in the tree.
	c = Copy{Src: src, Dst: "/opt/x"}
	must(c.scan())
	c.opening = swap
	dir := t.TempDir()
	err := CopyInto(dir, c)
	if err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("copy through a directory swapped for a symlink: %v", err)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if b, _ := os.ReadFile(p); string(b) == "SECRET" {
			t.Errorf("the copy put the file outside the source at %s", p)
		}
		return nil
	})
}
