package rootfs

import (
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/testenv"
)

// update-ca-certificates' bundle: the certificates sorted bytewise by
// their path under /usr/share/ca-certificates, each ending in a newline.
func TestCABundleOf(t *testing.T) {
	got := string(caBundleOf(map[string][]byte{
		"mozilla/b.crt":   []byte("B\n"),
		"mozilla/B.crt":   []byte("upper"), // no newline: one added
		"mozilla/a b.crt": []byte("A\n"),
		"acme/z.crt":      []byte("Z\n"),
	}))
	if want := "Z\nupper\nA\nB\n"; got != want {
		t.Errorf("bundle %q, want %q", got, want)
	}
}

// A distroless tree: packages extracted with their conffiles in place and
// no maintainer script run, the CA bundle made and the rest of
// ca-certificates gone but its copyright, distroless's files, and
// status.d with the control files and the sums of the files present.
func TestDistroless(t *testing.T) {
	testenv.RequireRoot(t)
	_, dir := newRoot(t)
	debs := []DebFile{
		writeDeb(t, apttest.Deb{
			Name: "base-files", Version: "12.4", Arch: "amd64",
			Fields: map[string]string{"Pre-Depends": "awk", "Depends": "ca-certificates | dpkg, ca-bundle"},
			Files: []apttest.File{
				{Path: "etc/debian_version", Body: "12.4\n"},
				{Path: "usr/lib/os-release", Body: "PRETTY_NAME=\"Debian\"\n"},
				{Path: "etc/os-release", Type: '2', Linkname: "../usr/lib/os-release"},
				{Path: "tmp", Type: '5', Mode: 0o1777},
			},
			Scripts: map[string]string{"conffiles": "/etc/debian_version\n", "postinst": "#!/bin/sh\ntouch /ran\n"},
		}),
		writeDeb(t, apttest.Deb{
			Name: "ca-certificates", Version: "20230311", Arch: "all",
			Fields: map[string]string{"Provides": "ca-bundle"},
			Files: []apttest.File{
				{Path: "usr/share/ca-certificates/mozilla/B.crt", Body: "-----B-----\n"},
				{Path: "usr/share/ca-certificates/mozilla/A.crt", Body: "-----A-----"},
				{Path: "usr/sbin/update-ca-certificates", Body: "#!/bin/sh\n", Mode: 0o755},
				{Path: "usr/share/doc/ca-certificates/copyright", Body: "(c)\n"},
				{Path: "usr/share/doc/ca-certificates/README", Body: "readme\n"},
				{Path: "etc/ssl/certs", Type: '5'},
			},
		}),
	}
	epoch := time.Unix(1700000000, 0)
	var notes []string
	err := Build(context.Background(), dir, debs, BuildOptions{Arch: "amd64", Epoch: epoch, Suite: "bookworm", Distroless: true, Jobs: 2,
		Note: func(s string) { notes = append(notes, s) }})
	if err != nil {
		t.Fatal(err)
	}
	// Dependencies the tree meets, by name or Provides, are not left out.
	if want := []string{"left out what only maintainer scripts use: base-files pre-depends on awk"}; !slices.Equal(notes, want) {
		t.Errorf("notes %q, want %q", notes, want)
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
	files := map[string]string{
		"etc/debian_version":                            "12.4\n",
		"etc/ssl/certs/ca-certificates.crt":             "-----A-----\n-----B-----\n",
		"etc/passwd":                                    distrolessPasswd,
		"etc/group":                                     distrolessGroup,
		"etc/nsswitch.conf":                             distrolessNsswitch,
		"etc/os-release":                                distrolessOSRelease("bookworm"),
		"usr/share/doc/ca-certificates/copyright":       "(c)\n",
		"var/lib/dpkg/status.d/ca-certificates.md5sums": fmt.Sprintf("%x  usr/share/doc/ca-certificates/copyright\n", md5.Sum([]byte("(c)\n"))),
		// apttest's md5sums lists the conffile too; os-release is
		// distroless's, not the package's, now.
		"var/lib/dpkg/status.d/base-files.md5sums": fmt.Sprintf("%x  etc/debian_version\n", md5.Sum([]byte("12.4\n"))),
	}
	for name, want := range files {
		if got := read(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if s := read("usr/lib/os-release"); !strings.Contains(s, `VERSION_ID="12"`) || !strings.Contains(s, `ID="debian"`) {
		t.Errorf("os-release: %q", s)
	}
	if s := read("var/lib/dpkg/status.d/base-files"); !strings.HasPrefix(s, "Package: base-files\n") {
		t.Errorf("status.d/base-files: %q", s)
	}
	for _, gone := range []string{
		"ran", "etc/debian_version.dpkg-new", "usr/share/ca-certificates", "usr/sbin/update-ca-certificates",
		"usr/share/doc/ca-certificates/README", "var/lib/dpkg/status",
	} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want it absent", gone, err)
		}
	}
	dirs := map[string]struct {
		mode     os.FileMode
		uid, gid uint32
	}{
		"root":         {os.ModeDir | 0o700, 0, 0},
		"home":         {os.ModeDir | 0o755, 0, 0},
		"home/nonroot": {os.ModeDir | 0o700, NonrootUID, NonrootUID},
		"tmp":          {os.ModeDir | os.ModeSticky | 0o777, 0, 0},
	}
	for name, want := range dirs {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != want.mode || st.Uid != want.uid || st.Gid != want.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", name, fi.Mode(), st.Uid, st.Gid, want.mode, want.uid, want.gid)
		}
		if !fi.ModTime().Equal(epoch) && fi.ModTime().After(epoch) {
			t.Errorf("%s: mtime %v after the epoch", name, fi.ModTime())
		}
	}
}

// A package whose scripts make what it needs is refused by name, but
// one whose made path the tree has anyway, and distroless's own.
func TestCheckScripts(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "usr/lib/ssl"), 0o755); err != nil {
		t.Fatal(err)
	}
	pkg := func(name, postinst string) *Installed {
		return &Installed{Name: name, Members: map[string][]byte{"postinst": []byte("#!/bin/sh\nset -e\n" + postinst)}}
	}
	mawk := pkg("mawk", "if [ \"$1\" = configure ]; then\n  update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 --slave /usr/bin/nawk nawk /usr/bin/mawk\nfi\n")
	openssl := pkg("openssl", "if [ ! -e /usr/lib/ssl ]; then ln -sf /etc/ssl /usr/lib/ssl; fi\n")
	netbase := pkg("netbase", "cat > /etc/hosts <<EOF\n127.0.0.1 localhost\nEOF\n")
	lib := &Installed{Name: "zlib1g", Members: map[string][]byte{"triggers": []byte("activate-noawait ldconfig\n")}}
	daemon := pkg("food", "adduser --system food\nucf /usr/share/food/food.conf /etc/food.conf\n")

	if err := checkScripts(dir, "bookworm", []*Installed{lib, netbase, openssl}, nil, nil); err != nil {
		t.Errorf("zlib1g, netbase, openssl: %v", err)
	}
	err := checkScripts(dir, "bookworm", []*Installed{daemon, lib, mawk}, []string{"mawk"}, map[string]string{"food": "depends food-server", "mawk": "include"})
	want := "package food (food-server depends on it): its postinst adds user food (adduser), makes /etc/food.conf (ucf); " +
		"--include mawk: its postinst makes /usr/bin/awk (update-alternatives); a distroless image runs no scripts"
	if err == nil || err.Error() != want {
		t.Errorf("food, mawk: %v\nwant %s", err, want)
	}
}

// Build reads the scripts from each deb's control.tar and fails a
// distroless tree with a package that needs its postinst.
func TestDistrolessRefusesScripts(t *testing.T) {
	testenv.RequireRoot(t)
	_, dir := newRoot(t)
	debs := []DebFile{
		writeDeb(t, apttest.Deb{Name: "base-files", Version: "12.4", Files: []apttest.File{{Path: "etc/debian_version", Body: "12.4\n"}},
			Scripts: map[string]string{"postinst": "#!/bin/sh\ncp /usr/share/base-files/profile /etc/profile\n"}}),
		writeDeb(t, apttest.Deb{Name: "mawk", Version: "1.3.4", Files: []apttest.File{{Path: "usr/bin/mawk", Body: "mawk\n", Mode: 0o755}},
			Scripts: map[string]string{"postinst": "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n\tupdate-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5\nfi\n"}}),
	}
	err := Build(context.Background(), dir, debs, BuildOptions{Arch: "amd64", Epoch: time.Unix(1700000000, 0), Suite: "bookworm", Distroless: true, Jobs: 2, Manual: []string{"mawk"}})
	if want := "--include mawk: its postinst makes /usr/bin/awk (update-alternatives); a distroless image runs no scripts"; err == nil || err.Error() != want {
		t.Errorf("Build: %v, want %s", err, want)
	}
}
