package apttest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/basebuild/basebuild/internal/testenv"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func mustGet(t *testing.T, url string) []byte {
	t.Helper()
	status, body := get(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d", url, status)
	}
	return body
}

// stanzas parses deb822 text, keeping each stanza's field order.
func stanzas(text string) (list []map[string]string, orders [][]string) {
	var cur map[string]string
	var order []string
	var last string
	for _, line := range strings.Split(text, "\n") {
		switch {
		case line == "":
			if cur != nil {
				list, orders = append(list, cur), append(orders, order)
				cur, order = nil, nil
			}
		case line[0] == ' ':
			cur[last] += "\n" + line
		default:
			k, v, _ := strings.Cut(line, ":")
			if cur == nil {
				cur = map[string]string{}
			}
			cur[k] = strings.TrimSpace(v)
			order = append(order, k)
			last = k
		}
	}
	if cur != nil {
		list, orders = append(list, cur), append(orders, order)
	}
	return list, orders
}

type arEntry struct {
	name string
	data []byte
}

func readAr(t *testing.T, b []byte) []arEntry {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("!<arch>\n")) {
		t.Fatal("no ar magic")
	}
	b = b[8:]
	var ms []arEntry
	for len(b) > 0 {
		if len(b) < 60 || string(b[58:60]) != "`\n" {
			t.Fatalf("bad ar header %q", b[:min(60, len(b))])
		}
		size, err := strconv.Atoi(strings.TrimSpace(string(b[48:58])))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, arEntry{strings.TrimSpace(string(b[:16])), b[60 : 60+size]})
		b = b[60+size+size%2:]
	}
	return ms
}

func decompress(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch filepath.Ext(name) {
	case ".xz":
		r, err = xz.NewReader(bytes.NewReader(data))
	case ".gz":
		r, err = gzip.NewReader(bytes.NewReader(data))
	case ".zst":
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(data))
		r = d
	default:
		return data
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

var testDeb = Deb{
	Name:    "foo",
	Version: "1:2.0-1",
	Fields: map[string]string{
		"Depends":     "libc6 (>= 2.36), bar | baz",
		"Pre-Depends": "dpkg (>= 1.15)",
		"Multi-Arch":  "foreign",
		"Source":      "foosrc (2.0-1)",
		"Description": "short summary\n a longer\n .\n description",
	},
	Files: []File{
		{Path: "./usr/bin/foo", Mode: 04755, Body: "#!/bin/sh\necho foo\n"},
		{Path: "etc/foo.conf", Body: "x = 1\n"},
		{Path: "usr/bin/foo-link", Type: tar.TypeSymlink, Linkname: "foo"},
		{Path: "usr/bin/foo-hard", Type: tar.TypeLink, Linkname: "usr/bin/foo"},
		{Path: "var/spool/foo", Type: tar.TypeDir, Mode: 01777},
		{Path: "/usr/lib/foo/cap", Body: "capable", Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}},
		{Path: "home/user/file", Body: strings.Repeat("x", 3000), Uid: 1000, Gid: 1001},
	},
	Scripts: map[string]string{
		"postinst":  "#!/bin/sh\nset -e\n",
		"conffiles": "/etc/foo.conf\n",
	},
}

func TestBuildDeb(t *testing.T) {
	testenv.LookPath(t, "dpkg-deb")
	for _, comp := range []string{"", "xz", "gz", "zst", "none"} {
		t.Run("compression="+comp, func(t *testing.T) {
			d := testDeb
			d.Compression = comp
			b, err := BuildDeb(d)
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := BuildDeb(d); !bytes.Equal(b, again) {
				t.Error("BuildDeb is not deterministic")
			}
			ext := map[string]string{"": ".xz", "xz": ".xz", "gz": ".gz", "zst": ".zst", "none": ""}[comp]
			var names []string
			members := readAr(t, b)
			for _, m := range members {
				names = append(names, m.name)
			}
			if want := []string{"debian-binary", "control.tar.xz", "data.tar" + ext}; !reflect.DeepEqual(names, want) {
				t.Errorf("ar members %q, want %q", names, want)
			}

			dir := t.TempDir()
			deb := filepath.Join(dir, "foo.deb")
			if err := os.WriteFile(deb, b, 0644); err != nil {
				t.Fatal(err)
			}
			run(t, "dpkg-deb", "--info", deb)
			fields := map[string]string{
				"Package":        "foo",
				"Version":        "1:2.0-1",
				"Architecture":   "amd64",
				"Depends":        "libc6 (>= 2.36), bar | baz",
				"Pre-Depends":    "dpkg (>= 1.15)",
				"Multi-Arch":     "foreign",
				"Source":         "foosrc (2.0-1)",
				"Priority":       "optional",
				"Installed-Size": "6", // 1 KiB each for 3 small files, 3 for 3000 bytes
			}
			for k, want := range fields {
				if got := strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, k)); got != want {
					t.Errorf("dpkg-deb --field %s = %q, want %q", k, got, want)
				}
			}
			if got := run(t, "dpkg-deb", "--field", deb, "Description"); got != "short summary\n a longer\n .\n description\n" {
				t.Errorf("Description = %q", got)
			}

			// dpkg-deb -c lists the members in order, parents first.
			var list []string
			for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
				f := strings.Fields(line)
				list = append(list, f[0]+" "+f[1]+" "+strings.Join(f[5:], " "))
			}
			want := []string{
				"drwxr-xr-x root/root ./",
				"drwxr-xr-x root/root ./usr/",
				"drwxr-xr-x root/root ./usr/bin/",
				"-rwsr-xr-x root/root ./usr/bin/foo",
				"drwxr-xr-x root/root ./etc/",
				"-rw-r--r-- root/root ./etc/foo.conf",
				"lrwxrwxrwx root/root ./usr/bin/foo-link -> foo",
				"h--------- root/root ./usr/bin/foo-hard link to ./usr/bin/foo",
				"drwxr-xr-x root/root ./var/",
				"drwxr-xr-x root/root ./var/spool/",
				"drwxrwxrwt root/root ./var/spool/foo/",
				"drwxr-xr-x root/root ./usr/lib/",
				"drwxr-xr-x root/root ./usr/lib/foo/",
				"-rw-r--r-- root/root ./usr/lib/foo/cap",
				"drwxr-xr-x root/root ./home/",
				"drwxr-xr-x root/root ./home/user/",
				"-rw-r--r-- 1000/1001 ./home/user/file",
			}
			if !reflect.DeepEqual(list, want) {
				t.Errorf("dpkg-deb -c:\n%s\nwant:\n%s", strings.Join(list, "\n"), strings.Join(want, "\n"))
			}

			root := filepath.Join(dir, "root")
			run(t, "dpkg-deb", "-x", deb, root)
			if got, _ := os.ReadFile(filepath.Join(root, "usr/bin/foo")); string(got) != "#!/bin/sh\necho foo\n" {
				t.Errorf("usr/bin/foo = %q", got)
			}
			if fi, err := os.Stat(filepath.Join(root, "usr/bin/foo")); err != nil || fi.Mode()&os.ModeSetuid == 0 {
				t.Errorf("usr/bin/foo not setuid: %v %v", fi, err)
			}
			if l, err := os.Readlink(filepath.Join(root, "usr/bin/foo-link")); l != "foo" {
				t.Errorf("symlink = %q, %v", l, err)
			}
			a, _ := os.Stat(filepath.Join(root, "usr/bin/foo"))
			h, err := os.Stat(filepath.Join(root, "usr/bin/foo-hard"))
			if err != nil || !os.SameFile(a, h) {
				t.Errorf("hard link not the same file: %v", err)
			}

			// md5sums agrees with the unpacked files, by md5sum itself.
			ctrl := filepath.Join(dir, "DEBIAN")
			run(t, "dpkg-deb", "-e", deb, ctrl)
			cmd := exec.Command("md5sum", "--check", "--strict", filepath.Join(ctrl, "md5sums"))
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("md5sum --check: %v\n%s", err, out)
			}
			for name, mode := range map[string]os.FileMode{"postinst": 0755, "conffiles": 0644, "control": 0644, "md5sums": 0644} {
				if fi, err := os.Stat(filepath.Join(ctrl, name)); err != nil || fi.Mode().Perm() != mode {
					t.Errorf("control member %s: %v %v, want mode %o", name, fi.Mode(), err, mode)
				}
			}

			// The xattr is a PAX record, which Go's reader shows.
			tr := tar.NewReader(bytes.NewReader(decompress(t, members[2].name, members[2].data)))
			found := false
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !hdr.ModTime.Equal(Epoch) {
					t.Errorf("%s: mtime %v", hdr.Name, hdr.ModTime)
				}
				if hdr.Name == "./usr/lib/foo/cap" {
					found = hdr.PAXRecords["SCHILY.xattr.security.capability"] == testDeb.Files[5].Xattrs["security.capability"]
				}
			}
			if !found {
				t.Error("xattr not in data.tar")
			}
		})
	}
}

func TestBuildDebErrors(t *testing.T) {
	if _, err := BuildDeb(Deb{Name: "foo"}); err == nil {
		t.Error("no error without Version")
	}
	if _, err := BuildDeb(Deb{Name: "foo", Version: "1", Compression: "lz4"}); err == nil {
		t.Error("no error for unknown compression")
	}
}

func newTestArchive(t *testing.T) *Archive {
	return New(t,
		Suite{
			Name:       "bookworm",
			Components: []string{"main", "contrib"},
			Debs: []Deb{
				testDeb,
				{Name: "libbar1", Version: "2.0", Arch: "all", Fields: map[string]string{"Source": "libbar", "Essential": "yes", "Priority": "required"}},
				{Name: "baz", Version: "3", Fields: map[string]string{"Component": "contrib", "Provides": "virtual-baz"}},
			},
		},
		Suite{
			Name:       "bookworm-updates",
			Debs:       []Deb{{Name: "baz", Version: "3+deb12u1"}},
			Date:       time.Date(2024, 2, 1, 12, 30, 0, 0, time.UTC),
			ValidUntil: time.Date(2024, 2, 8, 12, 30, 0, 0, time.UTC),
		},
		Suite{
			Archive: "debian-security",
			Name:    "bookworm-security",
			Debs:    []Deb{{Name: "foo", Version: "1:2.0-1+deb12u1", Fields: map[string]string{"Source": "foosrc"}}},
		},
	)
}

func TestInReleaseSignature(t *testing.T) {
	a := newTestArchive(t)
	dir := t.TempDir()
	inRelease := mustGet(t, a.URL("debian")+"/dists/bookworm/InRelease")
	release := mustGet(t, a.URL("debian")+"/dists/bookworm/Release")

	// go-crypto accepts it, and the signed text is Release, as with Debian.
	f, err := os.Open(a.KeyringPath)
	if err != nil {
		t.Fatal(err)
	}
	keyring, err := openpgp.ReadKeyRing(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := clearsign.Decode(inRelease)
	if block == nil {
		t.Fatal("InRelease is not clearsigned")
	}
	if _, err := block.VerifySignature(keyring, nil); err != nil {
		t.Errorf("go-crypto: %v", err)
	}
	if string(block.Plaintext)+"\n" != string(release) {
		t.Errorf("InRelease text differs from Release:\n%s\n---\n%s", block.Plaintext, release)
	}

	testenv.LookPath(t, "gpgv")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gpgv := func(keyring string, files ...string) error {
		args := append([]string{"--keyring", keyring}, files...)
		out, err := exec.Command("gpgv", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := gpgv(a.KeyringPath, write("InRelease", inRelease)); err != nil {
		t.Errorf("gpgv rejects InRelease: %v", err)
	}
	sec := mustGet(t, a.URL("debian-security")+"/dists/bookworm-security/InRelease")
	if err := gpgv(a.KeyringPath, write("InRelease-security", sec)); err != nil {
		t.Errorf("gpgv rejects security InRelease: %v", err)
	}
	sig := write("Release.gpg", mustGet(t, a.URL("debian")+"/dists/bookworm/Release.gpg"))
	if err := gpgv(a.KeyringPath, sig, write("Release", release)); err != nil {
		t.Errorf("gpgv rejects Release.gpg: %v", err)
	}

	_, otherKeyring := NewKey(t)
	if err := gpgv(otherKeyring, filepath.Join(dir, "InRelease")); err == nil {
		t.Error("gpgv accepts InRelease with the wrong keyring")
	}
	tampered := bytes.Replace(inRelease, []byte("Codename: bookworm"), []byte("Codename: trixie"), 1)
	if err := gpgv(a.KeyringPath, write("tampered", tampered)); err == nil {
		t.Error("gpgv accepts a tampered InRelease")
	}
	// ClearSign with another key gives a signature gpgv checks against that key.
	other, otherKeyring := NewKey(t)
	resigned, err := ClearSign(other, release, Epoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := gpgv(otherKeyring, write("resigned", resigned)); err != nil {
		t.Errorf("gpgv rejects ClearSign output: %v", err)
	}
	if err := gpgv(a.KeyringPath, filepath.Join(dir, "resigned")); err == nil {
		t.Error("gpgv accepts a signature by an unknown key")
	}
}

func TestRelease(t *testing.T) {
	a := newTestArchive(t)
	for _, tc := range []struct {
		archive, suite string
		want           map[string]string
		indexes        int
	}{
		{"debian", "bookworm", map[string]string{
			"Origin": "Debian", "Label": "Debian", "Suite": "bookworm", "Codename": "bookworm",
			"Date": "Mon, 01 Jan 2024 00:00:00 UTC", "Acquire-By-Hash": "no",
			"Architectures": "amd64", "Components": "main contrib",
		}, 6},
		{"debian", "bookworm-updates", map[string]string{
			"Suite": "bookworm-updates", "Codename": "bookworm",
			"Date": "Thu, 01 Feb 2024 12:30:00 UTC", "Valid-Until": "Thu, 08 Feb 2024 12:30:00 UTC",
			"Components": "main",
		}, 3},
		{"debian-security", "bookworm-security", map[string]string{
			"Origin": "Debian", "Label": "Debian-Security", "Suite": "bookworm-security", "Codename": "bookworm",
		}, 3},
	} {
		dists := a.URL(tc.archive) + "/dists/" + tc.suite + "/"
		release := string(mustGet(t, dists+"Release"))
		head, _, _ := strings.Cut(release, "MD5Sum:")
		st, _ := stanzas(head)
		for k, v := range tc.want {
			if st[0][k] != v {
				t.Errorf("%s Release %s = %q, want %q", tc.suite, k, st[0][k], v)
			}
		}
		if _, ok := st[0]["Valid-Until"]; ok != (tc.want["Valid-Until"] != "") {
			t.Errorf("%s: Valid-Until present = %v", tc.suite, ok)
		}

		// Every hash line matches the served file.
		section := ""
		count := map[string]int{}
		sc := bufio.NewScanner(strings.NewReader(release))
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, " ") {
				section, _, _ = strings.Cut(line, ":")
				continue
			}
			f := strings.Fields(line)
			body := mustGet(t, dists+f[2])
			var sum string
			switch section {
			case "MD5Sum":
				sum = fmt.Sprintf("%x", md5.Sum(body))
			case "SHA256":
				sum = fmt.Sprintf("%x", sha256.Sum256(body))
			default:
				t.Fatalf("hash line in section %q", section)
			}
			if f[0] != sum || f[1] != strconv.Itoa(len(body)) {
				t.Errorf("%s %s: Release says %s %s, served %s %d", section, f[2], f[0], f[1], sum, len(body))
			}
			if strings.HasSuffix(f[2], ".gz") || strings.HasSuffix(f[2], ".xz") {
				plain := mustGet(t, dists+strings.TrimSuffix(strings.TrimSuffix(f[2], ".gz"), ".xz"))
				if !bytes.Equal(decompress(t, f[2], body), plain) {
					t.Errorf("%s does not decompress to Packages", f[2])
				}
			}
			count[section]++
		}
		if count["MD5Sum"] != tc.indexes || count["SHA256"] != tc.indexes {
			t.Errorf("%s: %v hash lines, want %d each", tc.suite, count, tc.indexes)
		}
	}
}

func TestPackages(t *testing.T) {
	a := newTestArchive(t)
	index := func(archive, suite, comp string) []map[string]string {
		st, _ := stanzas(string(mustGet(t, a.URL(archive)+"/dists/"+suite+"/"+comp+"/binary-amd64/Packages")))
		return st
	}

	main := index("debian", "bookworm", "main")
	if len(main) != 2 || main[0]["Package"] != "foo" || main[1]["Package"] != "libbar1" {
		t.Fatalf("bookworm main has %v", main)
	}
	_, orders := stanzas(string(mustGet(t, a.URL("debian")+"/dists/bookworm/main/binary-amd64/Packages")))
	wantOrder := []string{"Package", "Source", "Version", "Installed-Size", "Maintainer", "Architecture",
		"Depends", "Pre-Depends", "Description", "Multi-Arch", "Priority", "Filename", "Size", "MD5sum", "SHA256"}
	if !reflect.DeepEqual(orders[0], wantOrder) {
		t.Errorf("field order %v, want %v", orders[0], wantOrder)
	}
	foo, bar := main[0], main[1]
	for k, v := range map[string]string{
		"Source": "foosrc (2.0-1)", "Version": "1:2.0-1", "Architecture": "amd64",
		"Depends": "libc6 (>= 2.36), bar | baz", "Pre-Depends": "dpkg (>= 1.15)",
		"Multi-Arch": "foreign", "Priority": "optional", "Installed-Size": "6",
		"Filename": "pool/main/f/foosrc/foo_2.0-1_amd64.deb",
	} {
		if foo[k] != v {
			t.Errorf("foo %s = %q, want %q", k, foo[k], v)
		}
	}
	for k, v := range map[string]string{
		"Architecture": "all", "Essential": "yes", "Priority": "required",
		"Filename": "pool/main/libb/libbar/libbar1_2.0_all.deb",
	} {
		if bar[k] != v {
			t.Errorf("libbar1 %s = %q, want %q", k, bar[k], v)
		}
	}
	contrib := index("debian", "bookworm", "contrib")
	if len(contrib) != 1 || contrib[0]["Filename"] != "pool/contrib/b/baz/baz_3_amd64.deb" || contrib[0]["Provides"] != "virtual-baz" {
		t.Errorf("bookworm contrib has %v", contrib)
	}
	sec := index("debian-security", "bookworm-security", "main")
	if len(sec) != 1 || sec[0]["Filename"] != "pool/main/f/foosrc/foo_2.0-1+deb12u1_amd64.deb" {
		t.Errorf("bookworm-security main has %v", sec)
	}

	// Each stanza describes the served deb, and Path and Deb agree.
	for _, c := range []struct {
		archive, suite, comp string
		st                   map[string]string
	}{
		{"debian", "bookworm", "main", foo},
		{"debian", "bookworm", "main", bar},
		{"debian", "bookworm", "contrib", contrib[0]},
		{"debian-security", "bookworm-security", "main", sec[0]},
	} {
		b := mustGet(t, a.URL(c.archive)+"/"+c.st["Filename"])
		if c.st["Size"] != strconv.Itoa(len(b)) || c.st["SHA256"] != fmt.Sprintf("%x", sha256.Sum256(b)) || c.st["MD5sum"] != fmt.Sprintf("%x", md5.Sum(b)) {
			t.Errorf("%s: stanza does not match the served deb", c.st["Filename"])
		}
		if p := a.Path(c.archive, c.suite, c.st["Package"]); p != c.archive+"/"+c.st["Filename"] {
			t.Errorf("Path = %q, want %q", p, c.archive+"/"+c.st["Filename"])
		}
		if !bytes.Equal(a.Deb(c.archive, c.st["Package"]), b) {
			t.Errorf("Deb(%s, %s) differs from the served deb", c.archive, c.st["Package"])
		}
	}
	if want, _ := BuildDeb(testDeb); !bytes.Equal(a.Deb("debian", "foo:amd64"), want) {
		t.Error("served deb differs from BuildDeb")
	}
	if got := a.Path("debian", "bookworm-updates", "baz"); got != "debian/pool/main/b/baz/baz_3+deb12u1_amd64.deb" {
		t.Errorf("Path of updates baz = %q", got)
	}
}

func TestSetFailRequests(t *testing.T) {
	a := newTestArchive(t)
	p := "debian/dists/bookworm/InRelease"
	orig := mustGet(t, a.Server.URL+"/"+p)
	mustGet(t, a.Server.URL+"/"+p)
	if n := a.Requests(p); n != 2 {
		t.Errorf("Requests = %d, want 2", n)
	}
	if n := a.Requests("/" + p); n != 2 {
		t.Errorf("Requests with leading slash = %d, want 2", n)
	}

	a.Set(p, []byte("tampered"))
	if got := mustGet(t, a.Server.URL+"/"+p); string(got) != "tampered" {
		t.Errorf("after Set got %q", got)
	}
	if string(a.Get(p)) != "tampered" {
		t.Error("Get does not show Set")
	}
	a.Fail(p, http.StatusServiceUnavailable)
	if status, _ := get(t, a.Server.URL+"/"+p); status != http.StatusServiceUnavailable {
		t.Errorf("after Fail status %d", status)
	}
	a.Fail(p, 0)
	a.Set(p, orig)
	if got := mustGet(t, a.Server.URL+"/"+p); !bytes.Equal(got, orig) {
		t.Error("content not restored")
	}
	a.Set(p, nil)
	if status, _ := get(t, a.Server.URL+"/"+p); status != http.StatusNotFound {
		t.Errorf("after Set nil status %d", status)
	}
	if status, _ := get(t, a.URL("debian")+"/dists/sid/InRelease"); status != http.StatusNotFound {
		t.Errorf("unknown path status %d", status)
	}
	if n := a.Requests(p); n != 6 {
		t.Errorf("Requests = %d, want 6", n)
	}

	// Range requests work, as apt uses them to resume.
	deb := a.Path("debian", "bookworm", "foo")
	req, _ := http.NewRequest("GET", a.Server.URL+"/"+deb, nil)
	req.Header.Set("Range", "bytes=8-")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(rest, a.Deb("debian", "foo")[8:]) {
		t.Errorf("Range: %d, %d bytes", resp.StatusCode, len(rest))
	}
}

func TestSnapshot(t *testing.T) {
	a := newTestArchive(t)
	canon := "debian-security/dists/bookworm-security/InRelease"
	want := mustGet(t, a.Server.URL+"/"+canon)
	for _, ts := range []string{"20240101T000000Z", "20991231T235959Z"} {
		p := "archive/debian-security/" + ts + "/dists/bookworm-security/InRelease"
		if got := mustGet(t, a.SnapshotURL()+"/"+p); !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s", p, canon)
		}
		if n := a.Requests(p); n != 1 {
			t.Errorf("Requests(%s) = %d", p, n)
		}
	}
	deb := a.Path("debian", "bookworm", "foo")
	snapDeb := "archive/debian/20240101T000000Z/" + strings.TrimPrefix(deb, "debian/")
	if got := mustGet(t, a.SnapshotURL()+"/"+snapDeb); !bytes.Equal(got, a.Deb("debian", "foo")) {
		t.Error("snapshot deb differs")
	}
	if status, _ := get(t, a.SnapshotURL()+"/archive/debian/latest/dists/bookworm/InRelease"); status != http.StatusNotFound {
		t.Errorf("bad timestamp status %d", status)
	}
	a.Fail(canon, http.StatusInternalServerError)
	if status, _ := get(t, a.SnapshotURL()+"/archive/debian-security/20240101T000000Z/dists/bookworm-security/InRelease"); status != http.StatusInternalServerError {
		t.Errorf("Fail of canonical path not seen under snapshot: %d", status)
	}
}

// TestAptGet checks that apt itself accepts the archive: it verifies
// InRelease against the keyring, the indexes against Release and the deb
// against Packages.
func TestAptGet(t *testing.T) {
	testenv.LookPath(t, "apt-get")
	testenv.LookPath(t, "gpgv")
	a := newTestArchive(t)
	dir := t.TempDir()
	for _, d := range []string{"etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "state/lists/partial", "cache/archives/partial", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0755); err != nil {
			t.Fatal(err)
		}
	}
	sources := fmt.Sprintf("deb [signed-by=%[1]s] %[2]s bookworm main contrib\ndeb [signed-by=%[1]s] %[3]s bookworm-security main\n",
		a.KeyringPath, a.URL("debian"), a.URL("debian-security"))
	conf := fmt.Sprintf(`Dir::Etc "%[1]s/etc";
Dir::State "%[1]s/state";
Dir::State::status "%[1]s/status";
Dir::Cache "%[1]s/cache";
Dir::Log "%[1]s/log";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Sandbox::User "root";
Debug::NoLocking "true";
Acquire::Languages "none";
`, dir)
	for name, body := range map[string]string{"etc/sources.list": sources, "apt.conf": conf, "status": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0644); err != nil {
			t.Fatal(err)
		}
	}
	apt := func(args ...string) string {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = filepath.Join(dir, "out")
		cmd.Env = append(os.Environ(), "APT_CONFIG="+filepath.Join(dir, "apt.conf"))
		out, err := cmd.CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("W: ")) || bytes.Contains(out, []byte("E: ")) {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	apt("apt-get", "update")
	if out := apt("apt-cache", "policy", "foo"); !strings.Contains(out, "Candidate: 1:2.0-1+deb12u1") {
		t.Errorf("apt-cache policy foo:\n%s", out)
	}
	apt("apt-get", "download", "foo", "libbar1", "baz")
	got, err := os.ReadFile(filepath.Join(dir, "out", "foo_1%3a2.0-1+deb12u1_amd64.deb"))
	if err != nil || !bytes.Equal(got, a.Deb("debian-security", "foo")) {
		t.Errorf("apt-get download foo: %v", err)
	}
}
