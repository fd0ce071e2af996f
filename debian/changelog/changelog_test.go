package changelog

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/apttest"
)

// glibc is bookworm's glibc changelog, shortened, with what dpkg skips
// mixed in.
const glibc = `glibc (2.36-9+deb12u4) bookworm-security; urgency=medium

  * debian/patches/any/local-CVE-2023-4911.patch: Fix a buffer overflow in
    the dynamic loader's processing of GLIBC_TUNABLES (CVE-2023-4911).
  * debian/patches/git-updates.diff: update from upstream stable branch:
    - Fix a use after free in getaddrinfo (cve-2023-4806, CVE-2023-5156).

  * Second group after a blank line.

 -- Aurelien Jarno <aurel32@debian.org>  Sat, 30 Sep 2023 18:23:33 +0200

# a comment dpkg skips
glibc (2.36-9+deb12u3) bookworm; urgency=MEDIUM, binary-only=no
  * Fix CVE-2023-4806 again.
stray heading line
 a line indented by one space
 -- Aurelien Jarno <aurel32@debian.org>  Mon, 4 Sep 2023 9:05:01 +0200
  change data after the trailer

glibc (2.36-9) unstable; urgency=medium

  * No trailer follows.

glibc (2.36-8~bpo1) bookworm-backports experimental; urgency=low

  * CVE-2014-0160 and CVE-2021-44228, CVE-2021-3999.

 -- Nobody <nobody@example.org>  Tue, 31 Feb 2023 00:00:00 +0000

Local variables:
mode: debian-changelog
End:
glibc (1.0) unstable; urgency=low
`

func TestParse(t *testing.T) {
	got := Parse([]byte(glibc))
	want := []Entry{
		{Source: "glibc", Version: "2.36-9+deb12u4", Distributions: []string{"bookworm-security"}, Urgency: "medium",
			Text: "  * debian/patches/any/local-CVE-2023-4911.patch: Fix a buffer overflow in\n" +
				"    the dynamic loader's processing of GLIBC_TUNABLES (CVE-2023-4911).\n" +
				"  * debian/patches/git-updates.diff: update from upstream stable branch:\n" +
				"    - Fix a use after free in getaddrinfo (cve-2023-4806, CVE-2023-5156).\n" +
				"\n" +
				"  * Second group after a blank line.",
			Maintainer: "Aurelien Jarno <aurel32@debian.org>",
			Date:       time.Date(2023, 9, 30, 18, 23, 33, 0, time.FixedZone("", 2*3600))},
		{Source: "glibc", Version: "2.36-9+deb12u3", Distributions: []string{"bookworm"}, Urgency: "medium",
			Text:       "  * Fix CVE-2023-4806 again.",
			Maintainer: "Aurelien Jarno <aurel32@debian.org>",
			Date:       time.Date(2023, 9, 4, 9, 5, 1, 0, time.FixedZone("", 2*3600))},
		{Source: "glibc", Version: "2.36-9", Distributions: []string{"unstable"}, Urgency: "medium",
			Text: "  * No trailer follows."},
		{Source: "glibc", Version: "2.36-8~bpo1", Distributions: []string{"bookworm-backports", "experimental"}, Urgency: "low",
			Text:       "  * CVE-2014-0160 and CVE-2021-44228, CVE-2021-3999.",
			Maintainer: "Nobody <nobody@example.org>"},
	}
	if len(got) != len(want) {
		t.Fatalf("Parse: %d entries, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if g, w := got[i], want[i]; !g.Date.Equal(w.Date) {
			t.Errorf("entry %d: date %v, want %v", i, g.Date, w.Date)
		} else {
			g.Date, w.Date = time.Time{}, time.Time{}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("entry %d:\n%#v\nwant\n%#v", i, g, w)
			}
		}
	}
	// What String writes reads back the same.
	var b strings.Builder
	for _, e := range got {
		b.WriteString(e.String() + "\n")
	}
	got[3].Maintainer = "" // the trailer of an unknown date is left out
	if again := Parse([]byte(b.String())); !reflect.DeepEqual(again, got) {
		t.Errorf("Parse(String()):\n%+v\nwant\n%+v\nfrom\n%s", again, got, b.String())
	}
	if s := got[0].String(); !strings.HasPrefix(s, "glibc (2.36-9+deb12u4) bookworm-security; urgency=medium\n\n  * debian/") ||
		!strings.HasSuffix(s, "\n\n -- Aurelien Jarno <aurel32@debian.org>  Sat, 30 Sep 2023 18:23:33 +0200\n") {
		t.Errorf("String:\n%s", s)
	}
}

// dpkg stops reading at the first line of the changelog format of old.
func TestParseOldFormat(t *testing.T) {
	text := "hello (2.0-1) unstable; urgency=low\n\n  * New.\n\n -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n\n" +
		"Changes from version 1.0 to 1.1:\n\nhello (1.0-1) unstable; urgency=low\n\n  * Old.\n"
	if got := Parse([]byte(text)); len(got) != 1 || got[0].Version != "2.0-1" {
		t.Errorf("Parse: %+v, want the first entry alone", got)
	}
	for _, junk := range []string{"", "\n\n", "  * change data before any header\n", "no changelog at all\n", "\x00\xff (\n"} {
		if got := Parse([]byte(junk)); len(got) != 0 {
			t.Errorf("Parse(%q) = %+v, want no entries", junk, got)
		}
	}
}

func TestBetween(t *testing.T) {
	entries := Parse([]byte(glibc))
	versions := func(es []Entry) string {
		var vs []string
		for _, e := range es {
			vs = append(vs, e.Version)
		}
		return strings.Join(vs, " ")
	}
	for _, c := range []struct{ old, new, want string }{
		{"2.36-9", "2.36-9+deb12u4", "2.36-9+deb12u4 2.36-9+deb12u3"},
		{"2.36-9+deb12u3", "2.36-9+deb12u4", "2.36-9+deb12u4"},
		{"2.36-8", "2.36-9", "2.36-9"},
		{"2.36-8~~", "2.36-8", "2.36-8~bpo1"},
		{"2.36-9+deb12u4", "2.36-9+deb12u4", ""},
		{"2.36-9+deb12u4", "2.36-9", ""}, // a downgrade
		{"0", "1:0", "2.36-9+deb12u4 2.36-9+deb12u3 2.36-9 2.36-8~bpo1"},
	} {
		got, err := Between(entries, c.old, c.new)
		if err != nil || versions(got) != c.want {
			t.Errorf("Between(%s, %s) = %q, %v; want %q", c.old, c.new, versions(got), err, c.want)
		}
	}
	if _, err := Between(entries, "2.36-9", "a b"); err == nil || !strings.Contains(err.Error(), `"a b"`) {
		t.Errorf("Between with a bad version: %v", err)
	}
	// An entry whose version is none is left out.
	bad := append(Parse([]byte("x (1:) unstable; urgency=low\n\n  * Bad version.\n")), entries[0])
	if got, err := Between(bad, "0", "9"); err != nil || versions(got) != "2.36-9+deb12u4" {
		t.Errorf("Between with an entry of a bad version = %q, %v", versions(got), err)
	}
}

func TestCVEs(t *testing.T) {
	got := CVEs(glibc + " CVE-2023-10000 CVE-2023-9999 CVE-2023-99 CVE-2023-49111 xCVE-2020-1234 CVE-2020-12345x")
	want := []string{"CVE-2014-0160", "CVE-2021-3999", "CVE-2021-44228", "CVE-2023-4806", "CVE-2023-4911", "CVE-2023-5156",
		"CVE-2023-9999", "CVE-2023-10000", "CVE-2023-49111"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CVEs:\n%q\nwant\n%q", got, want)
	}
	if got := CVEs("no identifiers"); len(got) != 0 {
		t.Errorf("CVEs of none: %q", got)
	}
}

func TestFromDeb(t *testing.T) {
	binNMU := "glibc (2.36-9+deb12u4+b1) bookworm; urgency=low, binary-only=yes\n\n  * Binary-only non-maintainer upload for amd64.\n\n" +
		" -- amd64 Build Daemon <buildd@example.org>  Sun, 01 Oct 2023 00:00:00 +0000\n"
	build := func(d apttest.Deb) []byte {
		t.Helper()
		if d.Version == "" {
			d.Version = "1"
		}
		data, err := apttest.BuildDeb(d)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	versions := func(es []Entry) string {
		var vs []string
		for _, e := range es {
			vs = append(vs, e.Version)
		}
		return strings.Join(vs, " ")
	}
	for _, c := range []struct {
		name string
		deb  apttest.Deb
		want string
		err  error
	}{
		{"debian", apttest.Deb{Name: "libc6", Files: []apttest.File{
			{Path: "usr/share/doc/libc6/changelog.Debian.gz", Body: apttest.Gzip(glibc)},
			{Path: "usr/share/doc/libc6/changelog.gz", Body: apttest.Gzip("upstream (9.9) unstable; urgency=low\n")},
			{Path: "usr/share/doc/libc6-dev/changelog.Debian.gz", Body: apttest.Gzip(binNMU)},
		}}, "2.36-9+deb12u4 2.36-9+deb12u3 2.36-9 2.36-8~bpo1", nil},
		{"binNMU, gz data", apttest.Deb{Name: "libc6", Compression: "gz", Files: []apttest.File{
			{Path: "usr/share/doc/libc6/changelog.Debian.gz", Body: apttest.Gzip(glibc)},
			{Path: "usr/share/doc/libc6/changelog.Debian.amd64.gz", Body: apttest.Gzip(binNMU)},
		}}, "2.36-9+deb12u4+b1 2.36-9+deb12u4 2.36-9+deb12u3 2.36-9 2.36-8~bpo1", nil},
		{"native", apttest.Deb{Name: "base-files", Compression: "zst", Files: []apttest.File{
			{Path: "usr/share/doc/base-files/changelog.gz", Body: apttest.Gzip("base-files (12.4+deb12u5) bookworm; urgency=medium\n\n  * Change.\n")},
		}}, "12.4+deb12u5", nil},
		{"symlinked doc dir", apttest.Deb{Name: "libgcc-s1", Files: []apttest.File{
			{Path: "usr/share/doc/libgcc-s1", Type: '2', Linkname: "gcc-12-base"},
		}}, "", ErrNotInDeb},
		{"no doc", apttest.Deb{Name: "empty"}, "", ErrNotInDeb},
	} {
		data := build(c.deb)
		got, err := FromDeb(bytes.NewReader(data), int64(len(data)), c.deb.Name)
		if !errors.Is(err, c.err) || versions(got) != c.want {
			t.Errorf("%s: FromDeb = %q, %v; want %q, %v", c.name, versions(got), err, c.want, c.err)
		}
	}

	// A corrupt changelog is an error naming it; a huge one is read up
	// to MaxSize.
	data := build(apttest.Deb{Name: "bad", Files: []apttest.File{{Path: "usr/share/doc/bad/changelog.Debian.gz", Body: "not gzip"}}})
	if _, err := FromDeb(bytes.NewReader(data), int64(len(data)), "bad"); err == nil || !strings.Contains(err.Error(), "changelog.Debian.gz") {
		t.Errorf("FromDeb of a corrupt changelog: %v", err)
	}
	huge := glibc[:strings.Index(glibc, "# a comment")] + strings.Repeat("  * padding\n", 2*MaxSize/12)
	data = build(apttest.Deb{Name: "huge", Files: []apttest.File{{Path: "usr/share/doc/huge/changelog.Debian.gz", Body: apttest.Gzip(huge)}}})
	if got, err := FromDeb(bytes.NewReader(data), int64(len(data)), "huge"); err != nil || versions(got) != "2.36-9+deb12u4" ||
		len(got[0].Text) > MaxSize {
		t.Errorf("FromDeb of a %d-byte changelog: %q, %v", len(huge), versions(got), err)
	}
	if _, err := FromDeb(bytes.NewReader(data[:100]), 100, "huge"); err == nil {
		t.Error("FromDeb of a truncated deb: no error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(glibc))
	f.Add([]byte("a (1) b; urgency=low\n  * x\n -- A <a>  Mon, 1 Jan 2024 00:00:00 +0000\n"))
	f.Add([]byte(" -- <>  1 x 0000 0:00:00 +0000\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		entries := Parse(text)
		for _, e := range entries {
			if e.Source == "" || e.Version == "" || len(e.Distributions) == 0 {
				t.Errorf("entry without a source, version or distribution: %+v", e)
			}
			CVEs(e.Text)
			Between(entries, e.Version, e.Version)
		}
		// What String writes reads back as the same entries.
		var b strings.Builder
		for _, e := range entries {
			b.WriteString(e.String() + "\n")
		}
		again := Parse([]byte(b.String()))
		if len(again) != len(entries) {
			t.Fatalf("Parse(String()) has %d entries, want %d:\n%s", len(again), len(entries), b.String())
		}
	})
}
