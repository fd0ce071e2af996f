package main

import (
	"archive/tar"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
)

// sharedCache keeps verified debs between test runs, as a builder host's
// cache does.
const sharedCache = "/var/cache/basebuild-test/cache"

func TestRootfsBookworm(t *testing.T) { testRootfs(t, "bookworm") }

func TestRootfsTrixie(t *testing.T) { testRootfs(t, "trixie") }

func TestRootfsBullseye(t *testing.T) { testRootfs(t, "bullseye") }

// sid's InRelease on the host's mirror is past its Valid-Until (the mirror
// is not refreshed as often as sid's signatures expire), so sid is read
// through the snapshot server at the reference's epoch, when it was valid.
// The server is checked before the reference, a 309 MB build, is made.
func TestRootfsSid(t *testing.T) {
	server := testenv.SnapshotServer(t)
	epoch := readEpoch(t, testenv.Reference(t, "sid"))
	testRootfs(t, "sid", "--snapshot", epoch.UTC().Format("20060102T150405Z"), "--snapshot-server", server)
}

// TestRootfsBookwormSlim compares --variant slim with debuerreotype's
// slim image: the same checks, against debuerreotype-slimify's output.
func TestRootfsBookwormSlim(t *testing.T) { testRootfs(t, "bookworm", "--variant", "slim") }

// testRootfs builds suite's rootfs from the host's mirror and checks it as
// the acceptance says: a clean dpkg state, the resolved package
// set installed, a working shell and apt, and the same files as
// debuerreotype's image built from the same mirror and epoch.
func testRootfs(t *testing.T, suite string, flags ...string) {
	testenv.SnapshotServer(t)
	var ref string
	if slices.Contains(flags, "slim") {
		ref = testenv.ReferenceSlim(t, suite)
	} else {
		ref = testenv.Reference(t, suite)
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	common := append([]string{"--suite", suite, "--arch", "amd64", "--cache-dir", sharedCache}, flags...)
	list, stderr, err := runBinary(t, append(common, "--dry-run")...)
	if err != nil {
		t.Fatalf("--dry-run: %v\n%s", err, stderr)
	}
	out, stderr, err := runBinary(t, append(common, "--rootfs", dir)...)
	if err != nil {
		t.Fatalf("--rootfs: %v\n%s", err, stderr)
	}
	t.Logf("build log:\n%s", stderr)
	if out != list {
		t.Errorf("--rootfs printed a different package list than --dry-run:\n%s", lineDiff(list, out))
	}
	if mounts := mountsUnder(t, dir); len(mounts) > 0 {
		t.Fatalf("mounts left after the build: %v", mounts)
	}

	// Compare with the image debuerreotype made, before the chroot
	// checks below touch the tree.
	refFile, err := os.Open(filepath.Join(ref, "rootfs.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer refFile.Close()
	want, err := oci.ReadTar(refFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := oci.ReadTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	diffs := oci.Compare(want, got)
	h := readHistory(t, filepath.Join(ref, "rootfs"), dir)
	h.want, h.got, h.epoch = want, got, readEpoch(t, ref)
	h.sourcesOK = sameSourcesButSnapshotComments(t, filepath.Join(ref, "rootfs"), dir)
	var unexpected []string
	explained := map[string]int{}
	for _, d := range diffs {
		if why := h.expectedDifference(d); why != "" {
			explained[why]++
		} else {
			unexpected = append(unexpected, d.String())
		}
	}
	t.Logf("%d entries in debuerreotype's image, %d in ours, %d differences, %d unexplained", len(want), len(got), len(diffs), len(unexpected))
	for _, why := range slices.Sorted(maps.Keys(explained)) {
		t.Logf("%4d explained: %s", explained[why], why)
	}
	if len(unexpected) > 0 {
		t.Errorf("differences from debuerreotype's image:\n%s", strings.Join(unexpected, "\n"))
	}

	run := chrootRunner(t, dir)
	if s := run("dpkg", "--audit"); s != "" {
		t.Errorf("dpkg --audit: %s", s)
	}
	if s := run("dpkg", "-C"); s != "" {
		t.Errorf("dpkg -C: %s", s)
	}
	run("apt-get", "check")
	run("/bin/sh", "-c", "true")
	if s := run("dpkg-query", "-W", "-f", "${Package} ${Version} ${Architecture}\n"); s != list {
		t.Errorf("dpkg-query -W differs from --dry-run:\n%s", lineDiff(list, s))
	}

	// apt works inside: point it at the host's mirror, whose name the
	// host resolves.
	for _, f := range []string{"/etc/hosts", "/etc/resolv.conf"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hostSources, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/apt/sources.list.d/debian.sources"), hostSources, 0o644); err != nil {
		t.Fatal(err)
	}
	run("apt-get", "update", "-qq")
	run("apt-get", "install", "-y", "-qq", "hello")
	if s := run("hello"); !strings.Contains(s, "Hello, world!") {
		t.Errorf("hello printed %q", s)
	}
}

// history is what debuerreotype did after debootstrap and basebuild does
// not: an apt-get dist-upgrade, which upgraded some packages from the
// suite's versions to the -updates or -security ones, if there were any.
// basebuild installs those right away, so what the upgrade left differs.
type history struct {
	aptRan   bool                // apt-get installed something: it left history.log or eipp.log.xz
	upgraded map[string]bool     // package names, from the reference's apt history
	paths    map[string]bool     // the upgraded packages' paths, as Entry.Path spells them
	files    map[string][]string // the upgraded packages' paths, by package
	postinst map[string]string   // the upgraded packages' postinsts in the reference

	want, got map[string]oci.Entry // debuerreotype's image and ours
	epoch     time.Time            // both builds' SOURCE_DATE_EPOCH

	// Whether status and available differ only as the upgrade explains.
	statusOK, availableOK bool
	// Whether our sources differ only by the snapshot comments.
	sourcesOK bool
}

// readHistory reads the packages the dist-upgrade upgraded, from the
// reference tree ref's var/log/apt/history.log, their paths from its dpkg
// database, and checks our tree got's dpkg status and available against
// the reference's.
func readHistory(t *testing.T, ref, got string) *history {
	t.Helper()
	h := &history{upgraded: map[string]bool{}, paths: map[string]bool{}, files: map[string][]string{}, postinst: map[string]string{}}
	// The apt logs survive in the kept tree, not in the image: apt
	// writes history.log only when it changed something.
	log, err := os.ReadFile(filepath.Join(ref, "var/log/apt/history.log"))
	if errors.Is(err, fs.ErrNotExist) {
		log = nil
	} else if err != nil {
		t.Fatal(err)
	}
	h.aptRan = log != nil
	if _, err := os.Stat(filepath.Join(ref, "var/log/apt/eipp.log.xz")); err == nil {
		h.aptRan = true
	}
	for line := range strings.Lines(string(log)) {
		action, list, ok := strings.Cut(strings.TrimSpace(line), ": ")
		switch {
		case !ok, action == "Start-Date", action == "End-Date", action == "Commandline":
		case action == "Upgrade":
			// "apt:amd64 (2.6.1, 2.6.2), tzdata:amd64 (…), …"
			for _, p := range strings.Split(list, "), ") {
				name, _, _ := strings.Cut(p, " (")
				name, _, _ = strings.Cut(name, ":")
				h.upgraded[name] = true
			}
		default:
			// An install or removal would explain other differences.
			t.Errorf("history.log: %s: not accounted for in expectedDifference", action)
		}
	}
	for name := range h.upgraded {
		lists, _ := filepath.Glob(filepath.Join(ref, "var/lib/dpkg/info", name+".list"))
		archLists, _ := filepath.Glob(filepath.Join(ref, "var/lib/dpkg/info", name+":*.list"))
		if lists = append(lists, archLists...); len(lists) != 1 {
			t.Fatalf("upgraded package %s: file lists %q", name, lists)
		}
		data, err := os.ReadFile(lists[0])
		if err != nil {
			t.Fatal(err)
		}
		for p := range strings.Lines(string(data)) {
			p = entryPath(ref, strings.TrimSpace(p))
			h.paths[p] = true
			h.files[name] = append(h.files[name], p)
		}
		script, err := os.ReadFile(strings.TrimSuffix(lists[0], ".list") + ".postinst")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		h.postinst[name] = string(script)
	}
	h.statusOK = sameStatus(t, ref, got, h.upgraded)
	h.availableOK = sameAvailable(t, ref, got, h.upgraded)
	return h
}

// entryPath spells a path of a dpkg file list ("/lib/x") as Entry.Path
// does for the tree root ("./usr/lib/x"): through merged /usr's symlinks.
func entryPath(root, p string) string {
	p = strings.TrimPrefix(path.Clean(p), "/")
	if p == "" || p == "." {
		return "."
	}
	top, rest, _ := strings.Cut(p, "/")
	if target, err := os.Readlink(filepath.Join(root, top)); err == nil && target == "usr/"+top {
		p = path.Join("usr", top, rest)
	}
	return "./" + p
}

// expectedDifference explains a known, accepted difference from
// debuerreotype's image, or returns "".
func (h *history) expectedDifference(d oci.Difference) string {
	switch {
	case strings.HasPrefix(d.What, "mtime ") && h.paths[d.Path]:
		return "mtime of a path of a package apt-get dist-upgrade upgraded: dpkg left what the old version had there " +
			"with its mtime (existing directories, unchanged conffiles, symlinks); we install the new version directly"
	case d.Path == "./var/lib/dpkg/status" && h.statusOK && sizeOrContent(d):
		return "dpkg status: the Priority of upgraded packages, which the upgrade's dpkg --unpack took from the .deb " +
			"rather than the index (checked: nothing else differs)"
	case d.Path == "./var/lib/dpkg/available" && h.availableOK && sizeOrContent(d):
		return "dpkg available: debootstrap's setup_available wrote the Packages index's stanzas (Filename, SHA256, Tag, …) " +
			"of the versions it installed, and dpkg never rewrote it; ours has dpkg's stanzas " +
			"(checked: the same packages, priorities and, but for the upgraded ones, versions)"
	case d.Path == "./var/lib/dpkg/status-old" && sizeOrContent(d):
		return "dpkg's backup of status before its last write, an intermediate state: the upgrade's in the reference " +
			"if there was one, else one of debootstrap's dpkg runs, which differ from ours"
	case (d.Path == "./var/cache/debconf/config.dat-old" || d.Path == "./var/cache/debconf/templates.dat-old") && sizeOrContent(d):
		return "debconf's backup of its database before its last save, the upgrade's in the reference"
	case d.Path == "./etc/apt/sources.list.d/debian.sources" && h.sourcesOK && sizeOrContent(d):
		return "sources: built with --snapshot, ours name the snapshot in a comment above each stanza, as the official " +
			"images do; the reference was built from the mirror (checked: nothing else differs)"
	case d.Path == "./var/log/apt/eipp.log.xz" && d.What == "only in A":
		return "apt's log of its last installation plan: only the reference ran apt to install (the upgrade)"
	case d.Path == "./var/cache/debconf/tmp.ci" && d.What == "only in A" && h.aptRan:
		return "the working directory of dpkg-preconfigure, apt's DPkg::Pre-Install-Pkgs hook from debconf: " +
			"only the reference ran apt to install (the upgrade), and newer debconf leaves it behind"
	case d.Path == "./var/log/apt" && strings.HasPrefix(d.What, "mtime ") && h.aptRan && h.want[d.Path].ModTime.Equal(h.epoch):
		return "mtime of var/log/apt: the upgrade's apt wrote its logs there (the fixups removed some), " +
			"after the epoch, to which debuerreotype clamps it; ours keeps apt's .deb's"
	case strings.HasPrefix(d.What, "mtime ") && h.copiedByPostinst(d.Path):
		return "mtime of a file an upgraded package's postinst copied (cp -p) from one of its own files when first configured: " +
			"the reference's has the old version's mtime, as the upgrade's postinst keeps an existing copy; " +
			"ours the new version's (checked: same content as that file in both)"
	}
	return ""
}

// copiedByPostinst reports whether the path p, whose content is the same
// in both trees, is no package's, named by the postinst of an upgraded
// package, and in both trees the copy of one of that package's files:
// the same content, and in ours the same mtime.
func (h *history) copiedByPostinst(p string) bool {
	w, g := h.want[p], h.got[p]
	if h.paths[p] || w.Type != tar.TypeReg || g.Type != tar.TypeReg || w.SHA256 != g.SHA256 {
		return false
	}
	for name, files := range h.files {
		if !strings.Contains(h.postinst[name], " "+strings.TrimPrefix(p, ".")+"\n") {
			continue
		}
		for _, f := range files {
			wf, gf := h.want[f], h.got[f]
			if wf.Type == tar.TypeReg && wf.SHA256 == w.SHA256 && gf.SHA256 == g.SHA256 && gf.ModTime.Equal(g.ModTime) {
				return true
			}
		}
	}
	return false
}

// sameSourcesButSnapshotComments reports whether our debian.sources
// differs from the reference's at most by "# http://snapshot.debian.org/…"
// comment lines, which a --snapshot build adds.
func sameSourcesButSnapshotComments(t *testing.T, ref, got string) bool {
	t.Helper()
	const name = "etc/apt/sources.list.d/debian.sources"
	want, err1 := os.ReadFile(filepath.Join(ref, name))
	have, err2 := os.ReadFile(filepath.Join(got, name))
	if err1 != nil || err2 != nil {
		return false
	}
	var kept []string
	for line := range strings.Lines(string(have)) {
		if !strings.HasPrefix(line, "# http://snapshot.debian.org/archive/") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "") == string(want)
}

// readEpoch reads the SOURCE_DATE_EPOCH of the reference in dir.
func readEpoch(t *testing.T, dir string) time.Time {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "epoch"))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(sec, 0)
}

func sizeOrContent(d oci.Difference) bool {
	return d.What == "content" || strings.HasPrefix(d.What, "size ")
}

// sameStatus reports whether the dpkg status files of the trees want and
// got are the same but for the Priority of the upgraded packages.
func sameStatus(t *testing.T, want, got string, upgraded map[string]bool) bool {
	t.Helper()
	w, g := readStanzas(t, want, "status"), readStanzas(t, got, "status")
	if len(w) != len(g) {
		t.Logf("status: %d packages, want %d", len(g), len(w))
		return false
	}
	same := true
	for i := range w {
		if w[i].name != g[i].name {
			t.Logf("status: package %d is %s, want %s", i, g[i].name, w[i].name)
			return false
		}
		for j, line := range w[i].lines {
			if j >= len(g[i].lines) || g[i].lines[j] != line && !(upgraded[w[i].name] && strings.HasPrefix(line, "Priority: ") && strings.HasPrefix(g[i].lines[j], "Priority: ")) {
				t.Logf("status: package %s differs at %q", w[i].name, line)
				same = false
				break
			}
		}
		if len(g[i].lines) != len(w[i].lines) {
			t.Logf("status: package %s has %d lines, want %d", w[i].name, len(g[i].lines), len(w[i].lines))
			same = false
		}
	}
	return same
}

// sameAvailable reports whether the dpkg available files of the trees want
// and got list the same packages with the same Priority and, but for the
// upgraded ones, Version.
func sameAvailable(t *testing.T, want, got string, upgraded map[string]bool) bool {
	t.Helper()
	fields := func(tree string) map[string]string {
		m := map[string]string{}
		for _, s := range readStanzas(t, tree, "available") {
			var version, priority string
			for _, line := range s.lines {
				if v, ok := strings.CutPrefix(line, "Version: "); ok {
					version = v
				}
				if v, ok := strings.CutPrefix(line, "Priority: "); ok {
					priority = v
				}
			}
			if upgraded[s.name] {
				version = "(upgraded)"
			}
			m[s.name] = version + " " + priority
		}
		return m
	}
	w, g := fields(want), fields(got)
	if !maps.Equal(w, g) {
		t.Logf("available: packages, versions and priorities\n%v\nwant\n%v", g, w)
		return false
	}
	return true
}

type stanza struct {
	name  string
	lines []string
}

// readStanzas reads the stanzas of the file name of tree's dpkg database.
func readStanzas(t *testing.T, tree, name string) []stanza {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tree, "var/lib/dpkg", name))
	if err != nil {
		t.Fatal(err)
	}
	var stanzas []stanza
	for _, para := range strings.Split(strings.TrimSpace(string(data)), "\n\n") {
		lines := strings.Split(para, "\n")
		name, _ := strings.CutPrefix(lines[0], "Package: ")
		stanzas = append(stanzas, stanza{name, lines})
	}
	return stanzas
}

// mountsUnder lists the mount points below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir) {
			mounts = append(mounts, f[1])
		}
	}
	return mounts
}
