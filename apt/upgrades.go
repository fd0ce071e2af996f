package apt

import (
	"fmt"
	"slices"

	"pault.ag/go/debian/version"
)

// Installed is a package as dpkg's status in an image holds it.
type Installed struct {
	Name, Version, Architecture string
}

// An Upgrade is an installed package and the newer candidate apt would
// upgrade it to.
type Upgrade struct {
	Installed Installed
	Candidate *Package
}

// statusFile stands for dpkg's status file: the index of an installed
// version no Packages index lists any more.
var statusFile = &IndexFile{}

// Upgrades returns the installed packages that apt would upgrade from
// universe, the packages of the image's suites, under prefs (nil: none),
// as `apt list --upgradable` after `apt-get update` lists them: each
// package's candidate (see Policy.Candidate), the installed version
// competing with the status file's priority, when it is newer than the
// installed version. The result is in the order of installed.
func Upgrades(universe []Package, installed []Installed, prefs *Preferences, native string) ([]Upgrade, error) {
	type key struct{ name, arch string }
	byKey := map[key][]*Package{}
	for i := range universe {
		p := &universe[i]
		byKey[key{p.Name, p.Architecture}] = append(byKey[key{p.Name, p.Architecture}], p)
	}
	policy := NewPolicy(prefs, native)
	var ups []Upgrade
	for _, in := range installed {
		iv, err := version.Parse(in.Version)
		if err != nil {
			return nil, fmt.Errorf("package %s: version %q: %v", in.Name, in.Version, err)
		}
		versions := versionsOf(byKey[key{in.Name, in.Architecture}])
		inst := slices.IndexFunc(versions, func(files []*Package) bool { return version.Compare(files[0].Version, iv) == 0 })
		if inst < 0 {
			// Known from the status file alone: it takes its place in
			// the version order.
			inst = slices.IndexFunc(versions, func(files []*Package) bool { return version.Compare(files[0].Version, iv) < 0 })
			if inst < 0 {
				inst = len(versions)
			}
			status := &Package{Name: in.Name, Version: iv, Architecture: in.Architecture, Index: statusFile}
			versions = slices.Insert(versions, inst, []*Package{status})
		}
		if c := policy.Candidate(versions, inst); c >= 0 && version.Compare(versions[c][0].Version, iv) > 0 {
			ups = append(ups, Upgrade{Installed: in, Candidate: versions[c][0]})
		}
	}
	return ups, nil
}

// versionsOf groups pkgs, one package's stanzas, into its versions,
// highest first: one version is the same package (version and content)
// in one or more indexes.
func versionsOf(pkgs []*Package) [][]*Package {
	pkgs = slices.Clone(pkgs)
	slices.SortFunc(pkgs, func(p, q *Package) int {
		if newer(p, q) {
			return -1
		}
		return 1
	})
	var versions [][]*Package
	for _, p := range pkgs {
		n := len(versions)
		if n > 0 && versions[n-1][0].SHA256 == p.SHA256 && version.Compare(versions[n-1][0].Version, p.Version) == 0 {
			versions[n-1] = append(versions[n-1], p)
		} else {
			versions = append(versions, []*Package{p})
		}
	}
	return versions
}
