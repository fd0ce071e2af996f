package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
)

// writeDeb builds d into a file of the test's temporary directory.
func writeDeb(t *testing.T, d apttest.Deb) DebFile {
	t.Helper()
	b, err := apttest.BuildDeb(d)
	if err != nil {
		t.Fatal(err)
	}
	return saveDeb(t, d.Name, b)
}

func saveDeb(t *testing.T, name string, b []byte) DebFile {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".deb")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return DebFile{Package: plan.Package{Name: name}, Path: p}
}

// newRoot returns an empty directory "root" in a parent of its own, so
// that a test can check nothing was written beside it.
func newRoot(t *testing.T) (parent, dir string) {
	t.Helper()
	parent = t.TempDir()
	dir = filepath.Join(parent, "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return parent, dir
}

// onlyRoot fails the test if parent holds anything but "root".
func onlyRoot(t *testing.T, parent string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"root"}) {
		t.Errorf("beside the root: %q, want only root", names)
	}
}

// rawDeb builds a deb whose data tarball, named dataName, holds exactly
// the given entries, unchecked, with a gzipped control tarball.
func rawDeb(t *testing.T, pkg, dataName string, entries []*tar.Header, bodies map[string]string) DebFile {
	t.Helper()
	control := fmt.Sprintf("Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.org>\nDescription: test\n", pkg)
	ctl := tarball(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./control", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(control))},
	}, map[string]string{"./control": control})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(ctl)
	zw.Close()
	data := tarball(t, entries, bodies)

	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", gz.Bytes()}, {dataName, data}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", m.name, 0, 0, 0, 0o100644, len(m.data))
		ar.Write(m.data)
		if len(m.data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	return saveDeb(t, pkg, ar.Bytes())
}

func tarball(t *testing.T, entries []*tar.Header, bodies map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := bodies[h.Name]
		h.Size = int64(len(body))
		if h.ModTime.IsZero() {
			h.ModTime = apttest.Epoch
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dirHdr(name string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}
}

func TestUnpack(t *testing.T) {
	testenv.RequireRoot(t)
	parent, dir := newRoot(t)
	foo := writeDeb(t, apttest.Deb{
		Name: "foo", Version: "1.0",
		Files: []apttest.File{
			{Path: "etc/foo.conf", Body: "conf\n"},
			{Path: "usr/bin/foo", Body: "#!/bin/sh\n", Mode: 0o755},
			{Path: "usr/bin/su", Body: "su", Mode: 0o4755},
			{Path: "usr/bin/chage", Body: "chage", Mode: 0o2755, Gid: 42},
			{Path: "usr/bin/foo2", Type: tar.TypeLink, Linkname: "usr/bin/foo", Mode: 0o755},
			{Path: "usr/bin/rel", Type: tar.TypeSymlink, Linkname: "foo"},
			{Path: "usr/bin/abs", Type: tar.TypeSymlink, Linkname: "/usr/bin/foo"},
			{Path: "var/mail", Type: tar.TypeDir, Mode: 0o2775, Gid: 8},
			{Path: "tmp", Type: tar.TypeDir, Mode: 0o1777},
			{Path: "home/user/file", Body: "x", Mode: 0o600, Uid: 1000, Gid: 1000},
		},
		Scripts: map[string]string{"conffiles": "/etc/foo.conf\n", "postinst": "#!/bin/sh\n"},
	})
	pkgs, err := Unpack(context.Background(), dir, []DebFile{foo}, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	onlyRoot(t, parent)

	p := pkgs[0]
	if p.Name != "foo" || p.Version != "1.0" || p.Architecture != "amd64" {
		t.Errorf("got %s %s %s, want foo 1.0 amd64", p.Name, p.Version, p.Architecture)
	}
	// Symlinks last, as dpkg creates them.
	wantFiles := []string{
		"/.", "/etc", "/etc/foo.conf", "/usr", "/usr/bin", "/usr/bin/foo", "/usr/bin/su",
		"/usr/bin/chage", "/usr/bin/foo2", "/var", "/var/mail",
		"/tmp", "/home", "/home/user", "/home/user/file", "/usr/bin/rel", "/usr/bin/abs",
	}
	if !slices.Equal(p.Files, wantFiles) {
		t.Errorf("Files:\n%q\nwant\n%q", p.Files, wantFiles)
	}
	if !slices.Equal(p.Conffiles, []string{"/etc/foo.conf"}) {
		t.Errorf("Conffiles = %q", p.Conffiles)
	}
	if string(p.Members["postinst"]) != "#!/bin/sh\n" || string(p.Members["conffiles"]) != "/etc/foo.conf\n" || !strings.Contains(string(p.Members["md5sums"]), "usr/bin/foo") {
		t.Errorf("Members = %q", p.Members)
	}
	if _, ok := p.Members["control"]; ok || !bytes.HasPrefix(p.Control, []byte("Package: foo\n")) {
		t.Errorf("Control = %q; control in Members: %v", p.Control, ok)
	}

	for _, c := range []struct {
		path     string
		mode     fs.FileMode
		uid, gid uint32
		body     string
	}{
		{"etc/foo.conf.dpkg-new", 0o644, 0, 0, "conf\n"},
		{"usr/bin/foo", 0o755, 0, 0, "#!/bin/sh\n"},
		{"usr/bin/su", 0o755 | fs.ModeSetuid, 0, 0, "su"},
		{"usr/bin/chage", 0o755 | fs.ModeSetgid, 0, 42, "chage"},
		{"var/mail", fs.ModeDir | 0o775 | fs.ModeSetgid, 0, 8, ""},
		{"tmp", fs.ModeDir | 0o777 | fs.ModeSticky, 0, 0, ""},
		{"home/user/file", 0o600, 1000, 1000, "x"},
	} {
		fi, err := os.Lstat(filepath.Join(dir, c.path))
		if err != nil {
			t.Error(err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != c.mode || st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", c.path, fi.Mode(), st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
		if !fi.ModTime().Equal(apttest.Epoch) {
			t.Errorf("%s: mtime %v, want %v", c.path, fi.ModTime(), apttest.Epoch)
		}
		if !fi.IsDir() {
			if b, _ := os.ReadFile(filepath.Join(dir, c.path)); string(b) != c.body {
				t.Errorf("%s: %q, want %q", c.path, b, c.body)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/foo.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("conffile written in place: %v", err)
	}
	for link, target := range map[string]string{"usr/bin/rel": "foo", "usr/bin/abs": "/usr/bin/foo"} {
		got, err := os.Readlink(filepath.Join(dir, link))
		if got != target || err != nil {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, target)
		}
		fi, _ := os.Lstat(filepath.Join(dir, link))
		if !fi.ModTime().Equal(apttest.Epoch) {
			t.Errorf("%s: mtime %v", link, fi.ModTime())
		}
	}
	a, _ := os.Stat(filepath.Join(dir, "usr/bin/foo"))
	b, _ := os.Stat(filepath.Join(dir, "usr/bin/foo2"))
	if !os.SameFile(a, b) {
		t.Error("usr/bin/foo2 is not a hard link to usr/bin/foo")
	}
	// As dpkg: a directory something was created in has a fresh mtime,
	// an empty one the tar's.
	if fi, _ := os.Stat(filepath.Join(dir, "usr")); fi.ModTime().Equal(apttest.Epoch) {
		t.Error("usr has the tar's mtime")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "var/mail")); !fi.ModTime().Equal(apttest.Epoch) {
		t.Errorf("var/mail: mtime %v", fi.ModTime())
	}
	// No temporary file is left.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), ".basebuild-") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}

func TestUnpackMergedUsr(t *testing.T) {
	testenv.RequireRoot(t)
	_, dir := newRoot(t)
	if err := MergeUsr(dir, "amd64"); err != nil {
		t.Fatal(err)
	}
	debs := []DebFile{
		writeDeb(t, apttest.Deb{Name: "bash", Version: "1", Files: []apttest.File{
			{Path: "bin", Type: tar.TypeDir},
			{Path: "bin/bash", Body: "bash", Mode: 0o755},
			{Path: "usr/bin/bashbug", Body: "bug", Mode: 0o755},
		}}),
		writeDeb(t, apttest.Deb{Name: "libc6", Version: "1", Files: []apttest.File{
			{Path: "lib64/ld-linux-x86-64.so.2", Type: tar.TypeSymlink, Linkname: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
			{Path: "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Body: "ld", Mode: 0o755},
		}}),
	}
	var mu sync.Mutex
	var told []string
	pkgs, err := Unpack(context.Background(), dir, debs, 2, func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, fmt.Sprintf("%d/%d", done, total))
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(told)
	if !slices.Equal(told, []string{"1/2", "2/2"}) {
		t.Errorf("told %q, want 1/2 and 2/2", told)
	}
	for _, p := range []string{"usr/bin/bash", "usr/bin/bashbug", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"} {
		if fi, err := os.Lstat(filepath.Join(dir, p)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v", p, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "usr/lib64/ld-linux-x86-64.so.2")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("usr/lib64/ld-linux-x86-64.so.2: %v", err)
	}
	if !slices.Equal(pkgs[0].Files, []string{"/.", "/bin", "/bin/bash", "/usr", "/usr/bin", "/usr/bin/bashbug"}) {
		t.Errorf("bash Files = %q", pkgs[0].Files)
	}

	if err := PruneMergedUsr(dir, "amd64", pkgs); err != nil {
		t.Fatal(err)
	}
	var top []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			top = append(top, e.Name()+" -> "+target)
		} else {
			top = append(top, e.Name())
		}
	}
	want := []string{"bin -> usr/bin", "lib -> usr/lib", "lib64 -> usr/lib64", "usr"}
	if !slices.Equal(top, want) {
		t.Errorf("top level: %q, want %q", top, want)
	}
	usr, _ := os.ReadDir(filepath.Join(dir, "usr"))
	var names []string
	for _, e := range usr {
		names = append(names, e.Name())
	}
	if want := []string{"bin", "lib", "lib64"}; !slices.Equal(names, want) {
		t.Errorf("usr: %q, want %q", names, want)
	}
}

func TestMergeUsr(t *testing.T) {
	for arch, want := range map[string][]string{
		"amd64":   {"bin", "lib", "lib32", "lib64", "libx32", "sbin", "usr"},
		"arm64":   {"bin", "lib", "sbin", "usr"},
		"i386":    {"bin", "lib", "lib64", "libx32", "sbin", "usr"},
		"ppc64el": {"bin", "lib", "lib64", "sbin", "usr"},
		"s390x":   {"bin", "lib", "lib32", "sbin", "usr"},
	} {
		dir := t.TempDir()
		if err := MergeUsr(dir, arch); err != nil {
			t.Fatal(err)
		}
		// Twice is fine: the links are kept.
		if err := MergeUsr(dir, arch); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
			if e.Name() == "usr" {
				continue
			}
			target, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil || target != "usr/"+e.Name() {
				t.Errorf("%s: %s -> %q (%v)", arch, e.Name(), target, err)
			}
			if fi, err := os.Stat(filepath.Join(dir, "usr", e.Name())); err != nil || !fi.IsDir() {
				t.Errorf("%s: usr/%s: %v", arch, e.Name(), err)
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s: %q, want %q", arch, names, want)
		}
	}

	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "bin"), 0o755)
	if err := MergeUsr(dir, "arm64"); err == nil || !strings.Contains(err.Error(), "/bin exists and is not a symlink") {
		t.Errorf("bin a directory: %v", err)
	}
}

func TestUnpackThroughAbsoluteSymlink(t *testing.T) {
	testenv.RequireRoot(t)
	parent, dir := newRoot(t)
	debs := []DebFile{
		writeDeb(t, apttest.Deb{Name: "a", Version: "1", Files: []apttest.File{
			{Path: "usr/lib", Type: tar.TypeDir},
			{Path: "usr/lib64", Type: tar.TypeSymlink, Linkname: "/usr/lib"},
			{Path: "usr/share", Type: tar.TypeSymlink, Linkname: "../usr/./lib/../lib"},
		}}),
	}
	if _, err := Unpack(context.Background(), dir, debs, 1, nil); err != nil {
		t.Fatal(err)
	}
	debs = []DebFile{writeDeb(t, apttest.Deb{Name: "b", Version: "1", Files: []apttest.File{
		{Path: "usr/lib64/x", Body: "x"},
		{Path: "usr/share/y", Body: "y"},
	}})}
	if _, err := Unpack(context.Background(), dir, debs, 1, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"usr/lib/x", "usr/lib/y"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
	onlyRoot(t, parent)
}

func TestUnpackRefuses(t *testing.T) {
	testenv.RequireRoot(t)
	outside := filepath.Join(os.TempDir(), fmt.Sprintf("basebuild-escape-%d", time.Now().UnixNano()))
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
	for _, c := range []struct {
		name    string
		links   map[string]string // symlinks an earlier package made
		entries []*tar.Header
		want    string // in the error, after "package evil: member "
	}{
		{"dotdot", nil, []*tar.Header{dirHdr("./"), reg("./../x")}, `"./../x": path has ".."`},
		{"dotdot inside", nil, []*tar.Header{dirHdr("./"), dirHdr("./usr/"), reg("./usr/../../x")}, `"./usr/../../x": path has ".."`},
		{"absolute", nil, []*tar.Header{reg("/etc/x")}, `"/etc/x": absolute path`},
		{"symlink to root", map[string]string{"evil": "/"},
			[]*tar.Header{dirHdr("./"), reg("./evil/etc/x")},
			`"./evil/etc/x": evil -> /: path reaches through a symlink out of the root`},
		{"symlink above root", map[string]string{"evil": "../../.."},
			[]*tar.Header{dirHdr("./"), reg("./evil/etc/x")},
			`"./evil/etc/x": evil -> ../../..: path reaches through a symlink out of the root`},
		{"symlink chain above root", map[string]string{"usr": "a/b", "a": ".", "b": "../.."},
			[]*tar.Header{dirHdr("./"), reg("./usr/x")},
			`"./usr/x": usr -> a/b: a -> .: path reaches through a symlink out of the root`},
		{"symlink outside", map[string]string{"evil": outside},
			[]*tar.Header{dirHdr("./"), reg("./evil/x")},
			`"./evil/x": evil -> ` + outside + `: directory /` + strings.Split(outside, "/")[1] + ` does not exist`},
		{"directory through symlink", map[string]string{"evil": "../.."},
			[]*tar.Header{dirHdr("./"), dirHdr("./evil/etc/")},
			`"./evil/etc/": evil -> ../..: path reaches through a symlink out of the root`},
		{"directory kept as symlink out", map[string]string{"evil": "/"},
			[]*tar.Header{dirHdr("./"), dirHdr("./evil/")},
			`"./evil/": evil -> /: path reaches through a symlink out of the root`},
		{"symlink loop", map[string]string{"a": "b", "b": "a"},
			[]*tar.Header{dirHdr("./"), reg("./a/x")},
			`"./a/x": a: too many levels of symlinks`},
		// The package's own symlink is made last, as dpkg makes it: it
		// redirects none of its members.
		{"own symlink", nil, []*tar.Header{
			dirHdr("./"), {Name: "./evil", Typeflag: tar.TypeSymlink, Linkname: "/"}, reg("./evil/etc/x"),
		}, `"./evil/etc/x": directory /evil does not exist`},
		{"hard link out", nil, []*tar.Header{
			dirHdr("./"), {Name: "./passwd", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"},
		}, `"./passwd": hard link to "../../etc/passwd": path has ".."`},
		{"hard link absolute", nil, []*tar.Header{
			dirHdr("./"), {Name: "./passwd", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"},
		}, `"./passwd": hard link to "/etc/passwd": absolute path`},
		{"hard link to another package's file", nil, []*tar.Header{
			dirHdr("./"), {Name: "./passwd", Typeflag: tar.TypeLink, Linkname: "./etc/passwd"},
		}, `"./passwd": hard link to "./etc/passwd", not an earlier file of the package`},
		{"char device", nil, []*tar.Header{
			dirHdr("./"), dirHdr("./dev/"), {Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		}, `"./dev/null": device nodes and FIFOs are not supported`},
		{"block device", nil, []*tar.Header{
			dirHdr("./"), {Name: "./sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8},
		}, `"./sda": device nodes and FIFOs are not supported`},
		{"fifo", nil, []*tar.Header{
			dirHdr("./"), {Name: "./fifo", Typeflag: tar.TypeFifo, Mode: 0o644},
		}, `"./fifo": device nodes and FIFOs are not supported`},
		{"file over directory", nil, []*tar.Header{dirHdr("./"), dirHdr("./etc/"), reg("./etc")}, `"./etc": /etc: file exists`},
		{"missing parent", nil, []*tar.Header{dirHdr("./"), reg("./nodir/x")}, `"./nodir/x": directory /nodir does not exist`},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent, dir := newRoot(t)
			for name, target := range c.links {
				if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			deb := rawDeb(t, "evil", "data.tar", c.entries, nil)
			_, err := Unpack(context.Background(), dir, []DebFile{deb}, 1, nil)
			if want := "package evil: member " + c.want; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want %q", err, want)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			onlyRoot(t, parent)
			for _, p := range []string{filepath.Join(parent, "../etc/x"), filepath.Join(outside, "x")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

func TestUnpackBadArchive(t *testing.T) {
	good, err := apttest.BuildDeb(apttest.Deb{Name: "foo", Version: "1", Files: []apttest.File{{Path: "usr/share/foo/big", Body: strings.Repeat("0123456789abcdef", 4096)}}, Compression: "gz"})
	if err != nil {
		t.Fatal(err)
	}
	// The same deb with the data member cut short, its ar header fixed.
	i := bytes.Index(good, []byte("data.tar.gz"))
	short := slices.Clone(good[:i+60+200])
	copy(short[i+48:i+58], fmt.Sprintf("%-10d", 200))

	for _, c := range []struct {
		name string
		deb  func(t *testing.T) DebFile
		want string
	}{
		{"truncated", func(t *testing.T) DebFile { return saveDeb(t, "foo", good[:len(good)-10]) }, `package foo: ar member "data.tar.gz": unexpected EOF`},
		{"truncated stream", func(t *testing.T) DebFile { return saveDeb(t, "foo", short) }, `package foo: member "./usr/share/foo/big": unexpected EOF`},
		{"empty", func(t *testing.T) DebFile { return saveDeb(t, "foo", nil) }, "package foo: not an ar archive: unexpected EOF"},
		{"not a deb", func(t *testing.T) DebFile { return saveDeb(t, "foo", []byte("!<arch>\n")) }, "package foo: not a binary package"},
		{"unknown compression", func(t *testing.T) DebFile {
			return rawDeb(t, "foo", "data.tar.lz", []*tar.Header{dirHdr("./")}, nil)
		}, `package foo: data.tar.lz: unknown compression ".lz"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent, dir := newRoot(t)
			_, err := Unpack(context.Background(), dir, []DebFile{c.deb(t)}, 1, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
			onlyRoot(t, parent)
		})
	}
}

func TestUnpackLongNames(t *testing.T) {
	testenv.RequireRoot(t)
	_, dir := newRoot(t)
	long := "usr/share/" + strings.Repeat("d", 255)
	file := long + "/" + strings.Repeat("f", 255)
	link := long + "/" + strings.Repeat("l", 255)
	hard := long + "/" + strings.Repeat("h", 255)
	target := strings.Repeat("../x/", 60) + "target"
	deb := writeDeb(t, apttest.Deb{Name: "long", Version: "1", Files: []apttest.File{
		{Path: file, Body: "long"},
		{Path: link, Type: tar.TypeSymlink, Linkname: target},
		{Path: hard, Type: tar.TypeLink, Linkname: file, Mode: 0o644},
	}})
	pkgs, err := Unpack(context.Background(), dir, []DebFile{deb}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, hard)); string(b) != "long" {
		t.Errorf("%s: %q %v", hard, b, err)
	}
	if got, err := os.Readlink(filepath.Join(dir, link)); got != target {
		t.Errorf("link -> %q %v", got, err)
	}
	want := []string{"/.", "/usr", "/usr/share", "/" + long, "/" + file, "/" + hard, "/" + link}
	if !slices.Equal(pkgs[0].Files, want) {
		t.Errorf("Files = %q", pkgs[0].Files)
	}
}

// TestUnpackIgnoresXattrs checks that extended attributes in data.tar's
// PAX records are not applied, as dpkg does not apply them: a package
// must not give itself file capabilities or trusted.* attributes that
// the layer would carry.
func TestUnpackIgnoresXattrs(t *testing.T) {
	testenv.RequireRoot(t)
	_, dir := newRoot(t)
	// VFS_CAP_REVISION_2 with the effective flag, cap_net_raw permitted.
	capNetRaw := string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	deb := writeDeb(t, apttest.Deb{Name: "ping", Version: "1", Files: []apttest.File{
		{Path: "usr/bin/ping", Body: "ping", Mode: 0o755, Xattrs: map[string]string{"security.capability": capNetRaw}},
		{Path: "usr/share/ping", Type: tar.TypeDir, Xattrs: map[string]string{"trusted.basebuild": "dir"}},
		{Path: "usr/share/ping/file", Body: "x", Xattrs: map[string]string{"user.basebuild": "file"}},
		{Path: "usr/share/ping/link", Type: tar.TypeSymlink, Linkname: "file", Xattrs: map[string]string{"user.basebuild": "link"}},
	}})
	if _, err := Unpack(context.Background(), dir, []DebFile{deb}, 1, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"usr/bin/ping", "usr/share/ping", "usr/share/ping/file", "usr/share/ping/link"} {
		if n, err := unix.Llistxattr(filepath.Join(dir, p), make([]byte, 256)); err != nil || n != 0 {
			t.Errorf("%s: %d bytes of xattr names (%v), want none", p, n, err)
		}
	}
	fi, _ := os.Stat(filepath.Join(dir, "usr/bin/ping"))
	if fi.Mode() != 0o755 {
		t.Errorf("usr/bin/ping: %v", fi.Mode())
	}
}

func TestUnpackCollisions(t *testing.T) {
	testenv.RequireRoot(t)
	debs := []DebFile{
		writeDeb(t, apttest.Deb{Name: "a", Version: "1", Files: []apttest.File{
			{Path: "opt/d", Type: tar.TypeDir, Mode: 0o700},
			{Path: "opt/d/shared", Body: "a"},
			{Path: "opt/d/a", Body: "a"},
		}}),
		writeDeb(t, apttest.Deb{Name: "b", Version: "1", Fields: map[string]string{"Replaces": "a"}, Files: []apttest.File{
			{Path: "opt/d", Type: tar.TypeDir, Mode: 0o755},
			{Path: "opt/d/shared", Body: "b"},
			{Path: "opt/d/b", Body: "b"},
		}}),
		writeDeb(t, apttest.Deb{Name: "c", Version: "1", Files: []apttest.File{
			{Path: "opt/d", Type: tar.TypeDir, Mode: 0o750},
			{Path: "opt/d/c", Body: "c"},
		}}),
	}
	// Repeated, so that different schedules of the packages show up.
	for range 20 {
		_, dir := newRoot(t)
		pkgs, err := Unpack(context.Background(), dir, debs, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "opt/d/shared")); string(b) != "b" {
			t.Fatalf("opt/d/shared = %q, want the last package's", b)
		}
		if fi, _ := os.Stat(filepath.Join(dir, "opt/d")); fi.Mode().Perm() != 0o700 {
			t.Fatalf("opt/d: %v, want the first package's 0700", fi.Mode())
		}
		want := [][]string{
			{"/.", "/opt", "/opt/d", "/opt/d/a"},
			{"/.", "/opt", "/opt/d", "/opt/d/shared", "/opt/d/b"},
			{"/.", "/opt", "/opt/d", "/opt/d/c"},
		}
		for i, p := range pkgs {
			if !slices.Equal(p.Files, want[i]) {
				t.Fatalf("%s Files = %q, want %q", p.Name, p.Files, want[i])
			}
		}
	}
}

// TestUnpackReplaces checks that a package may not ship another's file,
// but for a shared directory, unless one package's Replaces names the
// other at its version, as dpkg: a third-party package cannot silently
// replace a Debian package's files.
func TestUnpackReplaces(t *testing.T) {
	testenv.RequireRoot(t)
	deb := func(name, version, replaces string, files ...apttest.File) DebFile {
		var fields map[string]string
		if replaces != "" {
			fields = map[string]string{"Replaces": replaces}
		}
		return writeDeb(t, apttest.Deb{Name: name, Version: version, Fields: fields,
			Files: append([]apttest.File{{Path: "usr/bin", Type: tar.TypeDir, Mode: 0o755}}, files...)})
	}
	x := func(body string) apttest.File { return apttest.File{Path: "usr/bin/x", Body: body} }
	for _, tc := range []struct {
		name string
		debs []DebFile
		want string // the error; "" for none
	}{
		{"no replaces", []DebFile{deb("login", "1:4.13", "", x("debian")), deb("evil", "1", "", x("evil"))},
			"package evil: trying to overwrite '/usr/bin/x', which is also in package login 1:4.13"},
		{"replaces", []DebFile{deb("login", "1:4.13", "", x("debian")), deb("new", "1", "login", x("new"))}, ""},
		{"earlier replaces later", []DebFile{deb("new", "1", "login (<< 1:4.14), other", x("new")), deb("login", "1:4.13", "", x("debian"))}, ""},
		{"replaces an older version", []DebFile{deb("login", "1:4.13", "", x("debian")), deb("new", "1", "login (<< 1:4.13)", x("new"))},
			"package new: trying to overwrite '/usr/bin/x', which is also in package login 1:4.13"},
		{"replaces another package", []DebFile{deb("login", "1:4.13", "", x("debian")), deb("new", "1", "passwd", x("new"))},
			"package new: trying to overwrite '/usr/bin/x', which is also in package login 1:4.13"},
		{"conffile", []DebFile{
			writeDeb(t, apttest.Deb{Name: "base-files", Version: "12", Files: []apttest.File{{Path: "etc/issue", Body: "debian"}},
				Scripts: map[string]string{"conffiles": "/etc/issue\n"}}),
			writeDeb(t, apttest.Deb{Name: "evil", Version: "1", Files: []apttest.File{{Path: "etc/issue", Body: "evil"}}}),
		}, "package evil: trying to overwrite '/etc/issue', which is also in package base-files 12"},
		{"through a directory symlink", []DebFile{
			deb("login", "1:4.13", "", x("debian")),
			writeDeb(t, apttest.Deb{Name: "evil", Version: "1", Files: []apttest.File{{Path: "bin/x", Body: "evil"}}}),
		}, "package evil: trying to overwrite '/bin/x', which is also in package login 1:4.13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Repeated, so that either package may come second.
			for range 5 {
				_, dir := newRoot(t)
				os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755)
				os.Symlink("usr/bin", filepath.Join(dir, "bin"))
				_, err := Unpack(context.Background(), dir, tc.debs, 2, nil)
				switch {
				case tc.want == "" && err != nil:
					t.Fatal(err)
				case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
					t.Fatalf("Unpack = %v, want an error with %q", err, tc.want)
				}
			}
		})
	}
}

func TestUnpackKeepsExistingDirectory(t *testing.T) {
	testenv.RequireRoot(t)
	_, dir := newRoot(t)
	os.Mkdir(filepath.Join(dir, "srv"), 0o711)
	os.Chmod(filepath.Join(dir, "srv"), 0o711)
	os.Mkdir(filepath.Join(dir, "real"), 0o755)
	os.Symlink("real", filepath.Join(dir, "link"))
	deb := writeDeb(t, apttest.Deb{Name: "a", Version: "1", Files: []apttest.File{
		{Path: "srv", Type: tar.TypeDir, Mode: 0o755},
		{Path: "link", Type: tar.TypeDir, Mode: 0o700},
		{Path: "link/x", Body: "x"},
	}})
	if _, err := Unpack(context.Background(), dir, []DebFile{deb}, 1, nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "srv")); fi.Mode().Perm() != 0o711 {
		t.Errorf("srv: %v, want 0711 kept", fi.Mode())
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "link")); fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("link: %v, want the symlink kept", fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(dir, "real/x")); err != nil {
		t.Error(err)
	}
}

func TestUnpackCanceled(t *testing.T) {
	_, dir := newRoot(t)
	deb := writeDeb(t, apttest.Deb{Name: "a", Version: "1", Files: []apttest.File{{Path: "x", Body: "x"}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Unpack(ctx, dir, []DebFile{deb, deb}, 1, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestUnpackCompressions(t *testing.T) {
	testenv.RequireRoot(t)
	var debs []DebFile
	for _, c := range []string{"xz", "gz", "zst", "none"} {
		debs = append(debs, writeDeb(t, apttest.Deb{Name: "p-" + c, Version: "1", Compression: c,
			Files: []apttest.File{{Path: "usr/share/" + c, Body: c}}}))
	}
	_, dir := newRoot(t)
	pkgs, err := Unpack(context.Background(), dir, debs, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"xz", "gz", "zst", "none"} {
		if b, err := os.ReadFile(filepath.Join(dir, "usr/share", c)); string(b) != c {
			t.Errorf("%s: %q %v", c, b, err)
		}
		if want := []string{"/.", "/usr", "/usr/share", "/usr/share/" + c}; !reflect.DeepEqual(pkgs[i].Files, want) {
			t.Errorf("%s: Files %q", c, pkgs[i].Files)
		}
	}
}

func TestInstallOrder(t *testing.T) {
	deb := func(name string) DebFile { return DebFile{Package: plan.Package{Name: name}} }
	debs := []DebFile{deb("a"), deb("b"), deb("c"), deb("d"), deb("e"), deb("usr-is-merged")}
	// Required first, then by name.
	if got, want := installOrder(debs, []bool{false, true, false, false, true, false}), []int{2, 0, 3, 4, 1, 5}; !slices.Equal(got, want) {
		t.Errorf("installOrder = %v, want %v", got, want)
	}
}

func TestPlanDirs(t *testing.T) {
	// Debs 0 and 1 are required, 2 and 3 are not; the rank is the index.
	rank := []int{0, 1, 2, 3}
	required := []bool{true, true, false, false}
	hdrs := map[int]*tar.Header{}
	s := func(deb int, name string) shipper {
		if hdrs[deb] == nil {
			hdrs[deb] = &tar.Header{Uid: deb}
		}
		return shipper{deb, name, hdrs[deb]}
	}
	dir := func(files bool, ss ...shipper) *dirState {
		return &dirState{shippers: ss, files: files, children: files}
	}
	dirs := map[string]*dirState{
		"usr":       {existed: true},
		"usr/share": dir(false, s(1, "usr/share"), s(0, "usr/share")),
		// Only 0's directories in it: tar gives it its mtime after them.
		"usr/share/locale":            dir(false, s(0, "usr/share/locale"), s(1, "usr/share/locale")),
		"usr/share/locale/de":         dir(false, s(0, "usr/share/locale/de"), s(1, "usr/share/locale/de")),
		"usr/share/locale/de/LC_MSGS": dir(true, s(1, "usr/share/locale/de/LC_MSGS"), s(0, "usr/share/locale/de/LC_MSGS")),
		// 1 brings a directory in 0's.
		"usr/share/doc":   dir(false, s(0, "usr/share/doc"), s(1, "usr/share/doc")),
		"usr/share/doc/0": dir(true, s(0, "usr/share/doc/0")),
		"usr/share/doc/1": dir(true, s(1, "usr/share/doc/1")),
		// The second stage creates a directory in the first's.
		"usr/share/man":    dir(false, s(0, "usr/share/man")),
		"usr/share/man/de": dir(false, s(2, "usr/share/man/de")),
		// The second stage's: dpkg's rules, the first in rank.
		"opt":   dir(false, s(3, "opt"), s(2, "opt")),
		"opt/x": dir(false, s(2, "opt/x")),
		// merge_usr renames lib/terminfo, only under /lib, into /usr/lib.
		"usr/lib":             {existed: true},
		"usr/lib/terminfo":    dir(false, s(1, "lib/terminfo")),
		"usr/lib/terminfo/a":  dir(true, s(1, "lib/terminfo/a")),
		"usr/lib/systemd":     dir(false, s(1, "lib/systemd"), s(0, "usr/lib/systemd")),
		"usr/lib/systemd/sys": dir(true, s(1, "lib/systemd/sys"), s(0, "usr/lib/systemd/sys")),
		// ... and moves lib/udev/rules.d, which /usr/lib/udev lacks, into it.
		"usr/lib/udev":         dir(false, s(1, "lib/udev"), s(0, "usr/lib/udev")),
		"usr/lib/udev/rules.d": dir(true, s(1, "lib/udev/rules.d")),
	}
	for name := range dirs {
		if d := dirs[path.Dir(name)]; d != nil {
			d.children = true
		}
	}
	want := map[string]dirPlan{
		"usr/share":                   {hdrs[0], true},
		"usr/share/locale":            {hdrs[0], true},
		"usr/share/locale/de":         {hdrs[0], true},
		"usr/share/locale/de/LC_MSGS": {hdrs[0], false},
		"usr/share/doc":               {hdrs[0], false},
		"usr/share/doc/0":             {hdrs[0], false},
		"usr/share/doc/1":             {hdrs[1], false},
		"usr/share/man":               {hdrs[0], false},
		"usr/share/man/de":            {hdrs[2], true},
		"opt":                         {hdrs[2], false},
		"opt/x":                       {hdrs[2], true},
		"usr/lib/terminfo":            {hdrs[1], true},
		"usr/lib/terminfo/a":          {hdrs[1], false},
		"usr/lib/systemd":             {hdrs[0], true},
		"usr/lib/systemd/sys":         {hdrs[0], false},
		"usr/lib/udev":                {hdrs[0], false},
		"usr/lib/udev/rules.d":        {hdrs[1], false},
	}
	got := planDirs(dirs, rank, required)
	for name, w := range want {
		if g, ok := got[name]; !ok || g.hdr.Uid != w.hdr.Uid || g.keepMtime != w.keepMtime {
			t.Errorf("%s: from deb %d, keep mtime %v; want deb %d, %v", name, g.hdr.Uid, g.keepMtime, w.hdr.Uid, w.keepMtime)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s planned", name)
		}
	}
}

// TestUnpackFirstStageDirs checks the directory mtimes of required
// packages, which debootstrap extracts with tar before dpkg unpacks them.
func TestUnpackFirstStageDirs(t *testing.T) {
	testenv.RequireRoot(t)
	_, dir := newRoot(t)
	old := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	debs := []DebFile{
		writeDeb(t, apttest.Deb{Name: "a", Version: "1", ModTime: old, Files: []apttest.File{
			{Path: "usr/share/locale/de/LC_MESSAGES/a.mo", Body: "a"},
		}}),
		writeDeb(t, apttest.Deb{Name: "b", Version: "1", Files: []apttest.File{
			{Path: "usr/share/locale/de/LC_MESSAGES/b.mo", Body: "b"},
			{Path: "usr/share/locale/fr/LC_MESSAGES/b.mo", Body: "b"},
		}}),
	}
	for i := range debs {
		debs[i].Priority, debs[i].Required = "required", true
	}
	pkgs, err := Unpack(context.Background(), dir, debs, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pkgs[0].Required || !pkgs[1].Required {
		t.Errorf("Required: %v %v", pkgs[0].Required, pkgs[1].Required)
	}
	for name, want := range map[string]bool{
		"usr/share/locale/de":             true,  // a's, with only a's LC_MESSAGES in it
		"usr/share/locale":                false, // b brought fr
		"usr/share/locale/de/LC_MESSAGES": false, // files
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.ModTime().Equal(old); got != want {
			t.Errorf("%s: mtime %v, want a's (%v): %v", name, fi.ModTime().UTC(), old, want)
		}
	}
}

// TestUnpackDataCache unpacks debs with a cache: the first unpack keeps
// each data.tar there, a second one reads it back instead of the deb's
// (which the test damages to tell), a damaged or planted entry is
// refused before use, removed and made again from the deb, and a failed
// unpack leaves no entry.
func TestUnpackDataCache(t *testing.T) {
	testenv.RequireRoot(t)
	cc, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var debs []DebFile
	for _, c := range []string{"xz", "gz"} {
		d := writeDeb(t, apttest.Deb{Name: "p-" + c, Version: "1", Compression: c,
			Files: []apttest.File{{Path: "usr/share/" + c, Body: strings.Repeat(c, 1000)}}})
		data, err := os.ReadFile(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		d.SHA256 = fmt.Sprintf("%x", sha256.Sum256(data))
		d.Cache = cc
		debs = append(debs, d)
	}
	unpack := func() (map[string]oci.Entry, error) {
		t.Helper()
		_, dir := newRoot(t)
		if _, err := Unpack(context.Background(), dir, debs, 2, nil); err != nil {
			return nil, err
		}
		tree, err := oci.ReadTree(dir)
		// Directories have the time their last entry was made: not what
		// the cache decides.
		for name, e := range tree {
			if e.Type == tar.TypeDir {
				e.ModTime = time.Time{}
				tree[name] = e
			}
		}
		return tree, err
	}
	first, err := unpack()
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(cc.Dir, "data"))
	if len(entries) != 2 {
		t.Fatalf("data cache holds %d entries, want 2", len(entries))
	}

	// Damage each deb's data member: the cache must serve them now.
	var good [][]byte
	damage := func() {
		t.Helper()
		for _, d := range debs {
			b, _ := os.ReadFile(d.Path)
			good = append(good, slices.Clone(b))
			i := bytes.Index(b, []byte("data.tar"))
			for j := i + 200; j < len(b); j++ {
				b[j] ^= 0xff
			}
			if err := os.WriteFile(d.Path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	damage()
	second, err := unpack()
	if err != nil {
		t.Fatalf("unpack from the data cache: %v", err)
	}
	if diffs := oci.Compare(first, second); len(diffs) > 0 {
		t.Errorf("the tree from the data cache differs: %v", diffs)
	}

	// With the debs whole again, a damaged entry and a planted one (a
	// data.tar with a file of its own) are refused before use and
	// removed: the deb serves, and makes the entry again.
	for i, d := range debs {
		os.WriteFile(d.Path, good[i], 0o644)
	}
	var notes []string
	cc.Log = func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	p := filepath.Join(cc.Dir, "data", debs[0].SHA256+".tar.zst")
	entry, _ := os.ReadFile(p)
	damaged := slices.Clone(entry)
	damaged[len(damaged)/2] ^= 0xff
	var planted bytes.Buffer
	zw, _ := zstd.NewWriter(&planted)
	tw := tar.NewWriter(zw)
	for _, f := range []string{"./usr/share/xz", "./etc/evil"} {
		tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: 4})
		tw.Write([]byte("evil"))
	}
	tw.Close()
	zw.Close()
	for name, data := range map[string][]byte{"damaged": damaged, "planted": planted.Bytes()} {
		notes = nil
		os.WriteFile(p, data, 0o644)
		tree, err := unpack()
		if err != nil {
			t.Fatalf("%s entry: %v", name, err)
		}
		if diffs := oci.Compare(first, tree); len(diffs) > 0 {
			t.Errorf("%s entry: the tree differs: %v", name, diffs)
		}
		if len(notes) != 1 || !strings.Contains(notes[0], p) {
			t.Errorf("%s entry: notes %q", name, notes)
		}
		if again, err := os.ReadFile(p); err != nil || !bytes.Equal(again, entry) {
			t.Errorf("%s entry: not made again from the deb (%v)", name, err)
		}
	}

	// And with neither the entry nor a good deb, no entry is made.
	damage()
	os.Remove(p)
	if _, err := unpack(); err == nil {
		t.Error("unpack of a damaged deb succeeded")
	}
	entries, _ = os.ReadDir(filepath.Join(cc.Dir, "data"))
	for _, e := range entries {
		if e.Name() != debs[1].SHA256+".tar.zst" {
			t.Errorf("data cache holds %s", e.Name())
		}
	}
}
