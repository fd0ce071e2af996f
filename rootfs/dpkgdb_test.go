package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/testenv"
)

// dbDebs are packages exercising what the dpkg database records: field
// order and normalization, Multi-Arch naming, conffiles, maintainer
// scripts and other control members, trigger interests.
func dbDebs(t *testing.T, arch string) []DebFile {
	return []DebFile{
		writeDeb(t, apttest.Deb{
			Name: "foo", Version: "1:1.0-1", Arch: arch,
			Fields: map[string]string{
				"Multi-Arch": "same", "Homepage": "http://example.org", "Essential": "yes",
				"Protected": "yes", "Depends": "bar(>=1),  baz|qux ( << 2 ), quux:any", "Pre-Depends": "libc6 (> 2)",
				"X-Zed": "z", "Origin": "o", "Bugs": "mailto:b@example.org", "Built-Using": "gcc (= 1)",
				"Important": "yes", "Source": "foosrc (0.9)", "Section": "libs", "Priority": "Important",
				"Description": "test package foo\n long description\n .\n more",
			},
			Files: []apttest.File{
				{Path: "etc/foo.conf", Body: "conf\n"},
				{Path: "etc/foo.d/other.conf", Body: "other\n"},
				{Path: "usr/lib/foo/x.so", Body: "so"},
			},
			Scripts: map[string]string{
				"conffiles": "/etc/foo.conf\n/etc/foo.d/other.conf\n",
				"triggers":  "# comment\nactivate-noawait ldconfig\nactivate bartrig\ninterest-noawait footrig\n",
				"postinst":  "#!/bin/sh\necho hi\n", "prerm": "#!/bin/sh\n",
				"shlibs": "libfoo 1 foo\n", "symbols": "libfoo.so.1 foo #MINVER#\n", "templates": "Template: foo/q\n",
				"clilibs": "x\n",
			},
		}),
		writeDeb(t, apttest.Deb{
			Name: "bar", Version: "2.0", Arch: "all",
			Fields: map[string]string{"Essential": "no", "Multi-Arch": "foreign", "Provides": "bar-virtual (= 2.0)"},
			Files: []apttest.File{
				{Path: "usr/share/bar/x", Body: "x"},
				{Path: "usr/share/bar/d", Type: tar.TypeDir, Mode: 0o700},
				{Path: "usr/bin/bar", Body: "bar", Mode: 0o4755},
				{Path: "usr/bin/bar2", Type: tar.TypeLink, Linkname: "usr/bin/bar", Mode: 0o4755},
				{Path: "usr/bin/bar3", Type: tar.TypeLink, Linkname: "usr/bin/bar"}, // mode 0, as dpkg applies
				{Path: "usr/bin/barlink", Type: tar.TypeSymlink, Linkname: "bar"},
				{Path: "var/mail", Type: tar.TypeDir, Mode: 0o2775, Gid: 8},
			},
			Scripts: map[string]string{"triggers": "interest bartrig\ninterest-noawait /usr/lib/foo\ninterest-await ldconfig\n"},
		}),
		writeDeb(t, apttest.Deb{
			Name: "baz", Version: "3", Arch: arch,
			Files:   []apttest.File{{Path: "usr/lib/foo/baz", Body: "baz"}, {Path: "usr/share/bar/baz", Body: "baz"}},
			Scripts: map[string]string{"triggers": "interest /usr/share/bar\n", "postrm": "#!/bin/sh\n"},
		}),
	}
}

func TestWriteDatabase(t *testing.T) {
	testenv.RequireRoot(t)
	_, dir := newRoot(t)
	debs := dbDebs(t, "amd64")
	// The index's, over the control file's: in status only for a
	// required package (baz), in available for all.
	debs[2].Priority, debs[2].Required = "required", true
	debs[0].Priority = "standard"
	pkgs, err := Unpack(context.Background(), dir, debs, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteDatabase(dir, "amd64", pkgs); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "var/lib/dpkg")

	wantStatus := `Package: bar
Status: install ok unpacked
Priority: optional
Installed-Size: 2
Maintainer: Test Maintainer <test@example.org>
Architecture: all
Multi-Arch: foreign
Version: 2.0
Provides: bar-virtual (= 2.0)
Description: test package bar

Package: baz
Status: install ok unpacked
Priority: required
Installed-Size: 2
Maintainer: Test Maintainer <test@example.org>
Architecture: amd64
Version: 3
Description: test package baz

Package: foo
Essential: yes
Protected: yes
Status: install ok unpacked
Priority: important
Section: libs
Installed-Size: 3
Origin: o
Maintainer: Test Maintainer <test@example.org>
Bugs: mailto:b@example.org
Architecture: amd64
Multi-Arch: same
Source: foosrc (0.9)
Version: 1:1.0-1
Depends: bar (>= 1), baz | qux (<< 2), quux:any
Pre-Depends: libc6 (>= 2)
Conffiles:
 /etc/foo.conf newconffile
 /etc/foo.d/other.conf newconffile
Description: test package foo
 long description
 .
 more
Homepage: http://example.org
Built-Using: gcc (= 1)
Important: yes
X-Zed: z

`
	if b, _ := os.ReadFile(filepath.Join(db, "status")); string(b) != wantStatus {
		t.Errorf("status:\n%s\nwant:\n%s", b, wantStatus)
	}
	if b, _ := os.ReadFile(filepath.Join(db, "available")); !strings.HasPrefix(string(b), "Package: bar\nPriority: optional\n") || strings.Contains(string(b), "Status:") || strings.Contains(string(b), "Conffiles:") {
		t.Errorf("available:\n%s", b)
	} else if !strings.Contains(string(b), "Package: foo\nEssential: yes\nProtected: yes\nPriority: standard\n") || !strings.Contains(string(b), "Package: baz\nPriority: required\n") {
		t.Errorf("available without the index's priorities:\n%s", b)
	}

	for name, want := range map[string]struct {
		body string
		mode fs.FileMode
	}{
		"info/foo:amd64.list":      {"/.\n/etc\n/etc/foo.conf\n/etc/foo.d\n/etc/foo.d/other.conf\n/usr\n/usr/lib\n/usr/lib/foo\n/usr/lib/foo/x.so\n", 0o644},
		"info/foo:amd64.conffiles": {"/etc/foo.conf\n/etc/foo.d/other.conf\n", 0o644},
		"info/foo:amd64.postinst":  {"#!/bin/sh\necho hi\n", 0o755},
		"info/foo:amd64.prerm":     {"#!/bin/sh\n", 0o755},
		"info/foo:amd64.shlibs":    {"libfoo 1 foo\n", 0o644},
		"info/foo:amd64.clilibs":   {"x\n", 0o644},
		"info/bar.triggers":        {"interest bartrig\ninterest-noawait /usr/lib/foo\ninterest-await ldconfig\n", 0o644},
		"info/baz.postrm":          {"#!/bin/sh\n", 0o755},
		"info/format":              {"1\n", 0o644},
		"triggers/File":            {"/usr/lib/foo bar/noawait\n/usr/share/bar baz\n", 0o644},
		"triggers/bartrig":         {"bar\n", 0o644},
		"triggers/ldconfig":        {"bar\n", 0o644},
		"triggers/footrig":         {"foo:amd64/noawait\n", 0o644},
		"triggers/Unincorp":        {"", 0o644},
		"triggers/Lock":            {"", 0o600},
		"lock":                     {"", 0o640},
		"lock-frontend":            {"", 0o640},
		"diversions":               {"", 0o644},
		"cmethopt":                 {"apt apt\n", 0o644},
	} {
		p := filepath.Join(db, name)
		b, err := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if err != nil || string(b) != want.body || fi.Mode() != want.mode {
			t.Errorf("%s: %q %v (%v), want %q %v", name, b, fi.Mode(), err, want.body, want.mode)
		}
		// Control members keep their mtime from control.tar.
		if strings.HasPrefix(name, "info/") && !strings.HasSuffix(name, ".list") && name != "info/format" && err == nil && !fi.ModTime().Equal(apttest.Epoch) {
			t.Errorf("%s: mtime %v, want the control.tar's %v", name, fi.ModTime().UTC(), apttest.Epoch)
		}
	}
	for _, name := range []string{"arch", "statoverride", "info/foo.list"} {
		if _, err := os.Stat(filepath.Join(db, name)); err == nil {
			t.Errorf("%s exists", name)
		}
	}
	if fi, err := os.Stat(filepath.Join(db, "updates")); err != nil || !fi.IsDir() {
		t.Errorf("updates: %v", err)
	}

	// A foreign package makes dpkg list the architectures.
	pkgs[1].Architecture = "i386"
	if err := WriteDatabase(dir, "amd64", pkgs); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(db, "arch")); string(b) != "amd64\ni386\n" {
		t.Errorf("arch: %q", b)
	}
}

// TestWriteDatabaseNoFileTriggers checks that without file trigger
// interests there is no triggers/File, as dpkg never writes an empty one.
func TestWriteDatabaseNoFileTriggers(t *testing.T) {
	dir := t.TempDir()
	control := []byte("Package: libc-bin\nVersion: 1\nArchitecture: amd64\nMaintainer: m\nDescription: d\n")
	pkgs := []*Installed{{Name: "libc-bin", Version: "1", Architecture: "amd64", Control: control,
		Members: map[string][]byte{"triggers": []byte("interest-noawait ldconfig\n")}}}
	if err := WriteDatabase(dir, "amd64", pkgs); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "var/lib/dpkg/triggers/File")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("triggers/File: %v, want none", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "var/lib/dpkg/triggers/ldconfig")); string(b) != "libc-bin/noawait\n" {
		t.Errorf("triggers/ldconfig: %q %v", b, err)
	}
}

func TestMarkUnpacked(t *testing.T) {
	dir := t.TempDir()
	const status = `Package: dpkg
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 1.20.14
Depends: tar
Conffiles:
 /etc/dpkg/dpkg.cfg f4413ffb515f8f753624ae3bb365b81b
Description: Debian package management system
 long

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.31-13
Revision: 7
Description: GNU C Library

Package: tar
Status: install ok unpacked
Version: 1.34
Description: tar

`
	const want = `Package: dpkg
Essential: yes
Status: install ok unpacked
Priority: required
Architecture: amd64
Version: 1.20.14
Config-Version: 1.20.14
Depends: tar
Conffiles:
 /etc/dpkg/dpkg.cfg f4413ffb515f8f753624ae3bb365b81b
Description: Debian package management system
 long

Package: libc6
Status: install ok unpacked
Architecture: amd64
Multi-Arch: same
Version: 2.31-13
Revision: 7
Config-Version: 2.31-13
Description: GNU C Library

Package: tar
Status: install ok unpacked
Version: 1.34
Description: tar

`
	name := filepath.Join(dir, "var/lib/dpkg/status")
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	pkgs := []*Installed{
		{Name: "dpkg", Version: "1.20.14", Architecture: "amd64"},
		{Name: "libc6", Version: "2.31-13", Architecture: "amd64"},
	}
	if err := markUnpacked(dir, pkgs); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(name); string(b) != want {
		t.Errorf("status:\n%s\nwant:\n%s", b, want)
	}
	// Not installed, or not there: an error.
	if err := markUnpacked(dir, pkgs[:1]); err == nil || !strings.Contains(err.Error(), `status "install ok unpacked"`) {
		t.Errorf("unpacked package: error %v", err)
	}
	if err := markUnpacked(dir, []*Installed{{Name: "mawk", Architecture: "amd64"}}); err == nil || !strings.Contains(err.Error(), "mawk not in status") {
		t.Errorf("missing package: error %v", err)
	}
}

func TestWriteDatabaseErrors(t *testing.T) {
	control := []byte("Package: p\nVersion: 1\nArchitecture: all\nMaintainer: m\nDescription: d\n")
	for _, c := range []struct {
		name string
		pkgs []*Installed
		want string
	}{
		{"twice", []*Installed{{Name: "p", Control: control}, {Name: "p", Control: control}}, "package p: given twice"},
		{"bad member", []*Installed{{Name: "p", Control: control, Members: map[string][]byte{"../x": nil}}}, `package p: control member "../x": bad name`},
		{"bad trigger", []*Installed{{Name: "p", Control: control, Members: map[string][]byte{"triggers": []byte("interest ../x\n")}}}, `package p: triggers: bad trigger name "../x"`},
		{"bad directive", []*Installed{{Name: "p", Control: control, Members: map[string][]byte{"triggers": []byte("frob x\n")}}}, `package p: triggers: unknown directive "frob"`},
		{"bad control", []*Installed{{Name: "p", Control: []byte(" continuation\n")}}, "package p: control: line 1: continuation line without a field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := WriteDatabase(t.TempDir(), "amd64", c.pkgs)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestFormatDependency(t *testing.T) {
	for in, want := range map[string]string{
		"a":                            "a",
		"a(>=1),b":                     "a (>= 1), b",
		" a ( <<  2 ) |b|  c:any (=3)": "a (<< 2) | b | c:any (= 3)",
		"a (< 1), b (> 2)":             "a (<= 1), b (>= 2)",
		"a,\n b (>= 1:2.0~rc1-1)":      "a, b (>= 1:2.0~rc1-1)",
	} {
		if got := formatDependency(in); got != want {
			t.Errorf("formatDependency(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMatchesDpkg unpacks the same debs with dpkg --unpack and with
// Unpack and WriteDatabase, and compares the trees and the databases.
func TestMatchesDpkg(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.LookPath(t, "dpkg")
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	arch := strings.TrimSpace(string(out))
	debs := dbDebs(t, arch)

	want := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		os.MkdirAll(filepath.Join(want, d), 0o755)
	}
	os.WriteFile(filepath.Join(want, "var/lib/dpkg/status"), nil, 0o644)
	// dpkg logs to the host's /var/log/dpkg.log even with --root: the
	// log goes to a file of the test's, and the host's is left alone.
	log := filepath.Join(t.TempDir(), "dpkg.log")
	args := []string{"--root=" + want, "--log=" + log, "--force-depends", "--unpack"}
	for _, d := range debs {
		args = append(args, d.Path)
	}
	cmd := exec.Command("dpkg", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg --unpack: %v\n%s", err, out)
	}
	logged, err := os.ReadFile(log)
	if err != nil || !strings.Contains(string(logged), " unpacked ") {
		t.Errorf("dpkg --log: %v\n%s", err, logged)
	}
	// Each line is timestamped: none can be in the host's log by chance.
	hostLog, err := os.ReadFile("/var/log/dpkg.log")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(logged)) {
		if strings.Contains(string(hostLog), line) {
			t.Errorf("dpkg --unpack wrote to the host's /var/log/dpkg.log: %s", line)
		}
	}

	got := t.TempDir()
	pkgs, err := Unpack(context.Background(), got, debs, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteDatabase(got, arch, pkgs); err != nil {
		t.Fatal(err)
	}

	wantTree, gotTree := describeTree(t, want), describeTree(t, got)
	for p, w := range wantTree {
		if g := gotTree[p]; g != w {
			t.Errorf("%s:\n got %s\nwant %s", p, g, w)
		}
	}
	for p, g := range gotTree {
		if _, ok := wantTree[p]; !ok {
			t.Errorf("%s: %s, not in dpkg's tree", p, g)
		}
	}

	db := "var/lib/dpkg/"
	entries, _ := os.ReadDir(filepath.Join(want, db, "info"))
	for _, e := range entries {
		compareFile(t, want, got, db+"info/"+e.Name())
		if strings.HasSuffix(e.Name(), ".list") || e.Name() == "format" {
			continue // written now, by both
		}
		wi, _ := os.Stat(filepath.Join(want, db, "info", e.Name()))
		gi, err := os.Stat(filepath.Join(got, db, "info", e.Name()))
		if err == nil && !gi.ModTime().Equal(wi.ModTime()) {
			t.Errorf("info/%s: mtime %v, dpkg's %v", e.Name(), gi.ModTime().UTC(), wi.ModTime().UTC())
		}
	}
	entries, _ = os.ReadDir(filepath.Join(want, db, "triggers"))
	for _, e := range entries {
		compareFile(t, want, got, db+"triggers/"+e.Name())
	}
	for _, f := range []string{"status", "lock", "lock-frontend"} {
		compareFile(t, want, got, db+f)
	}

	// dpkg reads the database: packages unpacked, not configured.
	for _, args := range [][]string{
		{"dpkg-query", "--admindir=" + filepath.Join(got, db), "-W", "-f", "${binary:Package} ${Version} ${db:Status-Abbrev}\n"},
		{"dpkg", "--root=" + got, "--audit"},
	} {
		g, gerr := exec.Command(args[0], args[1:]...).CombinedOutput()
		args[1] = strings.Replace(args[1], got, want, 1)
		w, werr := exec.Command(args[0], args[1:]...).CombinedOutput()
		if string(g) != string(w) || (gerr == nil) != (werr == nil) {
			t.Errorf("%s:\n%s(%v)\nwant\n%s(%v)", args[0], g, gerr, w, werr)
		}
	}
}

// describeTree describes each file under root but the dpkg database:
// type, mode, owner, links, mtime (for a directory, only whether it is
// the tar's), content or target.
func describeTree(t *testing.T, root string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "var/lib/dpkg" || rel == "var/lib" || rel == "var" || rel == "." {
			if rel == "var/lib/dpkg" {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.IsDir():
			desc += fmt.Sprintf(" tar-mtime=%v", fi.ModTime().Equal(apttest.Epoch))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += fmt.Sprintf(" %v -> %s", fi.ModTime().UTC(), target)
		default:
			b, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" nlink=%d %v %q", st.Nlink, fi.ModTime().UTC(), b)
		}
		tree[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func compareFile(t *testing.T, want, got, name string) {
	t.Helper()
	w, werr := os.ReadFile(filepath.Join(want, name))
	g, gerr := os.ReadFile(filepath.Join(got, name))
	wi, _ := os.Stat(filepath.Join(want, name))
	gi, _ := os.Stat(filepath.Join(got, name))
	switch {
	case werr != nil || gerr != nil:
		t.Errorf("%s: %v, dpkg's: %v", name, gerr, werr)
	case !bytes.Equal(w, g):
		t.Errorf("%s:\n%s\ndpkg's:\n%s", name, g, w)
	case wi.Mode() != gi.Mode():
		t.Errorf("%s: mode %v, dpkg's %v", name, gi.Mode(), wi.Mode())
	}
}
