package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/apttest"
)

// acmeArchive is an organisation's repository on 127.0.0.2, signed with
// its own key, calling its suite bookworm: an older libc6 than Debian's
// (tinyArchive) and a package of its own.
func acmeArchive(t *testing.T) *apttest.Archive {
	return apttest.NewAt(t, "127.0.0.2:0", apttest.Suite{Archive: "acme", Name: "bookworm", Origin: "Acme", Label: "Acme",
		Debs: []apttest.Deb{
			{Name: "libc6", Version: "2.36-8+acme1", Fields: map[string]string{"Priority": "optional"}},
			{Name: "acme-tools", Version: "1.0", Arch: "all", Fields: map[string]string{"Depends": "libc6"}},
		}})
}

// TestSiteRepoDryRun resolves Debian (tinyArchive) with an extra signed
// repository, with and without a preferences file pinning it by origin,
// and refuses repositories that are not signed by their keyring.
func TestSiteRepoDryRun(t *testing.T) {
	debian := tinyArchive(t)
	acme := acmeArchive(t)
	dir := t.TempDir()
	prefs := filepath.Join(dir, "acme.pref")
	if err := os.WriteFile(prefs, []byte("Package: *\nPin: origin 127.0.0.2\nPin-Priority: 1001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--suite", "bookworm", "--mirror", debian.URL("debian"), "--security-mirror", debian.URL("debian-security"),
		"--keyring", debian.KeyringPath, "--arch", "amd64", "--cache-dir", filepath.Join(dir, "cache"), "--dry-run",
		"--include", "acme-tools"}
	repo := "deb [signed-by=" + acme.KeyringPath + "] " + acme.URL("acme") + " bookworm main"

	// Without preferences Debian's newer libc6 wins; acme-tools comes
	// from the repository.
	out, stderr, err := runCLI(t, append(args, "--repo", repo)...)
	want := "acme-tools 1.0 all\napt 2.6.1 amd64\nbase-files 12.4 amd64\nlibc6 2.36-9+deb12u1 amd64\nusr-is-merged 37 all\n"
	if err != nil || out != want {
		t.Errorf("--repo: %v\n%s, want\n%s%s", err, out, want, stderr)
	}
	// Pinned at 1001 by origin, the repository's older libc6 is installed.
	out, stderr, err = runCLI(t, append(args, "--repo", repo, "--apt-preferences", prefs)...)
	want = strings.Replace(want, "libc6 2.36-9+deb12u1", "libc6 2.36-8+acme1", 1)
	if err != nil || out != want {
		t.Errorf("--repo --apt-preferences: %v\n%s, want\n%s%s", err, out, want, stderr)
	}
	// The same from a deb822 file.
	sources := filepath.Join(dir, "acme.sources")
	if err := os.WriteFile(sources, []byte("Types: deb\nURIs: "+acme.URL("acme")+"\nSuites: bookworm\nComponents: main\nSigned-By: "+acme.KeyringPath+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = runCLI(t, append(args, "--sources", sources, "--apt-preferences", prefs)...)
	if err != nil || out != want {
		t.Errorf("--sources --apt-preferences: %v\n%s, want\n%s%s", err, out, want, stderr)
	}

	// Refused: another key, a tampered Release, no InRelease, an
	// unsigned one.
	_, otherKeyring := apttest.NewKey(t)
	inRelease := "acme/dists/bookworm/InRelease"
	url := acme.URL("acme") + "/dists/bookworm/InRelease"
	_, _, err = runCLI(t, append(args, "--repo", "deb [signed-by="+otherKeyring+"] "+acme.URL("acme")+" bookworm main")...)
	oneLineError(t, "another key", err, url+"): InRelease: no signature by a key in the keyring")
	good := acme.Get(inRelease)
	acme.Set(inRelease, []byte(strings.Replace(string(good), "Origin: Acme", "Origin: Evil", 1)))
	_, _, err = runCLI(t, append(args, "--repo", repo)...)
	oneLineError(t, "tampered", err, url+"): InRelease: bad signature")
	acme.Set(inRelease, acme.Get("acme/dists/bookworm/Release"))
	_, _, err = runCLI(t, append(args, "--repo", repo)...)
	oneLineError(t, "unsigned", err, url+"): InRelease: not a clearsigned message")
	acme.Set(inRelease, nil)
	_, _, err = runCLI(t, append(args, "--repo", repo)...)
	oneLineError(t, "no InRelease", err, url+"): InRelease: 404")
	acme.Set(inRelease, good)

	// Bad flags are usage errors, before any download.
	for _, tc := range []struct{ flag, value, want string }{
		{"--repo", "deb " + acme.URL("acme") + " bookworm main", "no signed-by"},
		{"--repo", "deb [trusted=yes] " + acme.URL("acme") + " bookworm main", "unsigned repositories are refused"},
		{"--repo", "deb [signed-by=" + dir + "/missing.gpg] " + acme.URL("acme") + " bookworm main", "missing.gpg: no such file"},
		{"--repo", "deb [signed-by=" + prefs + "] " + acme.URL("acme") + " bookworm main", "signed-by " + prefs},
		{"--sources", dir + "/missing.sources", "missing.sources: no such file"},
		{"--apt-preferences", dir + "/missing", "missing: no such file"},
		{"--apt-preferences", prefs + ":bad.name", `NAME "bad.name"`},
		{"--apt-preferences", sources, "acme.sources:1: stanza without a Package field"},
	} {
		_, _, err := runCLI(t, append(args, tc.flag, tc.value)...)
		oneLineError(t, tc.flag+" "+tc.value, err, tc.want)
		if !errors.Is(err, errUsage) {
			t.Errorf("%s %s: %v is not a usage error", tc.flag, tc.value, err)
		}
	}
}
