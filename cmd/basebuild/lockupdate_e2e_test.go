package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/apttest"
)

// glibcChangelog is a changelog.Debian.gz body: its entries newest
// first, each naming cves[i].
func glibcChangelog(versions []string, cves []string) string {
	var b strings.Builder
	for i, v := range versions {
		b.WriteString("glibc (" + v + ") bookworm-security; urgency=medium\n\n" +
			"  * Fix a buffer overflow (" + cves[i] + ").\n\n" +
			" -- Aurelien Jarno <aurel32@debian.org>  Sat, 30 Sep 2023 18:23:33 +0200\n\n")
	}
	return apttest.Gzip(b.String())
}

// securitySuite is bookworm-security with glibc at version v: libc6,
// whose deb carries glibc's changelog, and libc-bin, whose doc directory
// is a symlink to libc6's.
func securitySuite(v string, changelog string) apttest.Suite {
	fields := map[string]string{"Priority": "optional", "Source": "glibc"}
	return apttest.Suite{Archive: "debian-security", Name: "bookworm-security", Debs: []apttest.Deb{
		{Name: "libc6", Version: v, Fields: fields, Files: []apttest.File{{Path: "usr/share/doc/libc6/changelog.Debian.gz", Body: changelog}}},
		{Name: "libc-bin", Version: v, Fields: fields, Files: []apttest.File{{Path: "usr/share/doc/libc-bin", Type: '2', Linkname: "libc6"}}},
	}}
}

// TestLockUpdate takes a lock of a hermetic archive through the binary,
// then publishes a glibc security update whose changelog names a CVE.
// lock --update says an unmoved lock is up to date and leaves it alone;
// after the update it rewrites the lock to what lock writes and prints
// glibc OLD -> NEW, its changed packages, the changelog entries between
// the versions (read from libc6's deb: libc-bin's doc directory is a
// symlink) and their CVEs, not older ones; --json says the same. Bad
// command lines are usage errors, and a failed download fails with the
// lock untouched.
func TestLockUpdate(t *testing.T) {
	a := apttest.New(t,
		apttest.Suite{Name: "bookworm-updates"},
		apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{
			{Name: "base-files", Version: "12.4", Fields: map[string]string{"Priority": "required", "Essential": "yes"}},
			{Name: "libc6", Version: "2.36-9", Fields: map[string]string{"Priority": "optional", "Source": "glibc"}},
			{Name: "libc-bin", Version: "2.36-9", Fields: map[string]string{"Priority": "required", "Source": "glibc", "Depends": "libc6"}},
			{Name: "apt", Version: "2.6.1", Fields: map[string]string{"Priority": "important", "Depends": "libc6 (>= 2.34)"}},
			{Name: "usr-is-merged", Version: "37", Arch: "all", Fields: map[string]string{"Priority": "optional"}},
		}},
		securitySuite("2.36-9+deb12u1", glibcChangelog([]string{"2.36-9+deb12u1", "2.36-9"}, []string{"CVE-2023-4806", "CVE-2022-0001"})),
	)
	work := t.TempDir()
	common := []string{"--suite", "bookworm", "--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"),
		"--keyring", a.KeyringPath, "--arch", "amd64", "--cache-dir", filepath.Join(work, "cache")}
	lock := filepath.Join(work, "bookworm.lock")
	if _, stderr, err := runBinary(t, append([]string{"lock", "-o", lock}, common...)...); err != nil {
		t.Fatalf("lock: %v\n%s", err, stderr)
	}
	before, err := os.ReadFile(lock)
	if err != nil {
		t.Fatal(err)
	}
	upToDate := func(what string) {
		t.Helper()
		fi, err := os.Stat(lock)
		if err != nil {
			t.Fatal(err)
		}
		out, stderr, err := runBinary(t, append([]string{"lock", "--update", lock}, common...)...)
		if want := lock + ": up to date (5 packages)\n"; err != nil || out != want {
			t.Errorf("%s: lock --update: %v, stdout %q, want %q\n%s", what, err, out, want, stderr)
		}
		if after, err := os.Stat(lock); err != nil || !os.SameFile(fi, after) || !after.ModTime().Equal(fi.ModTime()) {
			t.Errorf("%s: lock --update rewrote the lock (%v)", what, err)
		}
	}
	upToDate("a fresh lock")
	if now, _ := os.ReadFile(lock); string(now) != string(before) {
		t.Errorf("lock --update of a fresh lock changed it")
	}

	a.Update(securitySuite("2.36-9+deb12u2", glibcChangelog(
		[]string{"2.36-9+deb12u2", "2.36-9+deb12u1", "2.36-9"}, []string{"CVE-2024-2961, cve-2024-33599", "CVE-2023-4806", "CVE-2022-0001"})))
	want, stderr, err := runBinary(t, append([]string{"lock"}, common...)...)
	if err != nil || want == string(before) {
		t.Fatalf("lock after the update: %v, the same lock: %t\n%s", err, want == string(before), stderr)
	}

	// Bad command lines; a failed download. The lock stays as it was.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--update", lock, "-o", filepath.Join(work, "other.lock")}, 2, "-o and --update contradict each other"},
		{[]string{"--update", lock, "--check", lock}, 2, "--check and --update contradict each other"},
		{[]string{"--json"}, 2, "--json goes with --update"},
		{[]string{"--update", lock, "--include", "hello"}, 2, `--update ` + lock + `: --include: the lock has "", the command line "hello"`},
		{[]string{"--update", filepath.Join(work, "missing.lock")}, 2, "missing.lock"},
	} {
		_, _, err := runBinary(t, append(append([]string{"lock"}, tc.args...), common...)...)
		oneLineError(t, strings.Join(tc.args, " "), err, tc.want)
		if code := exitCode(err); code != tc.code {
			t.Errorf("%s: exit %d, want %d", strings.Join(tc.args, " "), code, tc.code)
		}
	}
	deb := a.Path("debian-security", "bookworm-security", "libc6")
	a.Fail(deb, 404)
	_, _, err = runBinary(t, append([]string{"lock", "--update", lock}, common...)...)
	oneLineError(t, "lock --update with libc6's deb missing", err, "404")
	if code := exitCode(err); code != 1 {
		t.Errorf("lock --update with libc6's deb missing: exit %d, want 1", code)
	}
	if now, _ := os.ReadFile(lock); string(now) != string(before) {
		t.Errorf("a failed lock --update changed the lock")
	}
	a.Fail(deb, 0)

	// --json, on a copy of the lock.
	copied := filepath.Join(work, "copy.lock")
	if err := os.WriteFile(copied, before, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runBinary(t, append([]string{"lock", "--update", copied, "--json"}, common...)...)
	if err != nil {
		t.Fatalf("lock --update --json: %v\n%s", err, stderr)
	}
	var review struct {
		UpToDate bool `json:"upToDate"`
		Sources  []struct {
			Source, From, To string
			Binaries         []struct{ Name, Architecture, From, To string }
			Changelog        []struct{ Version, Text string }
			CVEs             []string `json:"cves"`
		}
		Summary struct{ Sources, Added, Removed, Changed, CVEs int }
	}
	if err := json.Unmarshal([]byte(out), &review); err != nil {
		t.Fatalf("lock --update --json: %v\n%s", err, out)
	}
	if !strings.Contains(out, `"maintainer": "Aurelien Jarno <aurel32@debian.org>"`) {
		t.Errorf("lock --update --json escapes the maintainer's address:\n%s", out)
	}
	if len(review.Sources) != 1 || review.UpToDate {
		t.Fatalf("lock --update --json: want glibc alone:\n%s", out)
	}
	glibc := review.Sources[0]
	if glibc.Source != "glibc" || glibc.From != "2.36-9+deb12u1" || glibc.To != "2.36-9+deb12u2" || len(glibc.Binaries) != 2 ||
		len(glibc.Changelog) != 1 || glibc.Changelog[0].Version != "2.36-9+deb12u2" ||
		!slices.Equal(glibc.CVEs, []string{"CVE-2024-2961", "CVE-2024-33599"}) || review.Summary.Changed != 2 || review.Summary.CVEs != 2 {
		t.Errorf("lock --update --json:\n%s", out)
	}
	if got, _ := os.ReadFile(copied); string(got) != want {
		t.Errorf("lock --update --json wrote:\n%s\nwant what lock writes:\n%s", got, want)
	}

	out, stderr, err = runBinary(t, append([]string{"lock", "--update", lock}, common...)...)
	if err != nil {
		t.Fatalf("lock --update: %v\n%s", err, stderr)
	}
	for _, w := range []string{
		"### `glibc 2.36-9+deb12u1 -> 2.36-9+deb12u2`\n",
		"- `libc-bin:amd64 2.36-9+deb12u1 -> 2.36-9+deb12u2`\n- `libc6:amd64 2.36-9+deb12u1 -> 2.36-9+deb12u2`\n",
		"CVEs: CVE-2024-2961, CVE-2024-33599\n",
		"```\nglibc (2.36-9+deb12u2) bookworm-security; urgency=medium\n\n  * Fix a buffer overflow (CVE-2024-2961, cve-2024-33599).\n\n -- Aurelien Jarno",
		"\n1 source package: 0 binary packages added, 0 removed, 2 changed; 2 CVEs named\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("lock --update printed\n%s\nwithout\n%s", out, w)
		}
	}
	for _, old := range []string{"CVE-2023-4806", "CVE-2022-0001", "(2.36-9+deb12u1)"} {
		if strings.Contains(out, old) {
			t.Errorf("lock --update printed %s, of a version the lock had:\n%s", old, out)
		}
	}
	if got, _ := os.ReadFile(lock); string(got) != want {
		t.Errorf("lock --update wrote:\n%s\nwant what lock writes:\n%s", got, want)
	}
	upToDate("an updated lock")
}
