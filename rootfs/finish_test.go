package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/internal/testenv"
)

// TestMinimizingConfig checks the files against debuerreotype 0.15's: the
// sums are of the files "debuerreotype-minimizing-config" wrote into a copy
// of the bookworm reference rootfs (cp -a, then the script, as root).
func TestMinimizingConfig(t *testing.T) {
	dir := newTestDir(t)
	for _, d := range []string{"usr/sbin", "etc/dpkg/dpkg.cfg.d", "etc/apt/apt.conf.d"} {
		dir.mkdir(d)
	}
	// An existing file is overwritten and gets the script's mode.
	dir.write("etc/apt/apt.conf.d/docker-clean", "old\n", 0o600)
	if err := MinimizingConfig(dir.root); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name   string
		mode   os.FileMode
		size   int64
		sha256 string
	}{
		{"usr/sbin/policy-rc.d", 0o755, 255, "21a8dca0d6a52cbac52cb7a86178d973616ffb42ea08747e6ff311659ab095e1"},
		{"etc/dpkg/dpkg.cfg.d/docker-apt-speedup", 0o644, 259, "ab3af717d57cbbea36555833dc1ae031fa46750b879199ec579ee00be9aa0124"},
		{"etc/apt/apt.conf.d/docker-autoremove-suggests", 0o644, 754, "84cb100b000873f25f677cf23ab51f841eb490264fa496361591d6071aebf0f4"},
		{"etc/apt/apt.conf.d/docker-clean", 0o644, 1175, "484f60f8d215bf22008b5fe7dd8484350d7abd44655ea79accee79ce11976c81"},
		{"etc/apt/apt.conf.d/docker-gzip-indexes", 0o644, 481, "9da4604fbac169caa47e787b4d85c8e06c887603878afa2a61f39fd551a41359"},
		{"etc/apt/apt.conf.d/docker-no-languages", 0o644, 269, "a7fea31d968796bf459a439279abdf8d45f5e3f68bbaa9e09dbd9e7f3bd831f6"},
	}
	for _, w := range want {
		fi, err := os.Lstat(dir.path(w.name))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != w.mode || fi.Size() != w.size {
			t.Errorf("%s: mode %v size %d, want %v %d", w.name, fi.Mode(), fi.Size(), w.mode, w.size)
		}
		if got := dir.sha256(w.name); got != w.sha256 {
			t.Errorf("%s: sha256 %s, want %s", w.name, got, w.sha256)
		}
	}
}

func TestMinimizingConfigWithoutConfigDirs(t *testing.T) {
	dir := newTestDir(t)
	dir.mkdir("usr/sbin")
	if err := MinimizingConfig(dir.root); err != nil {
		t.Fatal(err)
	}
	if got := dir.list(); !slices.Equal(got, []string{"usr", "usr/sbin", "usr/sbin/policy-rc.d"}) {
		t.Errorf("tree: %q", got)
	}
}

func TestSources(t *testing.T) {
	snap := time.Date(2024, 12, 2, 0, 0, 0, 0, time.UTC)
	const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
	tests := []struct {
		suite    string
		deb822   bool
		keyring  string
		snapshot time.Time
		want     string
	}{
		// As the official debian:bookworm of 20241202 has it
		// (docker-debian-artifacts, dist-amd64, bookworm/rootfs.debian-sources).
		{"bookworm", true, keyring, snap, `Types: deb
# http://snapshot.debian.org/archive/debian/20241202T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20241202T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`},
		{"bookworm", true, keyring, time.Time{}, `Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`},
		{"trixie", true, "", time.Time{}, `Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: trixie-security
Components: main
`},
		// As debian:sid of 20241202 has it (sid/rootfs.debian-sources).
		{"sid", true, keyring, snap, `Types: deb
# http://snapshot.debian.org/archive/debian/20241202T000000Z
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`},
		// As debian:bullseye of 20241202 has it (bullseye/rootfs.sources-list).
		{"bullseye", false, "", snap, `# deb http://snapshot.debian.org/archive/debian/20241202T000000Z bullseye main
deb http://deb.debian.org/debian bullseye main
# deb http://snapshot.debian.org/archive/debian-security/20241202T000000Z bullseye-security main
deb http://deb.debian.org/debian-security bullseye-security main
# deb http://snapshot.debian.org/archive/debian/20241202T000000Z bullseye-updates main
deb http://deb.debian.org/debian bullseye-updates main
`},
		{"bullseye", false, "", time.Time{}, `deb http://deb.debian.org/debian bullseye main
deb http://deb.debian.org/debian-security bullseye-security main
deb http://deb.debian.org/debian bullseye-updates main
`},
		{"buster", false, "", time.Date(2023, 1, 1, 12, 30, 0, 0, time.UTC), `# deb http://snapshot.debian.org/archive/debian/20230101T123000Z buster main
deb http://deb.debian.org/debian buster main
# deb http://snapshot.debian.org/archive/debian-security/20230101T123000Z buster/updates main
deb http://deb.debian.org/debian-security buster/updates main
# deb http://snapshot.debian.org/archive/debian/20230101T123000Z buster-updates main
deb http://deb.debian.org/debian buster-updates main
`},
		{"sid", false, "", time.Time{}, "deb http://deb.debian.org/debian sid main\n"},
	}
	for _, tt := range tests {
		got := string(Sources(tt.suite, tt.deb822, tt.keyring, tt.snapshot))
		if got != tt.want {
			t.Errorf("Sources(%s, deb822 %v, %q, %v):\n%s\nwant:\n%s", tt.suite, tt.deb822, tt.keyring, tt.snapshot, got, tt.want)
		}
	}
}

// bookwormAuto is the order of var/lib/apt/extended_states in the bookworm
// reference rootfs, as "apt-mark auto '.*'" (APT 2.6.1) wrote it.
var bookwormAuto = []string{
	"dpkg", "libsmartcols1", "libpam-runtime", "coreutils", "libext2fs2", "libffi8", "libaudit-common", "apt",
	"libnettle8", "libacl1", "libtinfo6", "tzdata", "libunistring2", "libidn2-0", "libtasn1-6", "libselinux1",
	"liblzma5", "sed", "tar", "base-passwd", "libdb5.3", "libp11-kit0", "libapt-pkg6.0", "debconf",
	"libsystemd0", "libmount1", "debianutils", "libsepol2", "libzstd1", "util-linux", "util-linux-extra",
	"libudev1", "libgpg-error0", "usr-is-merged", "debian-archive-keyring", "libcom-err2", "diffutils",
	"libcap2", "libc6", "libpam-modules", "libuuid1", "gpgv", "bash", "libgcrypt20", "grep", "mawk",
	"libcap-ng0", "libsemanage2", "base-files", "ncurses-base", "gzip", "login", "hostname", "adduser",
	"findutils", "libgmp10", "libxxhash0", "libpcre2-8-0", "libcrypt1", "libpam-modules-bin",
	"init-system-helpers", "libsemanage-common", "libseccomp2", "mount", "perl-base", "libpam0g", "libc-bin",
	"libattr1", "libaudit1", "libhogweed6", "libblkid1", "libgnutls30", "sysvinit-utils", "logsave",
	"liblz4-1", "ncurses-bin", "libbz2-1.0", "zlib1g", "gcc-12-base", "libmd0", "dash", "bsdutils", "libss2",
	"libstdc++6", "libdebconfclient0", "e2fsprogs", "passwd", "libgcc-s1",
}

func TestExtendedStatesOrder(t *testing.T) {
	var pkgs []statusPackage
	for _, name := range slices.Sorted(slices.Values(bookwormAuto)) {
		arch := "amd64"
		if name == "tzdata" {
			arch = "all"
		}
		pkgs = append(pkgs, statusPackage{name: name, arch: arch})
	}
	var want strings.Builder
	for _, name := range bookwormAuto {
		want.WriteString("Package: " + name + "\nArchitecture: amd64\nAuto-Installed: 1\n\n")
	}
	if got := string(extendedStates(pkgs, "amd64", 196613)); got != want.String() {
		t.Errorf("extended_states:\n%s\nwant:\n%s", got, want.String())
	}
}

func TestClampShadowDays(t *testing.T) {
	tests := []struct {
		in, want string
		changed  bool
	}{
		{"root:*:20000:0:99999:7:::\n", "root:*:19000:0:99999:7:::\n", true},
		{"root:*:18000:0:99999:7:::\n", "root:*:18000:0:99999:7:::\n", false},
		{"a:*::0:99999:7:::\nb:!:19001:0:99999:7:::", "a:*::0:99999:7:::\nb:!:19000:0:99999:7:::", true},
		{"short:x\n\n", "short:x\n\n", false},
		{"odd:*:never:0\n", "odd:*:never:0\n", false},
	}
	for _, tt := range tests {
		got, changed := clampShadowDays([]byte(tt.in), 19000)
		if string(got) != tt.want || changed != tt.changed {
			t.Errorf("clampShadowDays(%q) = %q, %v; want %q, %v", tt.in, got, changed, tt.want, tt.changed)
		}
	}
}

const finishStatus = `Package: apt
Status: install ok installed
Priority: important
Architecture: amd64
Version: 2.6.1

Package: base-files
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: coreutils
Status: install ok installed
Architecture: amd64
Version: 9.1-1

Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
`

// fakeTree builds a small configured tree, as unpacking and configuring
// leave it, with everything Finish changes.
func finishTree(t *testing.T) testDir {
	t.Helper()
	dir := newTestDir(t)
	for _, d := range []string{
		"usr/bin", "usr/share/keyrings", "etc/apt/apt.conf.d", "etc/apt/sources.list.d",
		"var/lib/dpkg", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial",
		"var/cache/ldconfig", "var/log/apt", "run/mount", "dev/pts", "proc/1", "sys/kernel",
	} {
		dir.mkdir(d)
	}
	dir.write("var/lib/dpkg/status", finishStatus, 0o644)
	dir.write("usr/share/keyrings/debian-archive-keyring.gpg", "keys", 0o644)
	dir.write("etc/apt/sources.list", "deb http://mirror.example/debian bookworm main\n", 0o644)
	dir.write("etc/hostname", "buildhost\n", 0o600)
	dir.write("etc/shadow", "root:*:20001:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n", 0o640)
	dir.write("etc/shadow-", "root:*:19000:0:99999:7:::\n", 0o640)
	dir.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
	dir.write("etc/apt/apt.conf.d/01autoremove-kernels", "kernels\n", 0o644)
	dir.write("debuerreotype-epoch", "1704067200\n", 0o644)
	for _, f := range []string{
		"var/log/dpkg.log", "var/log/bootstrap.log", "var/log/alternatives.log",
		"var/log/apt/history.log", "var/log/apt/term.log", "var/cache/ldconfig/aux-cache",
		"run/mount/utab", "var/lib/apt/lists/lock",
		"var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
		"var/cache/apt/pkgcache.bin", "var/cache/apt/archives/lock", "dev/null", "proc/1/status",
		"sys/kernel/x",
	} {
		dir.write(f, "x\n", 0o644)
	}
	dir.write("var/log/apt/eipp.log.xz", "kept\n", 0o644)
	return dir
}

func TestFinish(t *testing.T) {
	epoch := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // day 19723
	old := time.Date(2020, 5, 5, 5, 5, 5, 0, time.UTC)
	future := time.Now().Add(24 * time.Hour)
	dir := finishTree(t)
	dir.write("usr/bin/old", "old\n", 0o755)
	dir.write("usr/bin/new", "new\n", 0o755)
	dir.symlink("old", "usr/bin/new-link") // new link to an old file
	dir.symlink("new", "usr/bin/old-link")
	dir.setTimes("usr/bin/old", old)
	dir.setTimes("usr/bin/new", future)
	dir.setTimes("usr/bin/new-link", future)
	dir.setTimes("usr/bin/old-link", old)
	dir.setTimes("usr/share", old)

	err := Finish(dir.root, FinishOptions{
		Epoch:    epoch,
		Suite:    "bookworm",
		Snapshot: epoch,
		Manual:   []string{"base-files"},
	})
	if err != nil {
		t.Fatal(err)
	}

	wantFiles := map[string]string{
		"etc/apt/sources.list.d/debian.sources": string(Sources("bookworm", true, "/usr/share/keyrings/debian-archive-keyring.gpg", epoch)),
		"etc/hostname":                          "debuerreotype\n",
		"etc/resolv.conf": "# https://1.1.1.1 (privacy-focused, highly-available DNS service)\n" +
			"nameserver 1.1.1.1\nnameserver 1.0.0.1\n",
		"etc/shadow":  "root:*:19723:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
		"etc/shadow-": "root:*:19000:0:99999:7:::\n",
		// Hash order; see TestExtendedStatesOrder. base-files stays manual,
		// "gone" is not installed.
		"var/lib/apt/extended_states": "Package: dpkg\nArchitecture: amd64\nAuto-Installed: 1\n\n" +
			"Package: coreutils\nArchitecture: amd64\nAuto-Installed: 1\n\n" +
			"Package: apt\nArchitecture: amd64\nAuto-Installed: 1\n\n" +
			"Package: tzdata\nArchitecture: amd64\nAuto-Installed: 1\n\n",
	}
	for name, want := range wantFiles {
		if got := dir.read(name); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", name, got, want)
		}
	}
	if !strings.Contains(wantFiles["etc/apt/sources.list.d/debian.sources"], "# http://snapshot.debian.org/archive/debian/20240101T000000Z\n") {
		t.Error("debian.sources: no snapshot comment")
	}
	for name, want := range map[string]os.FileMode{
		".":                           fs.ModeDir | 0o755,
		"etc/hostname":                0o644,
		"etc/resolv.conf":             0o644,
		"etc/shadow":                  0o640,
		"var/lib/apt/extended_states": 0o644,
	} {
		if fi, err := os.Lstat(dir.path(name)); err != nil {
			t.Error(err)
		} else if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}

	// Everything the image leaves out is gone; its directories stay.
	want := []string{
		"dev", "etc", "etc/apt", "etc/apt/apt.conf.d", "etc/apt/sources.list.d",
		"etc/apt/sources.list.d/debian.sources", "etc/hostname", "etc/resolv.conf",
		"etc/shadow", "etc/shadow-", "proc", "run", "sys", "usr", "usr/bin", "usr/bin/new",
		"usr/bin/new-link", "usr/bin/old", "usr/bin/old-link", "usr/share", "usr/share/keyrings",
		"usr/share/keyrings/debian-archive-keyring.gpg", "var", "var/cache", "var/cache/apt",
		"var/cache/ldconfig", "var/lib", "var/lib/apt", "var/lib/apt/extended_states",
		"var/lib/apt/lists", "var/lib/dpkg", "var/lib/dpkg/status", "var/log", "var/log/apt",
		"var/log/apt/eipp.log.xz",
	}
	if got := dir.list(); !slices.Equal(got, want) {
		t.Errorf("tree:\n%q\nwant:\n%q", got, want)
	}

	// Nothing is newer than the epoch; older things keep their times.
	for name, want := range map[string]time.Time{
		".":                epoch,
		"etc/hostname":     epoch,
		"var/lib/apt":      epoch,
		"usr/bin/new":      epoch,
		"usr/bin/new-link": epoch,
		"usr/bin/old":      old,
		"usr/bin/old-link": old,
		"usr/share":        old,
	} {
		if fi, err := os.Lstat(dir.path(name)); err != nil {
			t.Error(err)
		} else if !fi.ModTime().Equal(want) {
			t.Errorf("%s: mtime %v, want %v", name, fi.ModTime().UTC(), want)
		}
	}
	err = filepath.WalkDir(dir.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err == nil && fi.ModTime().After(epoch) {
			t.Errorf("%s: mtime %v after the epoch", p, fi.ModTime())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFinishOneLineSources(t *testing.T) {
	dir := finishTree(t)
	status := strings.Replace(finishStatus, "Version: 2.6.1", "Version: 2.2.4", 1)
	dir.write("var/lib/dpkg/status", status, 0o644)
	dir.write("etc/apt/sources.list.d/debian.sources", "stale\n", 0o644)
	if err := Finish(dir.root, FinishOptions{Epoch: time.Unix(1704067200, 0), Suite: "bullseye"}); err != nil {
		t.Fatal(err)
	}
	if got, want := dir.read("etc/apt/sources.list"), string(Sources("bullseye", false, "", time.Time{})); got != want {
		t.Errorf("sources.list:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Lstat(dir.path("etc/apt/sources.list.d/debian.sources")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("debian.sources not removed: %v", err)
	}
}

func TestFinishNoSignedByWithoutKeyring(t *testing.T) {
	dir := finishTree(t)
	dir.write("usr/share/keyrings/debian-archive-keyring.gpg", "", 0o644)
	if err := Finish(dir.root, FinishOptions{Epoch: time.Unix(1704067200, 0), Suite: "sid"}); err != nil {
		t.Fatal(err)
	}
	want := "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: sid\nComponents: main\n"
	if got := dir.read("etc/apt/sources.list.d/debian.sources"); got != want {
		t.Errorf("debian.sources:\n%s\nwant:\n%s", got, want)
	}
}

// A symlink in the tree must not lead a write outside it.
func TestFinishSymlinkEscape(t *testing.T) {
	for _, target := range []string{"absolute", "../../../outside"} {
		host := newTestDir(t)
		host.write("outside", "host\n", 0o644)
		outside := host.path("outside")
		dir := finishTree(t)
		os.Remove(dir.path("etc/hostname"))
		link := target
		if target == "absolute" {
			link = outside
		} else {
			// dir/etc/hostname → dir/../../outside, another temp dir's file
			rel, err := filepath.Rel(dir.path("etc"), outside)
			if err != nil {
				t.Fatal(err)
			}
			link = rel
		}
		dir.symlink(link, "etc/hostname")
		if err := Finish(dir.root, FinishOptions{Epoch: time.Unix(1704067200, 0), Suite: "bookworm"}); err == nil {
			t.Errorf("%s: Finish followed etc/hostname → %s", target, link)
		}
		if got := host.read("outside"); got != "host\n" {
			t.Errorf("%s: the file outside the tree now holds %q", target, got)
		}
	}
}

// Removing /proc's contents must not reach a mounted file system.
func TestFinishRefusesMounts(t *testing.T) {
	testenv.RequireRoot(t)
	dir := finishTree(t)
	if err := unix.Mount("tmpfs", dir.path("proc"), "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	defer unix.Unmount(dir.path("proc"), 0)
	dir.write("proc/keep", "x\n", 0o644)
	if err := Finish(dir.root, FinishOptions{Epoch: time.Unix(1704067200, 0), Suite: "bookworm"}); err == nil {
		t.Error("Finish ran with a file system mounted on proc")
	}
	if got := dir.read("proc/keep"); got != "x\n" {
		t.Errorf("proc/keep = %q", got)
	}
}

func TestFinishNeedsEpochAndSuite(t *testing.T) {
	dir := finishTree(t)
	if err := Finish(dir.root, FinishOptions{Suite: "bookworm"}); err == nil {
		t.Error("no error without an epoch")
	}
	if err := Finish(dir.root, FinishOptions{Epoch: time.Unix(1704067200, 0)}); err == nil {
		t.Error("no error without a suite")
	}
}

// testDir is a scratch directory whose helpers fail the test on error.
type testDir struct {
	t    *testing.T
	root string
}

func newTestDir(t *testing.T) testDir { return testDir{t, t.TempDir()} }

func (d testDir) path(name string) string { return filepath.Join(d.root, name) }

func (d testDir) mkdir(name string) {
	d.t.Helper()
	if err := os.MkdirAll(d.path(name), 0o755); err != nil {
		d.t.Fatal(err)
	}
}

func (d testDir) write(name, data string, perm os.FileMode) {
	d.t.Helper()
	if err := os.WriteFile(d.path(name), []byte(data), perm); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Chmod(d.path(name), perm); err != nil {
		d.t.Fatal(err)
	}
}

func (d testDir) read(name string) string {
	d.t.Helper()
	data, err := os.ReadFile(d.path(name))
	if err != nil {
		d.t.Fatal(err)
	}
	return string(data)
}

func (d testDir) symlink(target, name string) {
	d.t.Helper()
	if err := os.Symlink(target, d.path(name)); err != nil {
		d.t.Fatal(err)
	}
}

// setTimes sets the access and modification times of name itself.
func (d testDir) setTimes(name string, tm time.Time) {
	d.t.Helper()
	ts := unix.NsecToTimespec(tm.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, d.path(name), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		d.t.Fatal(err)
	}
}

func (d testDir) sha256(name string) string {
	d.t.Helper()
	sum := sha256.Sum256([]byte(d.read(name)))
	return hex.EncodeToString(sum[:])
}

// list lists the paths below the directory, sorted.
func (d testDir) list() []string {
	d.t.Helper()
	var out []string
	err := filepath.WalkDir(d.root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == d.root {
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		d.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
