package rootfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/internal/testenv"
)

// fakeInstalled is a package with control fields and, if given, a preinst.
func fakeInstalled(name, control string, preinst ...string) *Installed {
	p := &Installed{
		Name:         name,
		Version:      "1.0",
		Architecture: "amd64",
		Control:      []byte("Package: " + name + "\n" + control),
		Members:      map[string][]byte{"md5sums": []byte("x  usr/share/doc/" + name + "/copyright\n")},
	}
	for _, script := range preinst {
		p.Members["preinst"] = []byte(script)
	}
	return p
}

func installedNames(pkgs []*Installed) string {
	var s []string
	for _, p := range pkgs {
		s = append(s, p.Name)
	}
	return strings.Join(s, " ")
}

func TestConfigureOrder(t *testing.T) {
	pkgs := []*Installed{
		fakeInstalled("tar", "Pre-Depends: libc6 (>= 2.34), libselinux1\n"),
		fakeInstalled("apt", "Depends: adduser,\n gpgv | gpgv2, libapt-pkg6.0 (>= 2.6)\n"),
		fakeInstalled("libapt-pkg6.0", "Depends: libc6\n"),
		fakeInstalled("gpgv", "Depends: libc6\n"),
		fakeInstalled("adduser", "Depends: passwd\n"),
		fakeInstalled("passwd", "Depends: libpam-modules\nPre-Depends: libc6\n"),
		fakeInstalled("libpam-modules", "Pre-Depends: libpam0g\n"),
		fakeInstalled("libpam0g", "Depends: debconf-2.0\n"),
		fakeInstalled("debconf", "Provides: debconf-2.0\nPre-Depends: perl-base\n"),
		fakeInstalled("perl-base", "Pre-Depends: libc6 (>= 2.35)\n"),
		fakeInstalled("libc6", "Depends: libgcc-s1\n"),
		fakeInstalled("libgcc-s1", "Depends: gcc-12-base, libc6 (>= 2.35)\n"),
		fakeInstalled("gcc-12-base", ""),
		fakeInstalled("libselinux1", "Depends: libc6\n"),
		fakeInstalled("base-files", "Pre-Depends: awk\n"),
		fakeInstalled("base-passwd", "Depends: libc6, libdebconfclient0\n"),
		fakeInstalled("mawk", "Provides: awk\nPre-Depends: libc6\n"),
	}
	core, rest := configureOrder(pkgs)
	if got, want := installedNames(core), "base-passwd base-files libc6 perl-base mawk"; got != want {
		t.Errorf("core\n got %s\nwant %s", got, want)
	}
	want := "debconf libpam0g libpam-modules passwd adduser gpgv libapt-pkg6.0 apt gcc-12-base libgcc-s1 libselinux1 tar"
	if got := installedNames(rest); got != want {
		t.Errorf("rest\n got %s\nwant %s", got, want)
	}
}

func TestControlValue(t *testing.T) {
	ctl := []byte("Package: apt\nDepends: adduser,\n gpgv | gpgv2,\n\tlibc6\nDescription: x\n y\n")
	if got, want := controlValue(ctl, "depends"), "adduser, gpgv | gpgv2, libc6"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := controlValue(ctl, "Pre-Depends"); got != "" {
		t.Errorf("missing field: got %q", got)
	}
}

// configureRoot is a busybox root with a fake ldconfig and a fake dpkg
// that log their runs to /tmp/log; dpkg runs dpkgScript after that.
func configureRoot(t *testing.T, dpkgScript string) string {
	t.Helper()
	dir := busyboxRoot(t)
	writeScript(t, dir, "usr/sbin/ldconfig", "#!/bin/sh\necho ldconfig >>/tmp/log\n")
	writeScript(t, dir, "usr/bin/dpkg", `#!/bin/sh
echo "dpkg $* umask=$(umask) policy=$(/usr/sbin/policy-rc.d; echo $?)" >>/tmp/log
`+dpkgScript)
	return dir
}

func writeScript(t *testing.T, dir, name, text string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}

func readRunLog(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "tmp/log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// logPreinst logs how it was run and what dpkg's tmp.ci holds.
const logPreinst = `#!/bin/sh
echo "preinst $0 $* $DPKG_MAINTSCRIPT_NAME $DPKG_MAINTSCRIPT_PACKAGE $DPKG_MAINTSCRIPT_ARCH $DPKG_RUNNING_VERSION root=[$DPKG_ROOT] $DEBIAN_FRONTEND $(head -n1 /var/lib/dpkg/tmp.ci/control) $(ls /var/lib/dpkg/tmp.ci | tr '\n' ' ')" >>/tmp/log
`

func TestConfigure(t *testing.T) {
	dir := configureRoot(t, "")
	pkgs := []*Installed{
		fakeInstalled("libfoo1", "Multi-Arch: same\nDepends: base-files\n", logPreinst),
		fakeInstalled("nopreinst", ""),
		fakeInstalled("dpkg", ""),
		fakeInstalled("base-passwd", "", logPreinst),
		fakeInstalled("debconf", "Depends: nopreinst\n", logPreinst),
	}
	pkgs[2].Version = "1.21.22"

	var log bytes.Buffer
	if err := Configure(context.Background(), dir, pkgs, &log, nil); err != nil {
		t.Fatalf("%v\n%s", err, log.Bytes())
	}
	const pi = "preinst /var/lib/dpkg/tmp.ci/preinst install preinst "
	want := `ldconfig
` + pi + `base-passwd amd64 1.21.22 root=[] noninteractive Package: base-passwd control md5sums preinst 
dpkg --configure --force-depends base-passwd umask=0022 policy=101
dpkg --configure --force-depends dpkg umask=0022 policy=101
` + pi + `debconf amd64 1.21.22 root=[] noninteractive Package: debconf control md5sums preinst 
` + pi + `libfoo1 amd64 1.21.22 root=[] noninteractive Package: libfoo1 control md5sums preinst 
dpkg --force-confold --force-configure-any --force-depends --configure --pending umask=0022 policy=101
`
	if got := readRunLog(t, dir); got != want {
		t.Errorf("runs\n got %s\nwant %s", got, want)
	}
	for _, name := range []string{"usr/sbin/policy-rc.d", "var/lib/dpkg/tmp.ci"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s left behind", name)
		}
	}
	hostMountsUnder(t, dir)
}

// TestConfigureReinstall checks that the core packages of $required are
// unpacked again after their first configuration, as debootstrap's dpkg
// --unpack of $required does, and left unpacked for the last dpkg call.
func TestConfigureReinstall(t *testing.T) {
	dir := configureRoot(t, "")
	logScript := func(script string) []byte {
		return []byte("#!/bin/sh\necho \"" + script + " $0 $* $DPKG_MAINTSCRIPT_NAME $DPKG_MAINTSCRIPT_PACKAGE\" >>/tmp/log\n")
	}
	libc := fakeInstalled("libc6", "Multi-Arch: same\n")
	libc.Required = true
	libc.Version = "2.36-9"
	for _, s := range []string{"preinst", "prerm", "postrm"} {
		libc.Members[s] = logScript(s)
	}
	notRequired := fakeInstalled("mawk", "", logPreinst)
	pkgs := []*Installed{libc, notRequired}
	// What the fake dpkg --configure would have left.
	info := filepath.Join(dir, "var/lib/dpkg/info")
	if err := os.MkdirAll(info, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"prerm", "postrm"} {
		if err := os.WriteFile(filepath.Join(info, "libc6:amd64."+s), libc.Members[s], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	status := "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n" +
		"Package: mawk\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n"
	if err := os.WriteFile(filepath.Join(dir, "var/lib/dpkg/status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	if err := Configure(context.Background(), dir, pkgs, &log, nil); err != nil {
		t.Fatalf("%v\n%s", err, log.Bytes())
	}
	want := `ldconfig
preinst /var/lib/dpkg/tmp.ci/preinst install preinst libc6
dpkg --configure --force-depends libc6 umask=0022 policy=101
preinst /var/lib/dpkg/tmp.ci/preinst install preinst mawk amd64  root=[] noninteractive Package: mawk control md5sums preinst 
dpkg --configure --force-depends mawk umask=0022 policy=101
prerm /var/lib/dpkg/info/libc6:amd64.prerm upgrade 2.36-9 prerm libc6
preinst /var/lib/dpkg/tmp.ci/preinst upgrade 2.36-9 2.36-9 preinst libc6
postrm /var/lib/dpkg/info/libc6:amd64.postrm upgrade 2.36-9 postrm libc6
dpkg --force-confold --force-configure-any --force-depends --configure --pending umask=0022 policy=101
`
	if got := readRunLog(t, dir); got != want {
		t.Errorf("runs\n got %s\nwant %s", got, want)
	}
	wantStatus := "Package: libc6\nStatus: install ok unpacked\nArchitecture: amd64\nVersion: 2.36-9\nConfig-Version: 2.36-9\n\n" +
		"Package: mawk\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n"
	if b, _ := os.ReadFile(filepath.Join(dir, "var/lib/dpkg/status")); string(b) != wantStatus {
		t.Errorf("status:\n%s\nwant:\n%s", b, wantStatus)
	}
}

func TestFirstStage(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	old := time.Date(2023, 1, 8, 21, 50, 0, 0, time.UTC)
	for _, d := range []string{"dev", "proc"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, d), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := firstStage(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "etc/fstab"))
	if fi, _ := os.Stat(filepath.Join(dir, "etc/fstab")); err != nil || string(data) != "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n" || fi.Mode() != 0o644 {
		t.Errorf("etc/fstab: %q, %v", data, err)
	}
	data, err = os.ReadFile(filepath.Join(dir, "etc/apt/sources.list"))
	if fi, _ := os.Stat(filepath.Join(dir, "etc/apt/sources.list")); err != nil || string(data) != firstSources || fi.Mode() != 0o644 {
		t.Errorf("etc/apt/sources.list: %q, %v", data, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "dev/null"), &st); err != nil || st.Mode != unix.S_IFCHR|0o666 || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o rdev %x, %v", st.Mode, st.Rdev, err)
	}
	for name, want := range map[string]string{"dev/fd": "/proc/self/fd", "dev/stderr": "/proc/self/fd/2"} {
		if target, err := os.Readlink(filepath.Join(dir, name)); err != nil || target != want {
			t.Errorf("%s -> %q, %v; want %s", name, target, err, want)
		}
	}
	// Both changed now, as under debootstrap: the image keeps these
	// times, though not what dev holds.
	for _, d := range []string{"dev", "proc", "dev/pts", "dev/shm"} {
		fi, err := os.Lstat(filepath.Join(dir, d))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 || fi.ModTime().Equal(old) {
			t.Errorf("%s: %v, %v", d, fi, err)
		}
	}

	// A second run keeps what is there.
	for _, name := range []string{"etc/fstab", "etc/apt/sources.list"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("mine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := firstStage(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"etc/fstab", "etc/apt/sources.list"} {
		if data, _ := os.ReadFile(filepath.Join(dir, name)); string(data) != "mine\n" {
			t.Errorf("%s overwritten: %q", name, data)
		}
	}
}

func TestStageConffiles(t *testing.T) {
	dir := t.TempDir()
	mtime := time.Date(2023, 1, 8, 21, 50, 0, 0, time.UTC)
	writeScript(t, dir, "etc/new.conf.dpkg-new", "new\n")
	if err := os.Chmod(filepath.Join(dir, "etc/new.conf.dpkg-new"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "etc/new.conf.dpkg-new"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	writeScript(t, dir, "etc/kept.conf", "mine\n")
	writeScript(t, dir, "etc/kept.conf.dpkg-new", "theirs\n")
	if err := os.Symlink("new.conf", filepath.Join(dir, "etc/link.conf.dpkg-new")); err != nil {
		t.Fatal(err)
	}
	p := fakeInstalled("foo", "")
	p.Conffiles = []string{"/etc/new.conf", "/etc/kept.conf", "/etc/link.conf", "/etc/not-shipped.conf"}
	if err := stageConffiles(dir, []*Installed{p}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"etc/new.conf": "new\n", "etc/kept.conf": "mine\n", "etc/new.conf.dpkg-new": "new\n"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(data) != want {
			t.Errorf("%s: %q, %v; want %q", name, data, err, want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "etc/new.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o640 || !fi.ModTime().Equal(mtime) {
		t.Errorf("etc/new.conf: mode %v, mtime %v; want -rw-r-----, %v", fi.Mode(), fi.ModTime(), mtime)
	}
	if target, err := os.Readlink(filepath.Join(dir, "etc/link.conf")); err != nil || target != "new.conf" {
		t.Errorf("etc/link.conf: %q, %v", target, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/not-shipped.conf")); err == nil {
		t.Error("etc/not-shipped.conf created")
	}
}

func TestConfigureKeepsPolicyRCD(t *testing.T) {
	dir := configureRoot(t, "")
	const own = "#!/bin/sh\n# the image's own\nexit 101\n"
	writeScript(t, dir, "usr/sbin/policy-rc.d", own)
	if err := Configure(context.Background(), dir, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "usr/sbin/policy-rc.d"))
	if err != nil || string(data) != own {
		t.Errorf("policy-rc.d is %q, %v; want it untouched", data, err)
	}
}

func TestConfigurePreinstFails(t *testing.T) {
	dir := configureRoot(t, "")
	preinst := "#!/bin/sh\necho first\necho 'boom: it broke' >&2\necho >&2\nexit 7\n"
	err := Configure(context.Background(), dir, []*Installed{fakeInstalled("foo", "", preinst)}, nil, nil)
	if err == nil {
		t.Fatal("Configure succeeded")
	}
	for _, want := range []string{"package foo", "preinst install", "exit status 7", "boom: it broke"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(readRunLog(t, dir), "dpkg") {
		t.Error("dpkg ran after a failed preinst")
	}
	for _, name := range []string{"usr/sbin/policy-rc.d", "var/lib/dpkg/tmp.ci"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s left behind", name)
		}
	}
	hostMountsUnder(t, dir)
}

func TestConfigurePostinstFails(t *testing.T) {
	// dpkg's own words (LC_ALL=C) when a postinst fails.
	dir := configureRoot(t, `
echo "Setting up base-files (12.4) ..."
echo "working on it"
echo "chown: invalid group: 'root:mail'" >&2
echo "dpkg: error processing package base-files (--configure):" >&2
echo " installed base-files package post-installation script subprocess returned error exit status 1" >&2
echo "Setting up libc-bin (2.36) ..."
echo "dpkg: error processing package libc-bin (--configure):" >&2
echo " installed libc-bin package post-installation script subprocess was killed by signal (Killed)" >&2
echo "dpkg: error processing package apt (--configure):" >&2
echo " dependency problems - leaving unconfigured" >&2
echo "Errors were encountered while processing:" >&2
echo " base-files" >&2
exit 1
`)
	var log bytes.Buffer
	err := Configure(context.Background(), dir, nil, &log, nil)
	if err == nil {
		t.Fatal("Configure succeeded")
	}
	want := "package base-files: postinst: exit status 1: chown: invalid group: 'root:mail'\n" +
		"package libc-bin: postinst: killed by signal (Killed)\n" +
		"package apt: dpkg --configure: dependency problems - leaving unconfigured"
	if err.Error() != want {
		t.Errorf("error\n got %s\nwant %s", err, want)
	}
	if !strings.Contains(log.String(), "working on it\n") {
		t.Errorf("log lacks the output:\n%s", log.Bytes())
	}
}

func TestConfigureDpkgFails(t *testing.T) {
	dir := configureRoot(t, "echo 'dpkg: error: something odd' >&2\nexit 2\n")
	err := Configure(context.Background(), dir, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "exit status 2: dpkg: error: something odd") {
		t.Fatalf("got %v", err)
	}
}

func TestConfigureCancel(t *testing.T) {
	dir := configureRoot(t, "")
	slow := fakeInstalled("slow", "", "#!/bin/sh\nreadlink /proc/self/ns/pid >/tmp/pidns\necho $$ >/tmp/fg\nexec sleep 1000\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- Configure(ctx, dir, []*Installed{slow}, nil, nil) }()
	waitPIDs(t, dir, "fg")
	pidns, err := os.ReadFile(filepath.Join(dir, "tmp/pidns"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Configure did not return after cancellation")
	}
	namespaceEmpty(t, "pid", strings.TrimSpace(string(pidns)))
	for _, name := range []string{"usr/sbin/policy-rc.d", "var/lib/dpkg/tmp.ci"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s left behind", name)
		}
	}
	hostMountsUnder(t, dir)
}

// TestConfigureSettingUp checks that Configure tells of each package dpkg
// says it sets up, counting each once: the core packages are set up
// twice, first one by one, then with the rest.
func TestConfigureSettingUp(t *testing.T) {
	dir := configureRoot(t, `for a; do last=$a; done
case "$*" in
*--pending*) printf 'Setting up mawk (1.0) ...\nSetting up libc6:amd64 (2.36-9) ...\nsome script output\nSetting up zz (1) ...\nProcessing triggers for libc-bin (2.36-9) ...\n' ;;
*) echo "Setting up $last (1.0) ..." ;;
esac
`)
	pkgs := []*Installed{fakeInstalled("zz", ""), fakeInstalled("mawk", ""), fakeInstalled("libc6", "Multi-Arch: same\n")}
	var told []string
	settingUp := func(pkg string, done, total int) { told = append(told, fmt.Sprintf("%s %d/%d", pkg, done, total)) }
	var log bytes.Buffer
	if err := Configure(context.Background(), dir, pkgs, &log, settingUp); err != nil {
		t.Fatalf("%v\n%s", err, log.Bytes())
	}
	want := []string{"libc6 1/3", "mawk 2/3", "mawk 2/3", "libc6 2/3", "zz 3/3"}
	if !slices.Equal(told, want) {
		t.Errorf("told %q, want %q\n%s", told, want, log.Bytes())
	}
}
