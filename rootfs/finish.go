package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"pault.ag/go/debian/version"

	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/debian/control"
	"github.com/basebuild/basebuild/rootfs/exclude"
	"github.com/basebuild/basebuild/snapshots"
)

// The files written here are debuerreotype 0.15's, byte for byte: the
// version Debian ships and that built the reference images and the
// official images of 2024 (docker-debian-artifacts: "debuerreotype 0.15").
// Later versions differ in two places: the aptitude manual's link in
// docker-autoremove-suggests, and Signed-By naming a .pgp keyring where
// one exists (trixie and later).

// FinishOptions says how Finish completes a configured tree.
type FinishOptions struct {
	// Epoch is the image's SOURCE_DATE_EPOCH: nothing in the tree is
	// left newer, and /etc/shadow's last-change dates are clamped to its day.
	Epoch time.Time
	// Suite names the release, e.g. "bookworm"; the sources list
	// SUITE, SUITE-updates and SUITE-security (SUITE/updates for buster
	// and older; only SUITE for sid).
	Suite string
	// Snapshot, when set, is the snapshot.debian.org timestamp written as
	// a comment above each source, as the official images have it.
	Snapshot time.Time
	// Manual are the packages left marked manually installed; all other
	// installed packages are marked automatically installed, as
	// debuerreotype-init's "apt-mark auto '.*'" and "apt-mark manual
	// INCLUDES" leave them. The official images keep none manual.
	Manual []string
}

// MinimizingConfig writes debuerreotype-minimizing-config's files into the
// tree dir: policy-rc.d (no services start), dpkg's force-unsafe-io, and
// APT's docker-* configuration. debuerreotype runs it after debootstrap has
// configured every package, so run it after configuring: policy-rc.d would
// otherwise stop maintainer scripts from starting services, and although
// force-unsafe-io changes no file dpkg writes, the order keeps the build
// debuerreotype's.
//
// The /sbin/initctl diversion the script adds when an "upstart" package is
// installable is left out: no release since stretch has upstart.
func MinimizingConfig(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := writeFileIn(root, "usr/sbin/policy-rc.d", []byte(policyRCD), 0o755); err != nil {
		return err
	}
	// debuerreotype writes the rest only where the directories exist
	// (lenny and older have no dpkg.cfg.d).
	if isDirIn(root, "etc/dpkg/dpkg.cfg.d") {
		if err := writeFileIn(root, "etc/dpkg/dpkg.cfg.d/docker-apt-speedup", []byte(dockerAptSpeedup), 0o644); err != nil {
			return err
		}
	}
	if isDirIn(root, "etc/apt/apt.conf.d") {
		for _, f := range dockerAptConf {
			if err := writeFileIn(root, "etc/apt/apt.conf.d/"+f.name, []byte(f.text), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

const policyRCD = `#!/bin/sh

# For most Docker users, "apt-get install" only happens during "docker build",
# where starting services doesn't work and often fails in humorous ways. This
# prevents those failures by stopping the services from attempting to start.

exit 101
`

const dockerAptSpeedup = `# For most Docker users, package installs happen during "docker build", which
# doesn't survive power loss and gets restarted clean afterwards anyhow, so
# this minor tweak gives us a nice speedup (much nicer on spinning disks,
# obviously).

force-unsafe-io
`

const aptGetClean = `"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";`

// dockerAptConf are the etc/apt/apt.conf.d files, in the script's order.
// They are written for APT 1.0.9.2 and later: older APT also needs
// Acquire::CompressionTypes::Order and "//" comments.
var dockerAptConf = []struct{ name, text string }{
	{"docker-autoremove-suggests", `# Since Docker users are looking for the smallest possible final images, the
# following emerges as a very common pattern:

#   RUN apt-get update \
#       && apt-get install -y <packages> \
#       && <do some compilation work> \
#       && apt-get purge -y --auto-remove <packages>

# By default, APT will actually _keep_ packages installed via Recommends or
# Depends if another package Suggests them, even and including if the package
# that originally caused them to be installed is removed.  Setting this to
# "false" ensures that APT is appropriately aggressive about removing the
# packages it added.

# https://aptitude.alioth.debian.org/doc/en/ch02s05s05.html#configApt-AutoRemove-SuggestsImportant
Apt::AutoRemove::SuggestsImportant "false";
`},
	{"docker-clean", `# Since for most Docker users, package installs happen in "docker build" steps,
# they essentially become individual layers due to the way Docker handles
# layering, especially using CoW filesystems.  What this means for us is that
# the caches that APT keeps end up just wasting space in those layers, making
# our layers unnecessarily large (especially since we'll normally never use
# these caches again and will instead just "docker build" again and make a brand
# new image).

# Ideally, these would just be invoking "apt-get clean", but in our testing,
# that ended up being cyclic and we got stuck on APT's lock, so we get this fun
# creation that's essentially just "apt-get clean".
DPkg::Post-Invoke { ` + aptGetClean + ` };
APT::Update::Post-Invoke { ` + aptGetClean + ` };

Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";

# Note that we do realize this isn't the ideal way to do this, and are always
# open to better suggestions (https://github.com/debuerreotype/debuerreotype/issues).
`},
	{"docker-gzip-indexes", `# Since Docker users using "RUN apt-get update && apt-get install -y ..." in
# their Dockerfiles don't go delete the lists files afterwards, we want them to
# be as small as possible on-disk, so we explicitly request that Apt keep them
# compressed on-disk too instead of decompressing them.

# For comparison, an "apt-get update" layer without this on a pristine
# "debian:wheezy" base image was "29.88 MB", where with this it was only
# "8.273 MB".

Acquire::GzipIndexes "true";
`},
	{"docker-no-languages", `# In Docker, we don't often need the "Translations" files, so we're just wasting
# time and space by downloading them, and this inhibits that.  For users that do
# need them, it's a simple matter to delete this file and "apt-get update". :)

Acquire::Languages "none";
`},
}

// Finish does to the configured tree dir what debuerreotype does after
// debootstrap, so that dir holds exactly what the official image's tar
// holds: debuerreotype-init's apt-mark, hostname, resolv.conf, root
// directory and /etc/shadow fixes; examples/debian.sh's sources;
// debuerreotype-fixup; and the removal of everything debuerreotype-tar and
// examples/debian.sh leave out of the tar (the epoch file, /etc/machine-id,
// APT's lists and caches, /dev, /proc and /sys contents, logs with
// timestamps). Last, every entry newer than the epoch gets the epoch as its
// time, symlinks included.
//
// Nothing may be mounted below dir. Writes go through an os.Root, so a
// symlink in the tree cannot redirect them outside it.
func Finish(dir string, o FinishOptions) error {
	if o.Epoch.IsZero() || o.Epoch.Unix() < 0 {
		return fmt.Errorf("finish %s: no epoch", dir)
	}
	if o.Suite == "" {
		return fmt.Errorf("finish %s: no suite", dir)
	}
	if err := checkNoMountsBelow(dir); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	pkgs, err := readDpkgStatus(root)
	if err != nil {
		return fmt.Errorf("finish %s: %w", dir, err)
	}
	steps := []func() error{
		func() error { return writeExtendedStates(root, pkgs, o.Manual) },
		func() error { return writeSources(root, pkgs, o.Suite, o.Snapshot) },
		func() error { return writeHostFiles(root) },
		func() error { return clampShadow(root, o.Epoch) },
		func() error { return removeExcluded(root) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("finish %s: %w", dir, err)
		}
	}
	return clampTimes(dir, o.Epoch)
}

// statusPackage is what Finish needs of a var/lib/dpkg/status stanza.
type statusPackage struct {
	name, version, arch, multiArch, status string
}

// installed reports whether APT sees a current version of p: everything
// but "not-installed" and "config-files".
func (p statusPackage) installed() bool {
	f := strings.Fields(p.status)
	return len(f) == 3 && f[2] != "not-installed" && f[2] != "config-files"
}

// readDpkgStatus reads the packages of the tree's var/lib/dpkg/status.
func readDpkgStatus(root *os.Root) ([]statusPackage, error) {
	data, err := root.ReadFile("var/lib/dpkg/status")
	if err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	entries, err := control.ReadStatus(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	pkgs := make([]statusPackage, len(entries))
	for i, e := range entries {
		pkgs[i] = statusPackage{name: e.Package, version: e.Version, arch: e.Architecture, multiArch: e.MultiArch, status: e.Status}
	}
	return pkgs, nil
}

// findInstalled returns the installed package name.
func findInstalled(pkgs []statusPackage, name string) (statusPackage, error) {
	for _, p := range pkgs {
		if p.name == name && p.installed() {
			return p, nil
		}
	}
	return statusPackage{}, fmt.Errorf("package %s is not installed", name)
}

// versionAtLeast reports whether p's version is at least least.
func versionAtLeast(p statusPackage, least string) (bool, error) {
	v, err := version.Parse(p.version)
	if err != nil {
		return false, fmt.Errorf("%s version %q: %w", p.name, p.version, err)
	}
	l, err := version.Parse(least)
	if err != nil {
		return false, err
	}
	return version.Compare(v, l) >= 0, nil
}

// writeExtendedStates writes var/lib/apt/extended_states as
// "apt-mark auto '.*'; apt-mark manual REQUIRED" leave it in a tree that has
// none: a stanza per installed package that is not required, in the order
// of APT's package hash table, which is where apt-mark writes new stanzas.
func writeExtendedStates(root *os.Root, pkgs []statusPackage, required []string) error {
	apt, err := findInstalled(pkgs, "apt")
	if err != nil {
		return fmt.Errorf("marking packages automatically installed: %w", err)
	}
	// APT 2.1.13 raised APT::Cache-HashTableSize from 50503.
	size := uint32(50503)
	if newer, err := versionAtLeast(apt, "2.1.13"); err != nil {
		return err
	} else if newer {
		size = 196613
	}
	var auto []statusPackage
	for _, p := range pkgs {
		if p.installed() && !slices.Contains(required, p.name) {
			auto = append(auto, p)
		}
	}
	return writeFileIn(root, "var/lib/apt/extended_states", extendedStates(auto, apt.arch, size), 0o644)
}

// extendedStates formats pkgs as apt-mark writes them: ordered by APT's
// hash of the name, then by length and bytes of the name (APT keeps each
// hash chain so sorted), with "all" shown as the native architecture.
func extendedStates(pkgs []statusPackage, native string, tableSize uint32) []byte {
	pkgs = slices.Clone(pkgs)
	slices.SortStableFunc(pkgs, func(a, b statusPackage) int {
		if ha, hb := aptHash(a.name, tableSize), aptHash(b.name, tableSize); ha != hb {
			return int(ha) - int(hb)
		}
		if len(a.name) != len(b.name) {
			return len(a.name) - len(b.name)
		}
		return strings.Compare(a.name, b.name)
	})
	var b bytes.Buffer
	for _, p := range pkgs {
		arch := p.arch
		if arch == "all" {
			arch = native
		}
		fmt.Fprintf(&b, "Package: %s\nArchitecture: %s\nAuto-Installed: 1\n\n", p.name, arch)
	}
	return b.Bytes()
}

// aptHash is pkgCache::sHash: djb2 over the lower-cased name.
func aptHash(name string, tableSize uint32) uint32 {
	h := uint32(5381)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = 33*h + uint32(c)
	}
	return h % tableSize
}

// The APT sources of the image, one of which Finish writes.
const (
	sourcesDeb822  = "etc/apt/sources.list.d/debian.sources"
	sourcesOneLine = "etc/apt/sources.list"
	archiveKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
)

// writeSources writes the sources examples/debian.sh leaves in the image:
// deb822 where APT is 2.3 or newer, else a one-line sources.list, and
// removes the other file.
func writeSources(root *os.Root, pkgs []statusPackage, suite string, snapshot time.Time) error {
	apt, err := findInstalled(pkgs, "apt")
	if err != nil {
		return fmt.Errorf("writing sources: %w", err)
	}
	deb822, err := versionAtLeast(apt, "2.3~")
	if err != nil {
		return err
	}
	name, other := sourcesOneLine, sourcesDeb822
	keyring := ""
	if deb822 {
		name, other = other, name
		// Signed-By only names a keyring the tree has ("[ -s ]").
		if fi, err := root.Stat(strings.TrimPrefix(archiveKeyring, "/")); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			keyring = archiveKeyring
		}
	}
	if err := removeIn(root, other); err != nil {
		return err
	}
	return writeFileIn(root, name, Sources(suite, deb822, keyring, snapshot), 0o644)
}

// Sources returns the image's APT sources for suite as
// debuerreotype-debian-sources-list writes them without --snapshot: deb822
// stanzas (with Signed-By: keyring unless it is empty) or one-line entries
// on deb.debian.org. A non-zero snapshot adds its snapshot.debian.org URL
// above each source as a comment.
func Sources(suite string, deb822 bool, keyring string, snapshot time.Time) []byte {
	var b bytes.Buffer
	if deb822 {
		for i, s := range groupSources(suite, snapshot) {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString("Types: deb\n")
			if !snapshot.IsZero() {
				fmt.Fprintf(&b, "# %s\n", s.snapshot)
			}
			fmt.Fprintf(&b, "URIs: %s\nSuites: %s\nComponents: main\n", s.uri, strings.Join(s.suites, " "))
			if keyring != "" {
				fmt.Fprintf(&b, "Signed-By: %s\n", keyring)
			}
		}
		return b.Bytes()
	}
	for _, s := range sourceSuites(suite) {
		uri, snap := sourceArchive(s, snapshot)
		if !snapshot.IsZero() {
			fmt.Fprintf(&b, "# deb %s %s main\n", snap, s)
		}
		fmt.Fprintf(&b, "deb %s %s main\n", uri, s)
	}
	return b.Bytes()
}

// sourceSuites lists the suites of an image of suite, in
// debuerreotype-debian-sources-list's order.
func sourceSuites(suite string) []string {
	if debian.Unstable(suite) {
		return []string{suite}
	}
	return []string{suite, debian.SecuritySuite(suite), suite + "-updates"}
}

// sourceArchive returns the deb.debian.org archive serving suite and its
// snapshot at t.
func sourceArchive(suite string, t time.Time) (uri, snapshot string) {
	mirror := snapshots.Mirror(snapshots.DefaultMirror)
	snap := snapshots.Snapshot(snapshots.DefaultServer, t)
	if strings.HasSuffix(suite, "-security") || strings.HasSuffix(suite, "/updates") {
		return mirror.Security, snap.Security
	}
	return mirror.Debian, snap.Debian
}

// deb822Source is one deb822 stanza: an archive and its suites.
type deb822Source struct {
	uri, snapshot string
	suites        []string
}

// groupSources groups the suites by archive, archives in order of first use.
func groupSources(suite string, snapshot time.Time) []deb822Source {
	var out []deb822Source
next:
	for _, s := range sourceSuites(suite) {
		uri, snap := sourceArchive(s, snapshot)
		for i := range out {
			if out[i].uri == uri {
				out[i].suites = append(out[i].suites, s)
				continue next
			}
		}
		out = append(out, deb822Source{uri, snap, []string{s}})
	}
	return out
}

// writeHostFiles writes debuerreotype-init's /etc/hostname and
// /etc/resolv.conf and gives the root directory root:root 0755.
func writeHostFiles(root *os.Root) error {
	if err := writeFileIn(root, "etc/hostname", []byte("debuerreotype\n"), 0o644); err != nil {
		return err
	}
	resolv := "# https://1.1.1.1 (privacy-focused, highly-available DNS service)\n" +
		"nameserver 1.1.1.1\n" +
		"nameserver 1.0.0.1\n"
	if err := writeFileIn(root, "etc/resolv.conf", []byte(resolv), 0o644); err != nil {
		return err
	}
	if err := root.Chown(".", 0, 0); err != nil {
		return err
	}
	return root.Chmod(".", 0o755)
}

// clampShadow lowers the last-change field (the third) of etc/shadow and
// etc/shadow- to the epoch's day where it is later (https://bugs.debian.org/857803).
// A changed file is rewritten in place, keeping its mode and owner.
func clampShadow(root *os.Root, epoch time.Time) error {
	day := epoch.Unix() / (24 * 60 * 60)
	for _, name := range []string{"etc/shadow", "etc/shadow-"} {
		data, err := root.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		clamped, changed := clampShadowDays(data, day)
		if !changed {
			continue
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(clamped)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// clampShadowDays sets every numeric third field of the shadow file data
// that is greater than day to day.
func clampShadowDays(data []byte, day int64) ([]byte, bool) {
	lines := strings.SplitAfter(string(data), "\n")
	changed := false
	for i, line := range lines {
		body := strings.TrimSuffix(line, "\n")
		fields := strings.Split(body, ":")
		if len(fields) < 3 {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(fields[2]), 10, 64)
		if err != nil || n <= day {
			continue
		}
		fields[2] = strconv.FormatInt(day, 10)
		lines[i] = strings.Join(fields, ":") + line[len(body):]
		changed = true
	}
	return []byte(strings.Join(lines, "")), changed
}

// fixupRemoved are removed from the tree as debuerreotype-fixup removes
// them (its logs and caches), and as examples/debian.sh leaves it out of
// the tar (never booted, so no machine-id: debuerreotype-fixup empties
// it). What debuerreotype-tar leaves out is the exclude package's.
var fixupRemoved = []string{
	"var/log/dpkg.log",
	"var/log/bootstrap.log",
	"var/log/alternatives.log",
	"var/cache/ldconfig/aux-cache",
	"run/mount/utab",
	"etc/machine-id",
}

// removeExcluded removes what the image leaves out.
func removeExcluded(root *os.Root) error {
	for _, name := range slices.Concat(fixupRemoved, exclude.Files) {
		if err := removeIn(root, name); err != nil {
			return err
		}
	}
	// debuerreotype-fixup: "rmdir run/mount", if empty
	if isRealDir(root, "run/mount") {
		if err := root.Remove("run/mount"); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
	for _, dir := range exclude.Contents {
		if err := emptyDirIn(root, dir); err != nil {
			return err
		}
	}
	return nil
}

// realParents reports whether every parent directory of name is a
// directory rather than a symlink, as tar sees the path when matching its
// exclusions.
func realParents(root *os.Root, name string) bool {
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		fi, err := root.Lstat(d)
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// removeIn removes the file name, like "rm -f" but only through real
// directories; a missing file is no error.
func removeIn(root *os.Root, name string) error {
	if !realParents(root, name) {
		return nil
	}
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: a directory, want a file", name)
	}
	return root.Remove(name)
}

// isRealDir reports whether name is a directory reached through
// directories only.
func isRealDir(root *os.Root, name string) bool {
	if !realParents(root, name) {
		return false
	}
	fi, err := root.Lstat(name)
	return err == nil && fi.IsDir()
}

// emptyDirIn removes everything inside the directory name, if it is one.
func emptyDirIn(root *os.Root, name string) error {
	if !isRealDir(root, name) {
		return nil
	}
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	children, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, c := range children {
		if err := root.RemoveAll(name + "/" + c); err != nil {
			return err
		}
	}
	return nil
}

// isDirIn reports whether name is a directory, following symlinks like "[ -d ]".
func isDirIn(root *os.Root, name string) bool {
	fi, err := root.Stat(name)
	return err == nil && fi.IsDir()
}

// writeFileIn writes name like the shell's "> name; chmod perm name":
// an existing file keeps its owner, and gets perm.
func writeFileIn(root *os.Root, name string, data []byte, perm os.FileMode) error {
	if err := root.WriteFile(name, data, perm); err != nil {
		return err
	}
	return root.Chmod(name, perm)
}

// checkNoMountsBelow fails if anything is mounted below dir: removing the
// contents of a bind-mounted /dev or /proc would reach the host's.
func checkNoMountsBelow(dir string) error {
	mounts, err := MountsBelow(dir)
	if err != nil {
		return fmt.Errorf("checking for mounts below %s: %w", dir, err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("finish %s: %s is mounted; unmount it first", dir, mounts[0])
	}
	return nil
}

// clampTimes gives every entry of dir whose modification time is after
// epoch the epoch as access and modification time, symlinks themselves
// rather than their targets: debuerreotype-fixup's
// "find -newermt @EPOCH -exec touch --no-dereference".
func clampTimes(dir string, epoch time.Time) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	ts := unix.NsecToTimespec(epoch.UnixNano())
	if err := clampAt(fd, ".", &st, ts, dir); err != nil {
		unix.Close(fd)
		return err
	}
	return clampDir(fd, dir, uint64(st.Dev), ts)
}

// clampAt sets the times of name in directory dirfd, whose lstat is st, if
// it is newer than ts.
func clampAt(dirfd int, name string, st *unix.Stat_t, ts unix.Timespec, pathname string) error {
	if st.Mtim.Sec < ts.Sec || st.Mtim.Sec == ts.Sec && st.Mtim.Nsec <= ts.Nsec {
		return nil
	}
	if err := unix.UtimesNanoAt(dirfd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: pathname, Err: err}
	}
	return nil
}

// clampDir clamps the times of the contents of the directory open as fd,
// which it closes, never following a symlink nor leaving the file system dev.
func clampDir(fd int, pathname string, dev uint64, ts unix.Timespec) error {
	f := os.NewFile(uintptr(fd), pathname)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		p := filepath.Join(pathname, name)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		if err := clampAt(fd, name, &st, ts, p); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if uint64(st.Dev) != dev {
			return fmt.Errorf("%s: another file system is mounted here", p)
		}
		sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &fs.PathError{Op: "open", Path: p, Err: err}
		}
		if err := clampDir(sub, p, dev, ts); err != nil {
			return err
		}
	}
	return nil
}
