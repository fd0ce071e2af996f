package apt

import (
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/plan"
	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// universe parses Packages-style stanzas, separated by blank lines, into
// packages. Unset fields default to Architecture amd64 and Suite bookworm.
// Every universe gets an apt with no dependencies unless it has its own.
func universe(t *testing.T, text string) []Package {
	t.Helper()
	var out []Package
	hasAPT := false
	indexes := map[string]*IndexFile{}
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		p := Package{Architecture: "amd64", Suite: "bookworm", Component: "main", ArchiveURL: "http://archive.test/debian"}
		origin := "Debian"
		for _, line := range strings.Split(strings.TrimSpace(para), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok {
				t.Fatalf("stanza line %q has no colon", line)
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Package":
				p.Name = v
			case "Version":
				ver, err := version.Parse(v)
				if err != nil {
					t.Fatalf("version %q: %v", v, err)
				}
				p.Version = ver
			case "Architecture":
				p.Architecture = v
			case "Multi-Arch":
				p.MultiArch = v
			case "Priority":
				p.Priority = v
			case "Essential":
				p.Essential = v == "yes"
			case "Source":
				p.Source = v
			case "Suite":
				p.Suite = v
			case "Archive":
				p.ArchiveURL = v
			case "Origin":
				origin = v
			case "Pre-Depends", "Depends", "Provides", "Recommends":
				d, err := dependency.Parse(v)
				if err != nil {
					t.Fatalf("%s %q: %v", k, v, err)
				}
				switch k {
				case "Pre-Depends":
					p.PreDepends = *d
				case "Depends":
					p.Depends = *d
				case "Recommends":
					p.Recommends = *d
				default:
					p.Provides = *d
				}
			default:
				t.Fatalf("unknown field %q", k)
			}
		}
		if p.Name == "" || p.Version.Empty() {
			t.Fatalf("stanza without Package or Version: %q", para)
		}
		key := p.ArchiveURL + " " + p.Suite + " " + origin
		if indexes[key] == nil {
			site, _, _ := strings.Cut(strings.TrimPrefix(p.ArchiveURL, "http://"), "/")
			indexes[key] = &IndexFile{Origin: origin, Suite: p.Suite, Codename: "bookworm", Component: "main", Architecture: "amd64", Site: site,
				Debian: site == "archive.test"}
		}
		p.Index = indexes[key]
		hasAPT = hasAPT || p.Name == "apt"
		p.Filename = fmt.Sprintf("pool/main/%s_%s_%s.deb", p.Name, p.Version.StringWithoutEpoch(), p.Architecture)
		p.Size = int64(len(p.Name))
		p.SHA256 = strings.Repeat("0", 64)
		out = append(out, p)
	}
	if !hasAPT {
		out = append(out, Package{Name: "apt", Version: version.Version{Version: "2.6.1"}, Architecture: "amd64", Priority: "important", Suite: "bookworm", ArchiveURL: "http://archive.test/debian"})
	}
	return out
}

// resolve resolves text with opts (Arch defaults to amd64) and returns the
// result as "name=version" words.
func resolve(t *testing.T, text string, opts ResolveOptions) string {
	t.Helper()
	s, err := tryResolve(t, text, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tryResolve(t *testing.T, text string, opts ResolveOptions) (string, error) {
	t.Helper()
	if opts.Arch == "" {
		opts.Arch = "amd64"
	}
	pkgs, err := Resolve(universe(t, text), opts)
	if err != nil {
		return "", err
	}
	var words []string
	for _, p := range pkgs {
		words = append(words, p.Name+"="+p.Version.String())
	}
	return strings.Join(words, " "), nil
}

func check(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func checkError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Errorf("error\ngot  %s\nwant %s", err, want)
	}
}

func TestResolveRoots(t *testing.T) {
	got := resolve(t, `
Package: base-files
Version: 12.4
Priority: required
Essential: yes

Package: mawk
Version: 1.3.4
Priority: required

Package: bash
Version: 5.2
Priority: important
Essential: yes

Package: less
Version: 590
Priority: important

Package: vim
Version: 9.0
Priority: optional

Package: apt
Version: 2.6.1
Priority: important
Depends: libapt-pkg6.0

Package: libapt-pkg6.0
Version: 2.6.1
Priority: optional
`, ResolveOptions{})
	check(t, got, "apt=2.6.1 base-files=12.4 bash=5.2 libapt-pkg6.0=2.6.1 mawk=1.3.4")
}

func TestResolveHighestVersion(t *testing.T) {
	const u = `
Package: libc6
Version: 2.36-9+deb12u1
Priority: required
Depends: libgcc-s1

Package: libc6
Version: 2.36-9+deb12u4
Priority: required
Suite: bookworm-security
Depends: libgcc-s1, libnew

Package: libc6
Version: 2.36-9+deb12u3
Priority: required
Suite: bookworm-updates

Package: libc6
Version: 2.40-1
Architecture: i386

Package: libgcc-s1
Version: 12.2.0-14

Package: libnew
Version: 1.0

Package: tzdata
Version: 2024a-0+deb12u1
Priority: required

Package: tzdata
Version: 2024a-0+deb12u1
Priority: required
Suite: bookworm-updates
`
	check(t, resolve(t, u, ResolveOptions{}),
		"apt=2.6.1 libc6=2.36-9+deb12u4 libgcc-s1=12.2.0-14 libnew=1.0 tzdata=2024a-0+deb12u1")

	// Equal versions in two suites: the same package, from either.
	pkgs, err := Resolve(universe(t, u), ResolveOptions{Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if p.Name == "tzdata" && p.Suite != "bookworm" {
			t.Errorf("tzdata from %s, want bookworm", p.Suite)
		}
		if p.Name == "libc6" && p.Suite != "bookworm-security" {
			t.Errorf("libc6 from %s, want bookworm-security", p.Suite)
		}
	}
}

// With Suite set, debootstrap sees only that suite, so a dependency that
// only the old version has stays installed after the upgrade.
func TestResolveSuite(t *testing.T) {
	const u = `
Package: coreutils
Version: 9.1-1
Priority: required
Depends: libold

Package: coreutils
Version: 9.1-1+deb12u1
Priority: required
Suite: bookworm-security
Depends: libnew

Package: libold
Version: 1.0

Package: libnew
Version: 1.0

Package: newtool
Version: 1.0
Priority: required
Suite: bookworm-updates
`
	check(t, resolve(t, u, ResolveOptions{Suite: "bookworm"}),
		"apt=2.6.1 coreutils=9.1-1+deb12u1 libnew=1.0 libold=1.0")
	check(t, resolve(t, u, ResolveOptions{}),
		"apt=2.6.1 coreutils=9.1-1+deb12u1 libnew=1.0 newtool=1.0")
	_, err := tryResolve(t, u, ResolveOptions{Suite: "trixie"})
	checkError(t, err, `suite "trixie" has no amd64 packages`)
}

func TestResolveProvides(t *testing.T) {
	// debootstrap drops virtual names; apt then picks a provider.
	check(t, resolve(t, `
Package: base
Version: 1
Priority: required
Depends: awk, libfoo-abi-2 (>= 2.1), c-shell

Package: mawk
Version: 1.3.4
Provides: awk

Package: gawk
Version: 5.2
Provides: awk

Package: libfoo1
Version: 1.0
Provides: libfoo-abi-2 (= 2.0)

Package: libfoo2
Version: 2.1
Provides: libfoo-abi-2 (= 2.1)

Package: libfoo3
Version: 3.0
Provides: libfoo-abi-2

Package: csh
Version: 20110502
Priority: optional
Provides: c-shell

Package: tcsh
Version: 6.24
Priority: standard
Provides: c-shell
`, ResolveOptions{}), "apt=2.6.1 base=1 gawk=5.2 libfoo2=2.1 tcsh=6.24")

	// A relation only apt sees (added by an update): the real package of
	// the name wins over providers, and among providers the higher
	// priority.
	check(t, resolve(t, `
Package: base
Version: 1
Priority: required

Package: base
Version: 2
Priority: required
Suite: bookworm-security
Depends: awk, mail-reader

Package: awk
Version: 1
Priority: optional

Package: mawk
Version: 1.3.4
Priority: important
Provides: awk

Package: bsd-mailx
Version: 8.1
Priority: important
Provides: mail-reader

Package: mutt
Version: 2.2
Priority: optional
Provides: mail-reader
`, ResolveOptions{Suite: "bookworm"}), "apt=2.6.1 awk=1 base=2 bsd-mailx=8.1")

	// A provider already in the set satisfies the dependency.
	check(t, resolve(t, `
Package: base
Version: 1
Priority: required
Depends: awk

Package: gawk
Version: 5.2
Provides: awk

Package: mawk
Version: 1.3.4
Priority: required
Provides: awk
`, ResolveOptions{}), "apt=2.6.1 base=1 mawk=1.3.4")

	// An unversioned Provides does not satisfy a versioned dependency.
	_, err := tryResolve(t, `
Package: base
Version: 1
Priority: required
Depends: libfoo-abi-2 (>= 2)

Package: libfoo3
Version: 3.0
Provides: libfoo-abi-2
`, ResolveOptions{})
	checkError(t, err, "base depends on libfoo-abi-2 (>= 2), but bookworm has libfoo3 3.0 providing libfoo-abi-2")

	// A virtual name is not a package to include.
	_, err = tryResolve(t, `
Package: mawk
Version: 1.3.4
Provides: awk
`, ResolveOptions{Include: []string{"awk"}})
	checkError(t, err, `package "awk" not found`)
}

func TestResolveAlternatives(t *testing.T) {
	// debootstrap follows the first alternative by name, even when a
	// later one is already installed.
	check(t, resolve(t, `
Package: base
Version: 1
Priority: required
Depends: mawk | gawk

Package: mawk
Version: 1.3.4

Package: gawk
Version: 5.2
Priority: required
`, ResolveOptions{}), "apt=2.6.1 base=1 gawk=5.2 mawk=1.3.4")

	// Relations that only apt sees (here, added by an update): an
	// alternative already in the set wins, else the first that can be
	// satisfied; missing, virtual, too old and uninstallable ones fall
	// through.
	check(t, resolve(t, `
Package: base
Version: 1
Priority: required

Package: base
Version: 2
Priority: required
Suite: bookworm-security
Depends: mawk | gawk, missing | virtual | libfoo (>= 2) | broken | second, third | fourth

Package: mawk
Version: 1.3.4

Package: gawk
Version: 5.2
Priority: required

Package: libfoo
Version: 1.0

Package: broken
Version: 1.0
Depends: missing

Package: second
Version: 1.0

Package: third
Version: 1.0

Package: fourth
Version: 1.0
`, ResolveOptions{Suite: "bookworm"}), "apt=2.6.1 base=2 gawk=5.2 second=1.0 third=1.0")

	// When no candidate can be installed, the first one's failure is
	// reported.
	_, err := tryResolve(t, `
Package: base
Version: 1
Priority: required

Package: base
Version: 2
Priority: required
Suite: bookworm-security
Depends: broken | virtual | second

Package: broken
Version: 1.0
Depends: libmissing

Package: second
Version: 1.0
Depends: libmissing2
`, ResolveOptions{Suite: "bookworm"})
	checkError(t, err, "base → broken depends on libmissing, but no suite has libmissing")
}

func TestResolveVersionConstraints(t *testing.T) {
	for _, tt := range []struct {
		dep string
		ok  bool
	}{
		{"libfoo (<< 2.0)", true},
		{"libfoo (<< 1.5)", false},
		{"libfoo (<< 1.5~rc1)", false},
		{"libfoo (<= 1.5)", true},
		{"libfoo (<= 1.4)", false},
		{"libfoo (= 1.5)", true},
		{"libfoo (= 1.5-1)", false},
		{"libfoo (>= 1.5)", true},
		{"libfoo (>= 1.5~rc1)", true},
		{"libfoo (>= 1:1.0)", false},
		{"libfoo (>> 1.4)", true},
		{"libfoo (>> 1.5)", false},
	} {
		_, err := tryResolve(t, `
Package: base
Version: 1
Priority: required
Depends: `+tt.dep+`

Package: libfoo
Version: 1.5
`, ResolveOptions{})
		if tt.ok && err != nil {
			t.Errorf("%s: %v", tt.dep, err)
		}
		if !tt.ok {
			checkError(t, err, "base depends on "+tt.dep+", but bookworm has libfoo 1.5")
		}
	}
}

func TestResolvePreDepends(t *testing.T) {
	check(t, resolve(t, `
Package: base
Version: 1
Priority: required
Pre-Depends: libzstd1 (>= 1.5)

Package: libzstd1
Version: 1.5.4
`, ResolveOptions{}), "apt=2.6.1 base=1 libzstd1=1.5.4")

	_, err := tryResolve(t, `
Package: base
Version: 1
Priority: required
Pre-Depends: libzstd1 (>= 1.6)

Package: libzstd1
Version: 1.5.4
`, ResolveOptions{})
	checkError(t, err, "base pre-depends on libzstd1 (>= 1.6), but bookworm has libzstd1 1.5.4")
}

func TestResolveArchQualifiers(t *testing.T) {
	check(t, resolve(t, `
Package: base
Version: 1
Priority: required
Depends: perl:any, python3:any (>= 3.11), libc6:native, zlib1g:amd64

Package: perl
Version: 5.36
Multi-Arch: allowed

Package: python3
Version: 3.11.2
Multi-Arch: allowed

Package: libc6
Version: 2.36

Package: zlib1g
Version: 1.2.13
`, ResolveOptions{}), "apt=2.6.1 base=1 libc6=2.36 perl=5.36 python3=3.11.2 zlib1g=1.2.13")

	_, err := tryResolve(t, `
Package: base
Version: 1
Priority: required
Depends: debconf:any

Package: debconf
Version: 1.5.82
Architecture: all
Multi-Arch: foreign
`, ResolveOptions{})
	checkError(t, err, "base depends on debconf:any, but bookworm has debconf 1.5.82, which is not Multi-Arch: allowed")

	_, err = tryResolve(t, `
Package: base
Version: 1
Priority: required
Depends: libc6:i386

Package: libc6
Version: 2.36
`, ResolveOptions{})
	checkError(t, err, "base depends on libc6:i386, but bookworm has libc6 2.36 for amd64")
}

func TestResolveArchitectures(t *testing.T) {
	// Architecture: all counts as native; other architectures are not
	// there at all.
	check(t, resolve(t, `
Package: base
Version: 1
Priority: required
Depends: tzdata, libc6

Package: tzdata
Version: 2024a
Architecture: all

Package: libc6
Version: 2.36

Package: libc6
Version: 2.40
Architecture: i386

Package: arm-only
Version: 1
Architecture: arm64
Priority: required
Essential: yes
`, ResolveOptions{}), "apt=2.6.1 base=1 libc6=2.36 tzdata=2024a")

	_, err := tryResolve(t, `
Package: base
Version: 1
Priority: required
Depends: arm-only

Package: arm-only
Version: 1
Architecture: arm64
`, ResolveOptions{})
	checkError(t, err, "base depends on arm-only, but no suite has arm-only")

	// Dependency architecture restrictions.
	check(t, resolve(t, `
Package: base
Version: 1
Priority: required
Depends: a [amd64], b [!amd64], c [i386 arm64], d [i386] | e, f [linux-any]

Package: a
Version: 1

Package: b
Version: 1

Package: c
Version: 1

Package: d
Version: 1

Package: e
Version: 1

Package: f
Version: 1
`, ResolveOptions{}), "a=1 apt=2.6.1 base=1 e=1 f=1")
}

func TestResolveIncludeExclude(t *testing.T) {
	const u = `
Package: base
Version: 1
Priority: required
Depends: libc6

Package: libc6
Version: 2.36
Priority: required

Package: tzdata
Version: 2024a
Priority: required

Package: bsdutils
Version: 2.38
Priority: required
Essential: yes

Package: curl
Version: 7.88
Depends: libcurl4

Package: libcurl4
Version: 7.88
`
	check(t, resolve(t, u, ResolveOptions{Include: []string{"curl"}}),
		"apt=2.6.1 base=1 bsdutils=2.38 curl=7.88 libc6=2.36 libcurl4=7.88 tzdata=2024a")

	// Excluded packages leave the roots, but a dependency still pulls
	// one in, and apt installs a missing Essential package anyway.
	check(t, resolve(t, u, ResolveOptions{Exclude: []string{"tzdata", "libc6", "bsdutils", "apt"}}),
		"base=1 bsdutils=2.38 libc6=2.36")

	_, err := tryResolve(t, u, ResolveOptions{Include: []string{"curl", "wget"}})
	checkError(t, err, `package "wget" not found`)
	_, err = tryResolve(t, u, ResolveOptions{Required: []string{"usr-is-merged"}})
	checkError(t, err, `package "usr-is-merged" not found`)
}

func TestResolvePreferences(t *testing.T) {
	// An organisation's repository, calling its suite bookworm too, with
	// an older hello, a newer gzip and a package of its own.
	const u = `
Package: base
Version: 1
Priority: required
Depends: gzip

Package: gzip
Version: 1.12-1
Priority: required

Package: hello
Version: 2.10-3

Package: gzip
Version: 1.13-1+acme1
Archive: http://apt.acme.test/acme
Origin: Acme

Package: hello
Version: 2.10-2+acme1
Archive: http://apt.acme.test/acme
Origin: Acme

Package: acme-tools
Version: 1.0
Depends: hello (>= 2.10-2~)
Archive: http://apt.acme.test/acme
Origin: Acme
`
	debian := ResolveOptions{Suite: "bookworm", Archive: "http://archive.test/debian", Include: []string{"acme-tools"}}
	prefs := func(text string) *Preferences {
		p, err := ParsePreferences(strings.NewReader(text), "prefs")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Without pins the highest versions win; acme-tools, which the
	// bootstrap suite lacks, is installed by the upgrade step.
	check(t, resolve(t, u, debian), "acme-tools=1.0 apt=2.6.1 base=1 gzip=1.13-1+acme1 hello=2.10-3")

	// Pinned at 1001 the repository wins, even below Debian's versions.
	o := debian
	o.Preferences = prefs("Package: *\nPin: origin apt.acme.test\nPin-Priority: 1001\n")
	check(t, resolve(t, u, o), "acme-tools=1.0 apt=2.6.1 base=1 gzip=1.13-1+acme1 hello=2.10-2+acme1")

	// At 990 it wins for what is not installed yet, but does not
	// downgrade what debootstrap installed: Debian's hello stays if it
	// was bootstrapped (--include), the older acme one comes in if not.
	o.Preferences = prefs("Package: *\nPin: release o=Acme\nPin-Priority: 990\n")
	check(t, resolve(t, u, o), "acme-tools=1.0 apt=2.6.1 base=1 gzip=1.13-1+acme1 hello=2.10-2+acme1")
	o.Include = []string{"acme-tools", "hello"}
	check(t, resolve(t, u, o), "acme-tools=1.0 apt=2.6.1 base=1 gzip=1.13-1+acme1 hello=2.10-3")

	// A negative pin keeps gzip at what was bootstrapped.
	o = debian
	o.Preferences = prefs("Package: gzip\nPin: origin apt.acme.test\nPin-Priority: -1\n")
	check(t, resolve(t, u, o), "acme-tools=1.0 apt=2.6.1 base=1 gzip=1.12-1 hello=2.10-3")

	// The bootstrap step sees Debian's bookworm only: the repository's
	// bookworm cannot stand in for a package Debian lacks there.
	o = debian
	o.Include = nil
	o.Required = []string{"acme-tools"}
	_, err := tryResolve(t, u, o)
	checkError(t, err, `package "acme-tools" not found`)

	// A package no version of which may be installed.
	o = debian
	o.Preferences = prefs("Package: *\nPin: origin apt.acme.test\nPin-Priority: never\n")
	_, err = tryResolve(t, u, o)
	checkError(t, err, `package "acme-tools": no version may be installed (its pins are below 1)`)
}

func TestResolveRecommends(t *testing.T) {
	const u = `
Package: base
Version: 1
Priority: required
Recommends: bigthing

Package: bigthing
Version: 1

Package: tool
Version: 1
Priority: optional
Recommends: missing | helper, base, broken

Package: site-tool
Version: 1
Archive: http://apt.acme.test/acme
Depends: tool
Recommends: site-extra

Package: site-extra
Version: 1
Archive: http://apt.acme.test/acme
Recommends: helper

Package: helper
Version: 1
Depends: libhelper

Package: libhelper
Version: 1

Package: broken
Version: 1
Depends: nosuchlib
`
	o := ResolveOptions{Suite: "bookworm", Archive: "http://archive.test/debian", Include: []string{"site-tool"}}
	// debootstrap's roots never bring their Recommends; apt-get
	// install's do, and those of what they bring, but a Recommends that
	// cannot be installed is let go.
	check(t, resolve(t, u, o), "apt=2.6.1 base=1 helper=1 libhelper=1 site-extra=1 site-tool=1 tool=1")
	o.NoRecommends = true
	check(t, resolve(t, u, o), "apt=2.6.1 base=1 site-tool=1 tool=1")
	// A bootstrapped --include follows debootstrap: no Recommends.
	o = ResolveOptions{Suite: "bookworm", Archive: "http://archive.test/debian", Include: []string{"tool"}}
	check(t, resolve(t, u, o), "apt=2.6.1 base=1 tool=1")
}

// TestResolveUpgradeRecommends: dist-upgrade follows the Recommends of
// what it newly installs and those new in an upgraded version, as apt's
// MarkInstall does, and a late --include meets no dependency of the
// upgrade.
func TestResolveUpgradeRecommends(t *testing.T) {
	const u = `
Package: base
Version: 1
Priority: required
Recommends: oldrec

Package: base
Version: 2
Suite: bookworm-updates
Depends: newdep, a | site-tool
Recommends: oldrec, newrec

Package: newdep
Version: 1
Suite: bookworm-updates
Recommends: deprec

Package: oldrec
Version: 1

Package: newrec
Version: 1

Package: deprec
Version: 1

Package: a
Version: 1

Package: site-tool
Version: 1
Archive: http://apt.acme.test/acme
`
	o := ResolveOptions{Suite: "bookworm", Archive: "http://archive.test/debian", Include: []string{"site-tool"}}
	check(t, resolve(t, u, o), "a=1 apt=2.6.1 base=2 deprec=1 newdep=1 newrec=1 site-tool=1")
	o.NoRecommends = true
	check(t, resolve(t, u, o), "a=1 apt=2.6.1 base=2 newdep=1 site-tool=1")
}

func TestResolveExcludeDependency(t *testing.T) {
	// bookworm: debootstrap requires usr-is-merged and never follows
	// init-system-helpers' first alternative, usrmerge.
	const u = `
Package: init-system-helpers
Version: 1.65
Priority: required
Depends: usrmerge | usr-is-merged

Package: usrmerge
Version: 35
Depends: perl

Package: perl
Version: 5.36

Package: usr-is-merged
Version: 35
`
	check(t, resolve(t, u, ResolveOptions{Required: []string{"usr-is-merged"}, ExcludeDependency: []string{"usrmerge"}}),
		"apt=2.6.1 init-system-helpers=1.65 usr-is-merged=35")
	check(t, resolve(t, u, ResolveOptions{Required: []string{"usr-is-merged"}}),
		"apt=2.6.1 init-system-helpers=1.65 perl=5.36 usr-is-merged=35 usrmerge=35")
	// apt still installs an excluded dependency when nothing else
	// satisfies the relation.
	check(t, resolve(t, u, ResolveOptions{ExcludeDependency: []string{"usrmerge"}}),
		"apt=2.6.1 init-system-helpers=1.65 perl=5.36 usrmerge=35")
}

func TestResolveUnsatisfiable(t *testing.T) {
	const u = `
Package: apt
Version: 2.6.1
Priority: important
Depends: libapt-pkg6.0

Package: libapt-pkg6.0
Version: 2.6.1
Depends: libzstd1, libfoo (>= 2)

Package: libzstd1
Version: 1.5.4

Package: libfoo
Version: 1.0
`
	_, err := tryResolve(t, u, ResolveOptions{})
	checkError(t, err, "apt → libapt-pkg6.0 depends on libfoo (>= 2), but bookworm has libfoo 1.0")

	_, err = tryResolve(t, strings.Replace(u, "libfoo (>= 2)", "libbar | libbaz (>= 1)", 1), ResolveOptions{})
	checkError(t, err, "apt → libapt-pkg6.0 depends on libbar | libbaz (>= 1), but no suite has libbar and no suite has libbaz")

	_, err = tryResolve(t, u+`
Package: libfoo
Version: 1.5
Suite: bookworm-security
`, ResolveOptions{})
	checkError(t, err, "apt → libapt-pkg6.0 depends on libfoo (>= 2), but bookworm-security has libfoo 1.5")

	_, err = Resolve(universe(t, u), ResolveOptions{})
	checkError(t, err, "resolve: no architecture")
}

func TestResolveCycle(t *testing.T) {
	check(t, resolve(t, `
Package: a
Version: 1
Priority: required
Depends: b

Package: b
Version: 1
Pre-Depends: a
Depends: c

Package: c
Version: 1
Depends: b | a
`, ResolveOptions{}), "a=1 apt=2.6.1 b=1 c=1")
}

func TestResolveDeterministic(t *testing.T) {
	u := universe(t, `
Package: base
Version: 1
Priority: required
Depends: awk, mail-reader | mutt, libc6

Package: base
Version: 2
Priority: required
Suite: bookworm-security
Depends: awk, mail-reader | mutt, libc6, c-shell

Package: base
Version: 2
Priority: required
Suite: bookworm-updates
Depends: awk, mail-reader | mutt, libc6, c-shell

Package: mawk
Version: 1.3.4
Provides: awk

Package: gawk
Version: 5.2
Provides: awk

Package: original-awk
Version: 2012
Provides: awk

Package: mutt
Version: 2.2
Provides: mail-reader

Package: neomutt
Version: 2.2
Provides: mail-reader

Package: csh
Version: 1
Provides: c-shell

Package: tcsh
Version: 1
Provides: c-shell

Package: libc6
Version: 2.36

Package: libc6
Version: 2.36
Architecture: all
Suite: bookworm-updates

Package: libc6
Version: 2.36
Suite: bookworm-security
`)
	key := func(pkgs []*Package) string {
		var words []string
		for _, p := range pkgs {
			words = append(words, p.Name+"="+p.Version.String()+"@"+p.Suite+"/"+p.Architecture)
		}
		return strings.Join(words, " ")
	}
	pkgs, err := Resolve(u, ResolveOptions{Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	want := key(pkgs) // before shuffling: pkgs points into u
	rng := rand.New(rand.NewSource(1))
	for range 50 {
		rng.Shuffle(len(u), func(i, j int) { u[i], u[j] = u[j], u[i] })
		got, err := Resolve(u, ResolveOptions{Arch: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		if key(got) != want {
			t.Fatalf("order changed the result:\ngot  %s\nwant %s", key(got), want)
		}
	}
	check(t, want, "apt=2.6.1@bookworm/amd64 base=2@bookworm-security/amd64 csh=1@bookworm/amd64 gawk=5.2@bookworm/amd64 libc6=2.36@bookworm/amd64 mutt=2.2@bookworm/amd64")
}

func TestNewPlan(t *testing.T) {
	u := universe(t, `
Package: libc6
Version: 2.36-9
Source: glibc

Package: bash
Version: 5.2.15-2+b2
Essential: yes
Priority: required
`)
	pkgs := []*Package{&u[0], &u[1]}
	u[0].SourceVersion = "2.36-9"
	epoch := time.Date(2024, 5, 1, 2, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	s := NewPlan(pkgs, ResolveOptions{Suite: "bookworm", Arch: "amd64"}, epoch)
	if s.Suite != "bookworm" || s.Arch != "amd64" || !s.Epoch.Equal(epoch) {
		t.Errorf("plan header = %q %q %v", s.Suite, s.Arch, s.Epoch)
	}
	want := []plan.Package{
		{Name: "bash", Version: "5.2.15-2+b2", Architecture: "amd64", Source: "bash", SourceVersion: "5.2.15-2+b2",
			URL: "http://archive.test/debian/pool/main/bash_5.2.15-2+b2_amd64.deb", Size: 4, SHA256: strings.Repeat("0", 64),
			Priority: "required", Essential: true, Required: true, Why: "required"},
		{Name: "libc6", Version: "2.36-9", Architecture: "amd64", Source: "glibc", SourceVersion: "2.36-9",
			URL: "http://archive.test/debian/pool/main/libc6_2.36-9_amd64.deb", Size: 5, SHA256: strings.Repeat("0", 64)},
	}
	if !slices.Equal(s.Packages, want) {
		t.Errorf("packages\ngot  %+v\nwant %+v", s.Packages, want)
	}
}

// Only Debian's archive makes a package Debian's in the audit trail: an
// extra repository whose Release says "Origin: Debian" is recorded by
// its URL, though pins still see the Origin it claims.
func TestNewPlanOrigin(t *testing.T) {
	u := universe(t, `
Package: libc6
Version: 2.36-9

Package: evil
Version: 1.0
Archive: http://evil.test/debian

Package: hello
Version: 2.10
Archive: http://acme.test/debian
Origin: Acme
`)
	s := NewPlan([]*Package{&u[0], &u[1], &u[2]}, ResolveOptions{Suite: "bookworm", Arch: "amd64"}, time.Time{})
	got := map[string]string{}
	for _, d := range s.Packages {
		got[d.Name] = d.Origin
	}
	if want := map[string]string{"libc6": "", "evil": "http://evil.test/debian", "hello": "Acme"}; !maps.Equal(got, want) {
		t.Errorf("origins %q, want %q", got, want)
	}
	prefs, err := ParsePreferences(strings.NewReader("Package: *\nPin: release o=Debian\nPin-Priority: 990\n"), "prefs")
	if err != nil {
		t.Fatal(err)
	}
	if got := NewPolicy(prefs, "amd64").FilePriority(u[1].Index); got != 990 {
		t.Errorf("o=Debian pin on the repository claiming Debian: priority %d, want 990", got)
	}
}

// debootstrap's $required: the Priority: required packages and the extra
// roots, and the first alternative of each of their Pre-Depends and
// Depends, by name, within the set.
func TestNewPlanRequired(t *testing.T) {
	u := universe(t, `
Package: a
Version: 1
Priority: required
Depends: b (>= 1) | d, virtual, c:any

Package: b
Version: 1
Pre-Depends: e

Package: c
Version: 1

Package: d
Version: 1

Package: e
Version: 1

Package: usr-is-merged
Version: 1

Package: f
Version: 1
Depends: a
`)
	var pkgs []*Package
	for i := range u {
		if u[i].Name != "apt" {
			pkgs = append(pkgs, &u[i])
		}
	}
	s := NewPlan(pkgs, ResolveOptions{Suite: "bookworm", Arch: "amd64", Required: []string{"usr-is-merged"}}, time.Time{})
	var got []string
	for _, p := range s.Packages {
		if p.Required {
			got = append(got, p.Name)
		}
	}
	if want := []string{"a", "b", "c", "e", "usr-is-merged"}; !slices.Equal(got, want) {
		t.Errorf("required %q, want %q", got, want)
	}
}

// Each package of a plan says why it is there: its root's reason, or the
// first package that pulls it in, by Depends before Recommends.
func TestReasons(t *testing.T) {
	u := universe(t, `
Package: base-files
Version: 1
Priority: required
Essential: yes

Package: bash
Version: 1
Essential: yes
Pre-Depends: libtinfo6

Package: libtinfo6
Version: 1

Package: apt
Version: 1
Depends: gpgv | gpgv2, libapt-pkg6.0, mail-transport-agent
Recommends: ca-certificates

Package: gpgv
Version: 1

Package: libapt-pkg6.0
Version: 1
Depends: libtinfo6

Package: postfix
Version: 1
Provides: mail-transport-agent

Package: ca-certificates
Version: 1
Depends: openssl

Package: openssl
Version: 1

Package: curl
Version: 1
Depends: libapt-pkg6.0

Package: stray
Version: 1
`)
	var pkgs []*Package
	for i := range u {
		pkgs = append(pkgs, &u[i])
	}
	slices.SortFunc(pkgs, func(a, b *Package) int { return strings.Compare(a.Name, b.Name) })
	p := NewPlan(pkgs, ResolveOptions{Arch: "amd64", Include: []string{"curl"}}, time.Time{})
	var got []string
	for _, d := range p.Packages {
		got = append(got, d.Name+": "+d.Why)
	}
	want := []string{
		"apt: base", "base-files: required", "bash: essential", "ca-certificates: recommends apt",
		"curl: include", "gpgv: depends apt", "libapt-pkg6.0: depends apt", "libtinfo6: pre-depends bash",
		"openssl: depends ca-certificates", "postfix: depends apt", "stray: ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("why\ngot  %q\nwant %q", got, want)
	}
}

// Upgrades lists what apt list --upgradable would: the candidate where it
// is newer than the installed version, the installed version competing
// with the status file's priority even where no index lists it.
func TestUpgrades(t *testing.T) {
	u := universe(t, `
Package: libc6
Version: 2.36-9

Package: libc6
Version: 2.36-9+deb12u4
Suite: bookworm-security

Package: bash
Version: 5.2.15-2

Package: tzdata
Version: 2024a-0+deb12u1
Architecture: all

Package: gone
Version: 2
`)
	installed := []Installed{
		{"libc6", "2.36-9+deb12u3", "amd64"}, // no index has it: upgraded
		{"bash", "5.2.15-2", "amd64"},        // up to date
		{"tzdata", "2023c-5", "all"},         // upgraded
		{"gone", "3", "amd64"},               // newer than any index: kept
		{"local", "1.0", "amd64"},            // in no index at all: kept
	}
	ups, err := Upgrades(u, installed, nil, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, up := range ups {
		got = append(got, up.Installed.Name+" "+up.Installed.Version+" -> "+up.Candidate.Version.String()+" "+up.Candidate.Suite)
	}
	want := []string{"libc6 2.36-9+deb12u3 -> 2.36-9+deb12u4 bookworm-security", "tzdata 2023c-5 -> 2024a-0+deb12u1 bookworm"}
	if !slices.Equal(got, want) {
		t.Errorf("upgrades\ngot  %q\nwant %q", got, want)
	}
	// A pin below the status file's priority keeps the installed version.
	prefs, err := ParsePreferences(strings.NewReader("Package: libc6\nPin: release a=bookworm-security\nPin-Priority: 50\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if ups, err := Upgrades(u, installed[:1], prefs, "amd64"); err != nil || len(ups) != 0 {
		t.Errorf("upgrades under a pin of 50: %v %+v", err, ups)
	}
	if _, err := Upgrades(u, []Installed{{"bash", "not a version!", "amd64"}}, nil, "amd64"); err == nil {
		t.Error("an installed version that does not parse was accepted")
	}
}

// Only resolves its roots and their Pre-Depends and Depends alone: no
// required or Essential package, no Recommends, the Skip packages' relations
// dropped, the NoDepends packages' own dependencies not followed.
func TestResolveOnly(t *testing.T) {
	u := `
Package: base-files
Version: 12.4
Priority: required
Essential: yes

Package: tzdata
Version: 2024a
Priority: required
Depends: debconf (>= 0.5) | debconf-2.0

Package: debconf
Version: 1.5.82
Priority: required
Pre-Depends: perl-base

Package: perl-base
Version: 5.36
Priority: required
Essential: yes

Package: libssl3
Version: 3.0.11
Priority: optional
Depends: libc6 (>= 2.34)
Recommends: openssl

Package: libc6
Version: 2.36
Priority: optional
Depends: libgcc-s1, tzdata-legacy | tzdata

Package: libgcc-s1
Version: 12.2
Priority: optional
Depends: libc6

Package: openssl
Version: 3.0.11
Priority: optional
Depends: libssl3

Package: ca-certificates
Version: 20230311
Priority: optional
Depends: openssl, debconf | debconf-2.0
`
	got := resolve(t, u, ResolveOptions{Only: []string{"tzdata", "ca-certificates"}, NoDepends: []string{"ca-certificates"}, Skip: []string{"debconf", "debconf-2.0"}})
	check(t, got, "ca-certificates=20230311 tzdata=2024a")
	got = resolve(t, u, ResolveOptions{Only: []string{"base-files"}, Include: []string{"libssl3"}, Skip: []string{"debconf", "debconf-2.0"}})
	check(t, got, "base-files=12.4 libc6=2.36 libgcc-s1=12.2 libssl3=3.0.11 tzdata=2024a")
	// A relation whose first alternative is outside Skip is met as usual;
	// one whose first is in Skip counts as met, as apt would pick it.
	got = resolve(t, u, ResolveOptions{Only: []string{"tzdata"}, Skip: []string{"debconf-2.0"}})
	check(t, got, "debconf=1.5.82 perl-base=5.36 tzdata=2024a")
	got = resolve(t, u, ResolveOptions{Only: []string{"tzdata"}, Skip: []string{"debconf"}})
	check(t, got, "tzdata=2024a")
	_, err := tryResolve(t, u, ResolveOptions{Only: []string{"nosuch"}})
	checkError(t, err, `package "nosuch" not found`)
}
