package apt

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/apttest"
)

func TestParsePreferencesErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"Pin: release a=stable\nPin-Priority: 900\n", "prefs:1: stanza without a Package field"},
		{"Package: foo\nPin-Priority: 900\n", "prefs:1: stanza without a Pin field"},
		{"Package: foo\nPin: release a=stable\n", "prefs:1: stanza without a Pin-Priority field"},
		{"Package: foo\nPin: release a=stable\nPin-Priority: high\n", `prefs:3: Pin-Priority "high" is not a number`},
		{"Package: foo\nPin: release a=stable\nPin-Priority: 0\n", "prefs:3: Pin-Priority 0 pins nothing"},
		{"Package: foo\nPin: release a=stable\nPin-Priority: 40000\n", "prefs:3: Pin-Priority 40000 is outside -32768 to 32767"},
		{"Package: foo\nPin: release a=stable\nPin-Priority: never\n", "prefs:3: Pin-Priority: never is only for Package: *"},
		{"\n# c\nPackage: *\nPin: suite stable\nPin-Priority: 1\n", `prefs:4: Pin: "suite": want release, origin or version`},
		{"Package: *\nPin: version 1.0\nPin-Priority: 1\n", "prefs:2: Pin: version needs package names, not Package: *"},
		{"Package: /(/\nPin: version 1.0\nPin-Priority: 1\n", "prefs:1: Package /(/: error parsing regexp: missing closing ): `(`"},
		{"Package foo\n", `prefs:1: "Package foo" is not a field`},
		{"Package: a\nPackage: b\n", "prefs:2: field Package given twice"},
	} {
		_, err := ParsePreferences(strings.NewReader(tc.text), "prefs")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %s", tc.text, err, tc.want)
		}
	}
	prefs, err := ParsePreferences(strings.NewReader("# only comments\n\n# and blank lines\n"), "prefs")
	if err != nil || len(prefs.pins) != 0 {
		t.Errorf("comments only: %v, %d pins", err, len(prefs.pins))
	}
}

// policyArchives are the archives of TestPolicyMatchesApt: Debian's
// bookworm and (NotAutomatic, ButAutomaticUpgrades) bookworm-backports
// on 127.0.0.1, and an organisation's repository, origin Acme, on
// 127.0.0.2, also calling its suite bookworm.
func policyArchives(t *testing.T) (debian, acme *apttest.Archive) {
	deb := func(name, ver string, fields ...string) apttest.Deb {
		d := apttest.Deb{Name: name, Version: ver, Fields: map[string]string{}}
		for i := 0; i < len(fields); i += 2 {
			d.Fields[fields[i]] = fields[i+1]
		}
		return d
	}
	debian = apttest.New(t,
		apttest.Suite{Name: "bookworm", Version: "12.4", Debs: []apttest.Deb{
			deb("hello", "2.10-3"), deb("gzip", "1.12-1"), deb("sed", "4.9-1"),
			deb("tool", "1.0-1", "Source", "toolsrc"), deb("tool-data", "1.0-1", "Source", "toolsrc"),
		}},
		apttest.Suite{Name: "bookworm-backports", NotAutomatic: true, ButAutomaticUpgrades: true, Debs: []apttest.Deb{
			deb("hello", "2.12-1~bpo12+1"), deb("tool", "2.0-1~bpo12+1", "Source", "toolsrc"),
		}},
	)
	acme = apttest.NewAt(t, "127.0.0.2:0",
		apttest.Suite{Archive: "acme", Name: "bookworm", Origin: "Acme", Label: "Acme Tools", Debs: []apttest.Deb{
			deb("hello", "2.10-2+acme1"), deb("gzip", "1.13-1+acme1"), deb("sed", "4.8-1+acme1"),
			deb("acme-tools", "1.0"),
		}},
	)
	return debian, acme
}

// TestPolicyMatchesApt gives real apt (apt-cache policy, from the host's
// apt) and Policy the same sources, preferences and installed packages,
// and compares every package's candidate.
func TestPolicyMatchesApt(t *testing.T) {
	debian, acme := policyArchives(t)
	type repo struct {
		a      *apttest.Archive
		root   string
		suites []string
	}
	repos := []repo{
		{debian, debian.URL("debian"), []string{"bookworm", "bookworm-backports"}},
		{acme, acme.URL("acme"), []string{"bookworm"}},
	}
	names := []string{"acme-tools", "gzip", "hello", "sed", "tool", "tool-data"}

	// Our universe, read through the Client like a build's.
	c := &Client{}
	ctx := context.Background()
	var universe []Package
	var sources strings.Builder
	for _, r := range repos {
		keyring, err := LoadKeyring(r.a.KeyringPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, suite := range r.suites {
			repo := Repository{URL: r.root, Suite: suite, Keyring: keyring}
			rel, err := c.Release(ctx, repo, apttest.Epoch)
			if err != nil {
				t.Fatal(err)
			}
			pkgs, err := c.Packages(ctx, repo, rel, "amd64")
			if err != nil {
				t.Fatal(err)
			}
			universe = append(universe, pkgs...)
			fmt.Fprintf(&sources, "deb [signed-by=%s] %s %s main\n", r.a.KeyringPath, r.root, suite)
		}
	}

	for _, tc := range []struct {
		name      string
		prefs     string
		installed map[string]string // name → version
	}{
		{name: "no preferences"},
		{name: "no preferences, installed", installed: map[string]string{"hello": "2.10-3", "sed": "4.9-1"}},
		{name: "origin 1001", prefs: "Package: *\nPin: origin 127.0.0.2\nPin-Priority: 1001\n",
			installed: map[string]string{"hello": "2.10-3", "gzip": "1.12-1", "sed": "4.9-1"}},
		{name: "origin 990, installed", prefs: "Package: *\nPin: origin \"127.0.0.2\"\nPin-Priority: 990\n",
			installed: map[string]string{"hello": "2.10-3", "sed": "4.9-1"}},
		{name: "origin 990, not installed", prefs: "Package: *\nPin: origin 127.0.0.2\nPin-Priority: 990\n"},
		{name: "release o= l=", prefs: "Package: *\nPin: release o=Acme, l=Acme Tools\nPin-Priority: 1001\n\nPackage: sed\nPin: release o=Debian\nPin-Priority: 1002\n",
			installed: map[string]string{"sed": "4.8-1+acme1"}},
		{name: "backports by archive", prefs: "Package: *\nPin: release a=bookworm-backports\nPin-Priority: 500\n"},
		{name: "backports installed upgrade", installed: map[string]string{"hello": "2.12-1~bpo12+1"}},
		{name: "version glob", prefs: "Explanation: Acme's hello\nExplanation: twice, as\n apt_preferences(5) does\nPackage: hello\nPin: version 2.10-2*\nPin-Priority: 1001\n\nPackage: gzip\nPin: version 1.12*\nPin-Priority: 600\n"},
		{name: "negative pin", prefs: "Package: gzip sed\nPin: origin 127.0.0.2\nPin-Priority: -1\n"},
		{name: "never", prefs: "Package: *\nPin: release l=Acme*\nPin-Priority: never\n\nPackage: *\nPin: release l=Acme*\nPin-Priority: 1001\n"},
		{name: "globs and regexes", prefs: "Package: h* /^s.d$/\nPin: release n=bookworm, c=main, v=12*\nPin-Priority: 1001\n\nPackage: g?ip\nPin: release n=bookworm, b=amd64\nPin-Priority: 800\n"},
		{name: "source pin", prefs: "Package: src:toolsrc\nPin: release a=bookworm-backports\nPin-Priority: 700\n"},
		{name: "first matching pin wins", prefs: "Package: hello\nPin: release o=Acme\nPin-Priority: 200\n\nPackage: hello\nPin: release o=Acme\nPin-Priority: 1001\n\nPackage: *\nPin: release o=Debian\nPin-Priority: 100\n\nPackage: *\nPin: release o=Debian\nPin-Priority: 900\n"},
		{name: "bare release", prefs: "Package: *\nPin: release bookworm-backports\nPin-Priority: 600\n\nPackage: sed\nPin: release 12.4\nPin-Priority: 1001\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefs, err := ParsePreferences(strings.NewReader(tc.prefs), "prefs")
			if err != nil {
				t.Fatal(err)
			}
			want := aptCandidates(t, sources.String(), tc.prefs, tc.installed, names)
			got := map[string]string{}
			policy := NewPolicy(prefs, "amd64")
			for _, name := range names {
				e := &entry{}
				for i := range universe {
					if p := &universe[i]; p.Name == name {
						e.all = append(e.all, p)
						if v, ok := tc.installed[name]; ok && p.Version.String() == v {
							e.base = p
						}
					}
				}
				got[name] = "(none)"
				if p := e.candidate(policy, e.base != nil); p != nil {
					got[name] = p.Version.String()
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("candidates:\n got %v\napt  %v", got, want)
			}
		})
	}
}

// aptCandidates runs apt-cache policy with sources, preferences and a
// status file of installed and returns each package's candidate version
// ("(none)" if none).
func aptCandidates(t *testing.T, sources, prefs string, installed map[string]string, names []string) map[string]string {
	t.Helper()
	var status strings.Builder
	for name, v := range installed {
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nMaintainer: test\nVersion: %s\nArchitecture: amd64\nDescription: test\n\n", name, v)
	}
	out := apttest.NewApt(t, sources, prefs, status.String()).Run(append([]string{"apt-cache", "policy"}, names...)...)
	cands := map[string]string{}
	var pkg string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":") {
			pkg = strings.TrimSuffix(line, ":")
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate: "); ok {
			cands[pkg] = v
		}
	}
	for _, name := range names {
		if _, ok := cands[name]; !ok {
			t.Fatalf("apt-cache policy says nothing of %s:\n%s", name, out)
		}
	}
	return cands
}
