package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/debian/changelog"
	"github.com/basebuild/basebuild/plan"
)

func TestReview(t *testing.T) {
	pkg := func(name, source, sourceVersion, version string) plan.Package {
		return plan.Package{Name: name, Version: version, Architecture: "amd64", Source: source, SourceVersion: sourceVersion}
	}
	old := &plan.Plan{Epoch: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Packages: []plan.Package{
		pkg("gone", "gone", "1", "1"),
		pkg("libgcc-s1", "gcc-12", "12.2.0-14", "12.2.0-14"),
		pkg("libstdc++6", "gcc-12", "12.2.0-14+deb12u1", "12.2.0-14+deb12u1"),
		pkg("libblkid1", "util-linux", "2.38.1-5", "2.38.1-5+b1"),
		pkg("libc6", "glibc", "2.36-9+deb12u3", "2.36-9+deb12u3"),
		pkg("same", "same", "1", "1"),
		pkg("util-linux", "util-linux", "2.38.1-5", "2.38.1-5+b1"),
		pkg("weird", "weird", "2", "2"),
	}}
	new := &plan.Plan{Epoch: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), Packages: []plan.Package{
		pkg("libblkid1", "util-linux", "2.38.1-5", "2.38.1-5+b2"),
		pkg("libc6", "glibc", "2.36-9+deb12u4", "2.36-9+deb12u4"),
		pkg("libc6-dev", "glibc", "2.36-9+deb12u4", "2.36-9+deb12u4"),
		pkg("libgcc-s1", "gcc-12", "12.2.0-14+deb12u1", "12.2.0-14+deb12u1"),
		pkg("libstdc++6", "gcc-12", "12.2.0-14+deb12u1", "12.2.0-14+deb12u1"),
		pkg("new", "new", "1", "1"),
		pkg("same", "same", "1", "1"),
		pkg("util-linux", "util-linux", "2.38.1-5", "2.38.1-5+b2"),
		pkg("weird", "weird", "1", "1"),
	}}
	r := NewReview(old, new)
	var sources []string
	for _, s := range r.Sources {
		sources = append(sources, s.Source+" "+s.From+" "+s.To+" "+s.since+" "+s.until+" "+s.Note)
	}
	// gcc-12's libstdc++6 stayed: libgcc-s1, which moved, gives its
	// old version.
	want := []string{
		"gcc-12 12.2.0-14 12.2.0-14+deb12u1 12.2.0-14 12.2.0-14+deb12u1 ",
		"glibc 2.36-9+deb12u3 2.36-9+deb12u4 2.36-9+deb12u3 2.36-9+deb12u4 ",
		"gone 1  1  gone from the set",
		"new  1  1 new in the set",
		"util-linux 2.38.1-5 2.38.1-5 2.38.1-5+b1 2.38.1-5+b2 ",
		"weird 2 1 2 1 ",
	}
	if !reflect.DeepEqual(sources, want) {
		t.Errorf("NewReview:\n%q\nwant\n%q", sources, want)
	}
	if got := r.Sources[1].Binaries; !reflect.DeepEqual(got, []BinaryChange{
		{Name: "libc6", Architecture: "amd64", From: "2.36-9+deb12u3", To: "2.36-9+deb12u4"},
		{Name: "libc6-dev", Architecture: "amd64", To: "2.36-9+deb12u4"},
	}) {
		t.Errorf("glibc's binaries: %+v", got)
	}
	if r.UpToDate() || !NewReview(old, old).UpToDate() {
		t.Errorf("UpToDate: %t for a move, %t for none", r.UpToDate(), NewReview(old, old).UpToDate())
	}

	entries := changelog.Parse([]byte(
		"util-linux (2.38.1-5+b2) bookworm; urgency=low, binary-only=yes\n\n  * Rebuild (CVE-2024-1).\n\n" +
			"util-linux (2.38.1-5+b1) bookworm; urgency=low, binary-only=yes\n\n  * Rebuild.\n\n" +
			"util-linux (2.38.1-5) unstable; urgency=low\n\n  * Older (CVE-2020-1111).\n"))
	r.Sources[4].SetChangelog(entries)
	r.Sources[5].SetChangelog(entries)
	if s := r.Sources[4]; len(s.Changelog) != 1 || s.Changelog[0].Version != "2.38.1-5+b2" || !reflect.DeepEqual(s.CVEs, []string{}) || s.Note != "" {
		t.Errorf("a binNMU's changelog: %+v", s)
	}
	if s := r.Sources[5]; len(s.Changelog) != 0 || s.Note != "downgraded" {
		t.Errorf("a downgrade's changelog: %+v", s)
	}
	glibc := changelog.Parse([]byte("glibc (2.36-9+deb12u4) bookworm-security; urgency=medium\n\n" +
		"  * Fix CVE-2023-4911 and ```CVE-2023-4806```.\n\n -- A <a@example.org>  Sat, 30 Sep 2023 18:23:33 +0200\n\n" +
		"glibc (2.36-9+deb12u3) bookworm; urgency=medium\n\n  * Fix CVE-2020-1111.\n"))
	r.Sources[1].SetChangelog(glibc)
	if s := r.Sources[1]; !reflect.DeepEqual(s.CVEs, []string{"CVE-2023-4806", "CVE-2023-4911"}) {
		t.Errorf("glibc's CVEs: %q", s.CVEs)
	}

	var b strings.Builder
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	wantMD := "Epoch: 2024-01-01T00:00:00Z -> 2024-02-01T00:00:00Z\n\n" +
		"### `gcc-12 12.2.0-14 -> 12.2.0-14+deb12u1`\n\n- `libgcc-s1:amd64 12.2.0-14 -> 12.2.0-14+deb12u1`\n\n" +
		"### `glibc 2.36-9+deb12u3 -> 2.36-9+deb12u4`\n\n" +
		"- `libc6:amd64 2.36-9+deb12u3 -> 2.36-9+deb12u4`\n" +
		"- added `libc6-dev:amd64 2.36-9+deb12u4`\n\n" +
		"CVEs: CVE-2023-4806, CVE-2023-4911\n\n" +
		"````\nglibc (2.36-9+deb12u4) bookworm-security; urgency=medium\n\n" +
		"  * Fix CVE-2023-4911 and ```CVE-2023-4806```.\n\n -- A <a@example.org>  Sat, 30 Sep 2023 18:23:33 +0200\n````\n\n" +
		"### `gone 1 -> (none)`\n\n- removed `gone:amd64 1`\n\n(gone from the set)\n\n" +
		"### `new (none) -> 1`\n\n- added `new:amd64 1`\n\n(new in the set)\n\n" +
		"### `util-linux 2.38.1-5 -> 2.38.1-5`\n\n" +
		"- `libblkid1:amd64 2.38.1-5+b1 -> 2.38.1-5+b2`\n- `util-linux:amd64 2.38.1-5+b1 -> 2.38.1-5+b2`\n\n" +
		"```\nutil-linux (2.38.1-5+b2) bookworm; urgency=low\n\n  * Rebuild (CVE-2024-1).\n```\n\n" +
		"### `weird 2 -> 1`\n\n- `weird:amd64 2 -> 1`\n\n(downgraded)\n\n" +
		"6 source packages: 2 binary packages added, 1 removed, 5 changed; 2 CVEs named\n"
	if b.String() != wantMD {
		t.Errorf("WriteMarkdown:\n%q\nwant\n%q", b.String(), wantMD)
	}

	// As basebuild lock --update --json writes it.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	var back struct {
		Sources  []SourceChange `json:"sources"`
		UpToDate bool           `json:"upToDate"`
		Summary  Summary        `json:"summary"`
	}
	if !strings.Contains(string(data), `"maintainer":"A <a@example.org>"`) {
		t.Errorf("JSON escapes the maintainer's address:\n%s", data)
	}
	if err := json.Unmarshal(data, &back); err != nil || len(back.Sources) != 6 || back.UpToDate ||
		back.Summary != (Summary{Sources: 6, Added: 2, Removed: 1, Changed: 5, CVEs: 2}) {
		t.Errorf("JSON: %v\n%s", err, data)
	}
}

func TestCode(t *testing.T) {
	for in, want := range map[string]string{
		"a 1.0~rc1 -> 1.0~rc2": "`a 1.0~rc1 -> 1.0~rc2`",
		"a`b":                  "``a`b``",
		"`a``":                 "``` `a`` ```",
	} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
}
