package oci

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/internal/testenv"
)

var testEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// capability is a security.capability value (cap_net_raw+ep), binary as
// setcap writes it.
const capability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// treeOptions say what makeTree adds to its tree beyond what GNU tar
// archives as debuerreotype-tar does.
type treeOptions struct {
	xattrs   bool // extended attributes (debuerreotype's tar drops them)
	dotLinks bool // symlink targets GNU tar's transform would change
	newer    bool // entries newer than testEpoch
	excluded bool // entries debuerreotype-tar leaves out
}

// makeTree fills dir with one of every kind of entry a rootfs has, names
// at the 100-byte limits of tar headers, names whose byte order differs
// from their path order, and, as o says, more. Every entry is a day older
// than testEpoch unless o.newer.
func makeTree(t *testing.T, dir string, o treeOptions) {
	t.Helper()
	long := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	files := map[string]string{
		"etc/passwd":             "root:x:0:0:root:/root:/bin/bash\n",
		"etc/shadow":             "root:*:19000:0:99999:7:::\n",
		"etc/empty":              "",
		"usr/bin/prog":           strings.Repeat("x", 513),
		"usr/lib/b511":           strings.Repeat("y", 511),
		"usr/lib/b512":           strings.Repeat("z", 512),
		"sort/B":                 "B",
		"sort/a/z":               "a/z",
		"sort/a-b":               "a-b",
		"sort/a.b":               "a.b",
		"sort/a0":                "a0",
		"sort/\u00e9":            "é",
		"dev2/keep":              "not /dev",
		"var/log/apt/eipp.log.x": "kept",
		"var/cache/apt2/keep":    "not var/cache/apt",
		// stored names of 100 and 101 bytes, and 102 with a directory's "/"
		"long/" + long('a', 95):                  "100",
		"long/" + long('b', 96):                  "101",
		"long/" + long('c', 95) + "/" + "f":      "under a 101-byte directory",
		"long/" + long('d', 94) + "/" + "f":      "under a 100-byte directory",
		"long/" + long('e', 150) + "/" + "x.txt": "very long",
	}
	excludedFiles := map[string]string{
		"debuerreotype-epoch":                     "1704067200",
		"dev/null":                                "",
		"dev/pts/0":                               "",
		"proc/1/status":                           "",
		"sys/kernel/x":                            "",
		"var/cache/apt/pkgcache.bin":              "",
		"var/cache/apt/archives/partial/x.deb":    "",
		"var/cache/apt/archives/lock":             "",
		"var/lib/apt/lists/deb_dists_InRelease":   "",
		"var/lib/apt/lists/lock":                  "",
		"var/lib/apt/lists/partial/x":             "",
		"var/log/apt/history.log":                 "",
		"var/log/apt/term.log":                    "",
		"etc/apt/apt.conf.d/01autoremove-kernels": "",
		"etc/apt/trustdb.gpg":                     "",
		"run/motd.dynamic":                        "",
		"run/shm/.run-transition":                 "",
		"var/lib/systemd/catalog/database":        "",
	}
	if o.excluded {
		for k, v := range excludedFiles {
			files[k] = v
		}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
	}
	dirs := []string{"dev", "proc", "sys", "tmp", "var/cache/apt", "empty"}
	if o.excluded {
		dirs = append(dirs, "var/cache/apt/archives/partial")
	}
	for _, d := range dirs {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(t, unix.Chmod(filepath.Join(dir, "tmp"), 0o1777)) // os.Chmod takes no 0o1000
	must(t, unix.Chmod(filepath.Join(dir, "usr/bin/prog"), 0o4755))
	must(t, os.Chmod(filepath.Join(dir, "etc/shadow"), 0o640))
	must(t, os.Chown(filepath.Join(dir, "etc/shadow"), 0, 42))
	must(t, os.Chown(filepath.Join(dir, "usr/lib/b511"), 3000000, 3000001)) // too big for octal
	must(t, os.Chown(filepath.Join(dir, "usr/lib/b512"), 1000, 1000))

	symlinks := map[string]string{
		"bin":          "usr/bin",
		"etc/abs":      "/usr/bin/prog",
		"etc/dotdot":   "../usr/bin/prog",
		"etc/dangling": "nowhere",
		"long/s100":    long('t', 100),
		"long/s101":    long('u', 101),
	}
	if o.dotLinks {
		symlinks["etc/dot"] = "./passwd"
		symlinks["etc/ab"] = "a/b"
	}
	for name, target := range symlinks {
		must(t, os.Symlink(target, filepath.Join(dir, name)))
	}
	hardlinks := [][2]string{ // existing name, new name
		{"usr/bin/prog", "usr/bin/prog-hl"},
		{"sort/a0", "sort/a/hl"}, // archived before sort/a0
		{"long/" + long('b', 96), "long/" + long('f', 120)},
		{"long/" + long('f', 120), "long/zz"},
	}
	for _, l := range hardlinks {
		must(t, os.Link(filepath.Join(dir, l[0]), filepath.Join(dir, l[1])))
	}
	must(t, unix.Mknod(filepath.Join(dir, "devices-null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(filepath.Join(dir, "devices-loop0"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
	must(t, unix.Mkfifo(filepath.Join(dir, "run-initctl"), 0o600))
	if o.excluded {
		must(t, unix.Mknod(filepath.Join(dir, "dev/zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))))
	}
	if o.xattrs {
		must(t, unix.Lsetxattr(filepath.Join(dir, "usr/bin/prog"), "security.capability", []byte(capability), 0))
		must(t, unix.Lsetxattr(filepath.Join(dir, "etc/passwd"), "user.note", []byte("a value"), 0))
		must(t, unix.Lsetxattr(filepath.Join(dir, "empty"), "trusted.dir", []byte("on a directory"), 0))
		must(t, unix.Lsetxattr(filepath.Join(dir, "long", long('e', 150)), "user.long", []byte("and a long name"), 0))
	}

	old := testEpoch.Add(-24 * time.Hour)
	setTimes(t, dir, old)
	if o.newer {
		for _, name := range []string{"etc/passwd", "bin", "empty", "."} {
			ts := []unix.Timespec{unix.NsecToTimespec(testEpoch.Add(time.Hour).UnixNano()), unix.NsecToTimespec(testEpoch.Add(time.Hour).UnixNano())}
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, name), ts, unix.AT_SYMLINK_NOFOLLOW))
		}
	}
}

// setTimes gives every entry of dir the access and modification time ts,
// symlinks themselves.
func setTimes(t *testing.T, dir string, tm time.Time) {
	t.Helper()
	ts := unix.NsecToTimespec(tm.UnixNano())
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	})
	must(t, err)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeTar(t *testing.T, dir string) []byte {
	t.Helper()
	var b bytes.Buffer
	must(t, WriteTar(&b, dir, testEpoch, nil))
	return b.Bytes()
}

const debuerreotypeScripts = "/usr/share/debuerreotype/scripts"

// TestWriteTarMatchesDebuerreotype compares WriteTar byte for byte with GNU
// tar run as debuerreotype-tar runs it, on a tree where the two agree: no
// extended attributes, no symlink targets the transform changes, nothing
// newer than the epoch.
func TestWriteTarMatchesDebuerreotype(t *testing.T) {
	excludeFrom := filepath.Join(debuerreotypeScripts, ".tar-exclude")
	if _, err := os.Stat(excludeFrom); err != nil {
		testenv.Missing(t, "no debuerreotype: %v", err)
	}
	testenv.LookPath(t, "tar")
	dir := t.TempDir()
	makeTree(t, dir, treeOptions{excluded: true})
	want := filepath.Join(t.TempDir(), "rootfs.tar")
	// debuerreotype-tar's command (APT >= 0.8, no --include-dev).
	cmd := exec.Command("tar", "--create", "--file", want, "--auto-compress", "--directory", dir,
		"--exclude-from", excludeFrom,
		"--exclude", "./var/cache/apt/**", "--exclude", "./var/lib/apt/lists/**", "--exclude", "./var/state/apt/lists/**",
		"--exclude", "./dev/**",
		"--numeric-owner", "--transform", "s,^./,,", "--sort", "name", ".")
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, out)
	}
	wantBytes, err := os.ReadFile(want)
	must(t, err)
	got := writeTar(t, dir)
	if !bytes.Equal(got, wantBytes) {
		t.Errorf("WriteTar differs from GNU tar (%d vs %d bytes) at byte %d:\n%s", len(got), len(wantBytes), firstDiff(got, wantBytes), listDiff(t, got, wantBytes))
	}
}

// firstDiff returns the offset of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// listDiff shows "tar -tvv" of both archives where they differ.
func listDiff(t *testing.T, got, want []byte) string {
	list := func(data []byte) []string {
		cmd := exec.Command("tar", "-tvv", "--full-time", "--numeric-owner")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Logf("tar -t: %v", err)
		}
		return strings.Split(string(out), "\n")
	}
	g, w := list(got), list(want)
	var b strings.Builder
	for i := range max(len(g), len(w)) {
		var lg, lw string
		if i < len(g) {
			lg = g[i]
		}
		if i < len(w) {
			lw = w[i]
		}
		if lg != lw {
			fmt.Fprintf(&b, "got:  %s\nwant: %s\n", lg, lw)
		}
	}
	return b.String()
}

// tarEntry is a tar header and, for regular files, its content.
type tarEntry struct {
	*tar.Header
	content string
}

func readTarEntries(t *testing.T, data []byte) []tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var entries []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		must(t, err)
		b, err := io.ReadAll(tr)
		must(t, err)
		entries = append(entries, tarEntry{h, string(b)})
	}
}

// TestWriteTarProperties reads WriteTar's archive of a tree with
// everything in it back with archive/tar.
func TestWriteTarProperties(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, treeOptions{xattrs: true, dotLinks: true, newer: true, excluded: true})
	data := writeTar(t, dir)
	if len(data)%10240 != 0 {
		t.Errorf("archive is %d bytes, not whole 10240-byte records", len(data))
	}
	entries := readTarEntries(t, data)
	byName := map[string]tarEntry{}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
		byName[e.Name] = e
		if e.Uname != "" || e.Gname != "" {
			t.Errorf("%s: user %q, group %q, want none", e.Name, e.Uname, e.Gname)
		}
		if e.ModTime.After(testEpoch) {
			t.Errorf("%s: mtime %v after the epoch", e.Name, e.ModTime)
		}
		if strings.HasPrefix(e.Name, "/") || strings.Contains(e.Name, "PaxHeaders") {
			t.Errorf("entry %q", e.Name)
		}
	}
	if names[0] != "./" {
		t.Errorf("first entry %q, want ./", names[0])
	}
	// Depth first, each directory's names in byte order: "sort/a/"'s
	// contents come before "sort/a-b", though "-" < "/".
	if !slices.IsSortedFunc(names[1:], comparePaths) {
		t.Errorf("entries not in tar --sort=name order: %q", names)
	}
	if i, j := slices.Index(names, "sort/a/z"), slices.Index(names, "sort/a-b"); i < 0 || j < 0 || i > j {
		t.Errorf("sort/a/z at %d, sort/a-b at %d", i, j)
	}

	for _, name := range []string{"debuerreotype-epoch", "dev/null", "dev/zero", "dev/pts/", "proc/1/", "sys/kernel/",
		"var/cache/apt/pkgcache.bin", "var/cache/apt/archives/", "var/lib/apt/lists/lock", "var/lib/apt/lists/partial/",
		"var/log/apt/history.log", "var/log/apt/term.log", "etc/apt/apt.conf.d/01autoremove-kernels", "etc/apt/trustdb.gpg",
		"run/motd.dynamic", "run/shm/.run-transition", "var/lib/systemd/catalog/database"} {
		if _, ok := byName[name]; ok {
			t.Errorf("%s archived, want it excluded", name)
		}
	}
	for _, name := range []string{"dev/", "proc/", "sys/", "var/cache/apt/", "var/lib/apt/lists/", "dev2/keep", "var/log/apt/eipp.log.x", "var/cache/apt2/keep"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}

	check := func(name string, f func(e tarEntry) string) {
		t.Helper()
		e, ok := byName[name]
		if !ok {
			t.Errorf("%s missing", name)
			return
		}
		if msg := f(e); msg != "" {
			t.Errorf("%s: %s", name, msg)
		}
	}
	want := func(what string, got, want any) string {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Sprintf("%s %v, want %v", what, got, want)
		}
		return ""
	}
	check("usr/bin/prog", func(e tarEntry) string {
		return want("mode", fmt.Sprintf("%o", e.Mode), "4755") + want("capability", e.PAXRecords["SCHILY.xattr.security.capability"] == capability, true) +
			want("content", e.content, strings.Repeat("x", 513))
	})
	check("usr/bin/prog-hl", func(e tarEntry) string {
		return want("type", string(e.Typeflag), "1") + want("link", e.Linkname, "usr/bin/prog") + want("size", e.Size, 0)
	})
	check("sort/a/hl", func(e tarEntry) string {
		return want("type", string(e.Typeflag), "0") + want("content", e.content, "a0")
	})
	check("sort/a0", func(e tarEntry) string {
		return want("type", string(e.Typeflag), "1") + want("link", e.Linkname, "sort/a/hl")
	})
	longB := "long/" + strings.Repeat("b", 96)
	check("long/"+strings.Repeat("f", 120), func(e tarEntry) string { return want("link", e.Linkname, longB) })
	check("long/zz", func(e tarEntry) string { return want("link", e.Linkname, longB) })
	check(longB, func(e tarEntry) string { return want("content", e.content, "101") })
	check("long/"+strings.Repeat("e", 150)+"/", func(e tarEntry) string {
		return want("xattr", e.PAXRecords["SCHILY.xattr.user.long"], "and a long name") + want("path record", e.PAXRecords["path"], e.Name)
	})
	check("long/"+strings.Repeat("e", 150)+"/x.txt", func(e tarEntry) string { return want("content", e.content, "very long") })
	check("long/s101", func(e tarEntry) string { return want("target", e.Linkname, strings.Repeat("u", 101)) })
	check("etc/dot", func(e tarEntry) string { return want("target", e.Linkname, "./passwd") })
	check("etc/ab", func(e tarEntry) string { return want("target", e.Linkname, "a/b") })
	check("etc/passwd", func(e tarEntry) string {
		return want("mtime", e.ModTime.Unix(), testEpoch.Unix()) + want("xattr", e.PAXRecords["SCHILY.xattr.user.note"], "a value")
	})
	check("bin", func(e tarEntry) string { return want("mtime", e.ModTime.Unix(), testEpoch.Unix()) })
	check("./", func(e tarEntry) string { return want("mtime", e.ModTime.Unix(), testEpoch.Unix()) })
	check("etc/shadow", func(e tarEntry) string {
		return want("mtime", e.ModTime.Unix(), testEpoch.Add(-24*time.Hour).Unix()) + want("ids", fmt.Sprint(e.Uid, e.Gid), "0 42") + want("mode", fmt.Sprintf("%o", e.Mode), "640")
	})
	check("usr/lib/b511", func(e tarEntry) string { return want("ids", fmt.Sprint(e.Uid, e.Gid), "3000000 3000001") })
	check("devices-null", func(e tarEntry) string {
		return want("type", string(e.Typeflag), "3") + want("device", fmt.Sprint(e.Devmajor, e.Devminor), "1 3")
	})
	check("devices-loop0", func(e tarEntry) string {
		return want("type", string(e.Typeflag), "4") + want("device", fmt.Sprint(e.Devmajor, e.Devminor), "7 0")
	})
	check("run-initctl", func(e tarEntry) string { return want("type", string(e.Typeflag), "6") })
	check("tmp/", func(e tarEntry) string { return want("mode", fmt.Sprintf("%o", e.Mode), "1777") })
	check("empty/", func(e tarEntry) string {
		return want("xattr", e.PAXRecords["SCHILY.xattr.trusted.dir"], "on a directory")
	})
}

// comparePaths orders stored names as a depth-first walk that visits each
// directory's names in byte order does.
func comparePaths(a, b string) int {
	return slices.Compare(strings.Split(strings.TrimSuffix(a, "/"), "/"), strings.Split(strings.TrimSuffix(b, "/"), "/"))
}

// TestWriteTarMatchesTree compares WriteTar's archive with the tree as
// ReadTree sees it, extended attributes included.
func TestWriteTarMatchesTree(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, treeOptions{xattrs: true, dotLinks: true})
	fromTar, err := ReadTar(bytes.NewReader(writeTar(t, dir)))
	must(t, err)
	fromTree, err := ReadTree(dir)
	must(t, err)
	for _, d := range Compare(fromTar, fromTree) {
		t.Error(d)
	}
}

// TestWriteTarSkipsSockets archives a tree with a socket, which tar cannot
// store.
func TestWriteTarSkipsSockets(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("f"), 0o644))
	sock := filepath.Join(dir, "sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(t, err)
	defer unix.Close(fd)
	must(t, unix.Bind(fd, &unix.SockaddrUnix{Name: sock}))
	var data, log bytes.Buffer
	logf := func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }
	must(t, WriteTar(&data, dir, testEpoch, logf))
	var names []string
	for _, e := range readTarEntries(t, data.Bytes()) {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"./", "f"}) {
		t.Errorf("entries %q, want ./ and f", names)
	}
	if want := sock + ": socket ignored\n"; log.String() != want {
		t.Errorf("log %q, want %q", log.String(), want)
	}
}

func TestWriteTarErrors(t *testing.T) {
	var b bytes.Buffer
	missing := filepath.Join(t.TempDir(), "missing")
	if err := WriteTar(&b, missing, testEpoch, nil); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("WriteTar of a missing tree: %v, want an error naming it", err)
	}
	if err := WriteTar(&b, t.TempDir(), time.Time{}, nil); err == nil || !strings.Contains(err.Error(), "no epoch") {
		t.Errorf("WriteTar without epoch: %v", err)
	}
}

// TestNewLayer checks the layer's hashes, computed while it was written,
// against its blob and tar, for each compression.
func TestNewLayer(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, treeOptions{xattrs: true})
	plain := writeTar(t, dir)
	for _, c := range []Compression{"", Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			l, err := NewLayer(dir, LayerOptions{Epoch: testEpoch, Compression: c, TempDir: t.TempDir()})
			must(t, err)
			defer l.Close()
			blob := readAll(t, l.Compressed)
			tarData := readAll(t, l.Uncompressed)
			if !bytes.Equal(tarData, plain) {
				t.Errorf("uncompressed layer differs from WriteTar's archive")
			}
			digest, _ := l.Digest()
			diffID, _ := l.DiffID()
			size, _ := l.Size()
			mt, _ := l.MediaType()
			if want := sha256Hex(blob); digest.String() != want {
				t.Errorf("digest %s, want %s", digest, want)
			}
			if want := sha256Hex(plain); diffID.String() != want {
				t.Errorf("diff ID %s, want %s", diffID, want)
			}
			if size != int64(len(blob)) {
				t.Errorf("size %d, want %d", size, len(blob))
			}
			wantMT, magic := "application/vnd.oci.image.layer.v1.tar+gzip", []byte{0x1f, 0x8b}
			if c == Zstd {
				wantMT, magic = "application/vnd.oci.image.layer.v1.tar+zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}
			}
			if string(mt) != wantMT || !bytes.HasPrefix(blob, magic) {
				t.Errorf("media type %s, blob starts %x", mt, blob[:4])
			}
			if c != Zstd && !bytes.Equal(blob[3:10], []byte{0, 0, 0, 0, 0, 0, 0xff}) {
				t.Errorf("gzip header flags, mtime, xfl and OS %x, want no name, no time, OS unknown", blob[3:10])
			}
			must(t, l.Close())
			if _, err := l.Compressed(); err == nil {
				t.Errorf("Compressed after Close succeeded")
			}
		})
	}
	if _, err := NewLayer(dir, LayerOptions{Epoch: testEpoch, Compression: "xz"}); err == nil || !strings.Contains(err.Error(), `"xz"`) {
		t.Errorf("NewLayer with xz: %v", err)
	}
	tmp := t.TempDir()
	if _, err := NewLayer(filepath.Join(dir, "missing"), LayerOptions{Epoch: testEpoch, TempDir: tmp}); err == nil {
		t.Errorf("NewLayer of a missing tree succeeded")
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("failed NewLayer left %v", left)
	}
}

func readAll(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	r, err := open()
	must(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	must(t, err)
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestDeterminism builds the layers and image of one tree and of a copy of
// it in other processes with different umasks, time zones, GOMAXPROCS and
// temporary directories: the digests must not change.
func TestDeterminism(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, filepath.Join(dir, "a"), treeOptions{xattrs: true, newer: true})
	copyDir := filepath.Join(dir, "b")
	if out, err := exec.Command("cp", "-a", filepath.Join(dir, "a"), copyDir).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	run := func(tree, umask, tz, procs string) string {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), determinismEnv+"="+tree, "BASEBUILD_OCI_UMASK="+umask, "TZ="+tz, "GOMAXPROCS="+procs, "TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		for line := range strings.Lines(string(out)) {
			if s, ok := strings.CutPrefix(line, "digests: "); ok {
				return strings.TrimSpace(s)
			}
		}
		t.Fatalf("helper printed no digests:\n%s", out)
		return ""
	}
	a := run(filepath.Join(dir, "a"), "022", "UTC", "1")
	b := run(copyDir, "077", "Pacific/Chatham", "8")
	if a != b {
		t.Errorf("digests differ:\n%s\n%s", a, b)
	}
	t.Logf("digests: %s", a)
}

// determinismEnv names the tree a copy of the test binary started by
// TestDeterminism makes the layers and image of (see TestMain).
const determinismEnv = "BASEBUILD_OCI_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(determinismEnv); dir != "" {
		if err := printDigests(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// printDigests prints the digests of the layers and image of dir, made
// with the umask BASEBUILD_OCI_UMASK, for TestDeterminism.
func printDigests(dir string) error {
	var umask int
	fmt.Sscanf(os.Getenv("BASEBUILD_OCI_UMASK"), "%o", &umask)
	syscall.Umask(umask)
	var out []string
	for _, c := range []Compression{Gzip, Zstd} {
		l, err := NewLayer(dir, LayerOptions{Epoch: testEpoch, Compression: c})
		if err != nil {
			return err
		}
		defer l.Close()
		img, err := NewImage(l, ImageOptions{Arch: "arm64", Epoch: testEpoch, Suite: "bookworm", Snapshot: testEpoch, CreatedBy: "basebuild test"})
		if err != nil {
			return err
		}
		ld, err := l.Digest()
		if err != nil {
			return err
		}
		id, err := img.Digest()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s layer %s image %s", c, ld, id))
	}
	fmt.Printf("digests: %s\n", strings.Join(out, "; "))
	return nil
}

// TestReferenceRootfs checks the README's claim that the layer tar is byte
// for byte what debuerreotype-tar writes: WriteTar of debuerreotype's
// bookworm rootfs, built (or reused) as the end-to-end tests do, against
// the rootfs.tar debuerreotype-tar wrote of it.
func TestReferenceRootfs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds debuerreotype's bookworm rootfs")
	}
	ref := testenv.Reference(t, "bookworm")
	// Hold off a rebuild of the reference (scripts/reference-rootfs.sh),
	// and make sure none started since it was built.
	lock, err := os.Open(filepath.Join(ref, ".lock"))
	must(t, err)
	defer lock.Close()
	must(t, unix.Flock(int(lock.Fd()), unix.LOCK_SH))
	if _, err := os.Stat(filepath.Join(ref, "rootfs.ok")); err != nil {
		t.Fatalf("the reference is being rebuilt: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(ref, "epoch"))
	must(t, err)
	var sec int64
	fmt.Sscan(string(data), &sec)
	want, err := os.ReadFile(filepath.Join(ref, "rootfs.tar"))
	must(t, err)
	// The reference's tree has no /etc/machine-id (debuerreotype-tar
	// leaves it out of the tar, as examples/debian.sh does, and the tree
	// kept is the one after the fixups), so the tars can be the same.
	var got bytes.Buffer
	must(t, WriteTar(&got, filepath.Join(ref, "rootfs"), time.Unix(sec, 0), nil))
	if bytes.Equal(got.Bytes(), want) {
		return
	}
	t.Errorf("WriteTar differs from debuerreotype-tar (%d vs %d bytes) at byte %d", got.Len(), len(want), firstDiff(got.Bytes(), want))
	gotEntries, err := ReadTar(bytes.NewReader(got.Bytes()))
	must(t, err)
	wantEntries, err := ReadTar(bytes.NewReader(want))
	must(t, err)
	for _, d := range Compare(gotEntries, wantEntries) {
		t.Error(d)
	}
}

// TestNewLayerProgress checks that NewLayer tells of the tar it writes
// each MiB and at the end, when it is all written.
func TestNewLayerProgress(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("x"), 3<<20+1234), 0o644))
	must(t, os.Chtimes(filepath.Join(dir, "big"), testEpoch, testEpoch))
	var told []int64
	l, err := NewLayer(dir, LayerOptions{Epoch: testEpoch, TempDir: t.TempDir(), Progress: func(n int64) { told = append(told, n) }})
	must(t, err)
	defer l.Close()
	size := int64(len(writeTar(t, dir)))
	if len(told) != 4 || told[len(told)-1] != size {
		t.Fatalf("told %v of a %d-byte tar: want 3 steps and the end", told, size)
	}
	for i := 1; i < len(told); i++ {
		if told[i]-told[i-1] < progressStep && i < len(told)-1 {
			t.Errorf("told %v: steps under %d bytes", told, progressStep)
		}
	}
}
