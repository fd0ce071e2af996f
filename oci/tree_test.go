package oci

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/internal/testenv"
)

// testDir is a scratch directory whose helpers fail the test on error.
type testDir struct {
	t    *testing.T
	root string
}

func (d testDir) path(name string) string { return filepath.Join(d.root, name) }

func (d testDir) mkdir(name string) {
	d.t.Helper()
	must(d.t, os.MkdirAll(d.path(name), 0o755))
}

func (d testDir) write(name, data string, perm os.FileMode) {
	d.t.Helper()
	must(d.t, os.WriteFile(d.path(name), []byte(data), perm))
	must(d.t, os.Chmod(d.path(name), perm))
}

func (d testDir) symlink(target, name string) {
	d.t.Helper()
	must(d.t, os.Symlink(target, d.path(name)))
}

// setTimes sets the access and modification times of name itself.
func (d testDir) setTimes(name string, tm time.Time) {
	d.t.Helper()
	ts := unix.NsecToTimespec(tm.UnixNano())
	must(d.t, unix.UtimesNanoAt(unix.AT_FDCWD, d.path(name), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
}

// compareTree builds a tree with one of each kind of entry tar stores.
func compareTree(t *testing.T) testDir {
	t.Helper()
	dir := testDir{t, t.TempDir()}
	dir.mkdir("etc")
	dir.mkdir("a")
	dir.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", 0o644)
	dir.write("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640)
	dir.write("suid", "#!/bin/sh\n", os.ModeSetuid|0o755)
	dir.symlink("etc/passwd", "link")
	// "a/b" comes before "a.b" in tar's walk, though not in byte order.
	dir.write("a/b", "hard\n", 0o644)
	if err := os.Link(dir.path("a/b"), dir.path("a.b")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(dir.path("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	tm := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"etc/passwd", "etc/shadow", "suid", "link", "a/b", "fifo", "etc", "a", "."} {
		dir.setTimes(name, tm)
	}
	return dir
}

func mustReadTree(t *testing.T, dir testDir) map[string]Entry {
	t.Helper()
	entries, err := ReadTree(dir.root)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestReadTree(t *testing.T) {
	entries := mustReadTree(t, compareTree(t))
	var paths []string
	for p := range entries {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	want := []string{".", "./a", "./a.b", "./a/b", "./etc", "./etc/passwd", "./etc/shadow", "./fifo", "./link", "./suid"}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths %q, want %q", paths, want)
	}
	check := func(path string, typ byte, mode int64, linkname string) {
		t.Helper()
		e := entries[path]
		if e.Path != path || e.Type != typ || e.Mode != mode || e.Linkname != linkname {
			t.Errorf("%s: %+v", path, e)
		}
	}
	check(".", tar.TypeDir, 0o755, "")
	check("./a/b", tar.TypeReg, 0o644, "")
	check("./a.b", tar.TypeLink, 0o644, "./a/b")
	check("./link", tar.TypeSymlink, 0o777, "etc/passwd")
	check("./suid", tar.TypeReg, 0o4755, "")
	check("./fifo", tar.TypeFifo, 0o600, "")
	if e := entries["./etc/passwd"]; e.Size != 32 || e.SHA256 != "e787b373a74594b33b77892a903647d7a6cf519d427a0b0790e11be4482696e0" {
		t.Errorf("./etc/passwd: %+v", e)
	}
	if e := entries["./a.b"]; e.Size != 0 || e.SHA256 != "" {
		t.Errorf("./a.b: a hard link with content: %+v", e)
	}
}

// A tar of a tree, made by GNU tar as debuerreotype-tar makes the image,
// has the tree's entries.
func TestReadTarMatchesTree(t *testing.T) {
	testenv.LookPath(t, "tar")
	dir := compareTree(t)
	tree := mustReadTree(t, dir)
	out, err := exec.Command("tar", "--create", "--directory", dir.root, "--numeric-owner", "--transform", "s,^./,,", "--sort", "name", ".").Output()
	if err != nil {
		t.Fatalf("tar: %v", err)
	}
	entries, err := ReadTar(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(tree, entries); len(d) != 0 {
		t.Error(d)
	}
}

// ReadTar spells "./etc/", "etc/" and "etc" alike.
func TestReadTarPaths(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/x", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		{Name: "usr/y", Typeflag: tar.TypeLink, Linkname: "usr/x"},
		{Name: "usr/z", Typeflag: tar.TypeSymlink, Linkname: "./x", PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("x"))
		}
	}
	tw.Close()
	entries, err := ReadTar(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]Entry{
		".":       {Type: tar.TypeDir},
		"./etc":   {Type: tar.TypeDir},
		"./usr":   {Type: tar.TypeDir},
		"./usr/x": {Type: tar.TypeReg, Size: 1, SHA256: "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"},
		"./usr/y": {Type: tar.TypeLink, Linkname: "./usr/x"},
		"./usr/z": {Type: tar.TypeSymlink, Linkname: "./x", Xattrs: map[string]string{"user.k": "v"}},
	} {
		got, ok := entries[path]
		if !ok {
			t.Errorf("%s: missing; have %v", path, entries)
			continue
		}
		want.Path, want.Mode, want.ModTime = path, got.Mode, got.ModTime
		if d := compareEntry(got, want); len(d) != 0 || got.Path != path {
			t.Errorf("%s: %v", path, d)
		}
	}
}

func TestCompare(t *testing.T) {
	a := compareTree(t)
	b := compareTree(t)
	// Each change shows as one difference.
	b.write("etc/passwd", "root:x:0:0:root:/root:/bin/dash\n", 0o644) // same size
	os.Chmod(b.path("etc/shadow"), 0o600)
	b.write("suid", "#!/bin/bash\n", os.ModeSetuid|0o755)
	os.Remove(b.path("link"))
	b.symlink("etc/shadow", "link")
	os.Remove(b.path("fifo"))
	b.mkdir("fifo")
	a.write("only-a", "", 0o644)
	b.write("only-b", "", 0o644)
	tm := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"etc/passwd", "etc/shadow", "link", "fifo", "etc", "."} {
		b.setTimes(name, tm)
	}
	b.setTimes("a/b", tm.Add(time.Second))
	b.setTimes("suid", tm.Add(time.Second/2)) // tar keeps whole seconds
	a.setTimes(".", tm)

	want := []Difference{
		{"./a.b", "mtime 2024-01-01T00:00:00Z != 2024-01-01T00:00:01Z"},
		{"./a/b", "mtime 2024-01-01T00:00:00Z != 2024-01-01T00:00:01Z"},
		{"./etc/passwd", "content"},
		{"./etc/shadow", "mode 0640 != 0600"},
		{"./fifo", "type fifo != dir"},
		{"./fifo", "mode 0600 != 0755"},
		{"./link", `link "etc/passwd" != "etc/shadow"`},
		{"./only-a", "only in A"},
		{"./only-b", "only in B"},
		{"./suid", "size 10 != 12"},
		{"./suid", "content"},
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(b.path("etc/passwd"), 1, 2); err != nil {
			t.Fatal(err)
		}
		want = slices.Insert(want, 2, Difference{"./etc/passwd", "uid 0 != 1"}, Difference{"./etc/passwd", "gid 0 != 2"})
	}
	xattrs := true
	if err := unix.Lsetxattr(b.path("etc/shadow"), "user.test", []byte("v"), 0); errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
		xattrs = false
	} else if err != nil {
		t.Fatal(err)
	}
	if xattrs {
		i := slices.IndexFunc(want, func(d Difference) bool { return d.Path == "./fifo" })
		want = slices.Insert(want, i, Difference{"./etc/shadow", "xattr user.test only in B"})
	}
	got := Compare(mustReadTree(t, a), mustReadTree(t, b))
	if !slices.Equal(got, want) {
		t.Errorf("Compare:\n%v\nwant:\n%v", got, want)
	}
	if d := Compare(mustReadTree(t, a), mustReadTree(t, a)); len(d) != 0 {
		t.Errorf("a tree differs from itself: %v", d)
	}
}
