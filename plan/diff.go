package plan

import (
	"cmp"
	"slices"
	"strings"
)

// Changes is how the packages of one plan differ from another's.
type Changes struct {
	Added   []Package `json:"added"`
	Removed []Package `json:"removed"`
	Changed []Change  `json:"changed"`
}

// Change is a package in both plans, with other values in the second.
type Change struct {
	From Package `json:"from"`
	To   Package `json:"to"`
}

// Diff returns how the packages of b differ from a's, each list sorted by
// name, then architecture. A package of one name and architecture in both
// is the same package; so is a name that each plan has once, whatever its
// architecture (a package that became Architecture: all has changed, not
// gone). It is changed when it is another package: another version,
// architecture, source, or deb (SHA-256); where it is fetched from
// (another snapshot's URL, say) and why it is there are not the package.
func Diff(a, b *Plan) *Changes {
	type key struct{ name, arch string }
	count := func(pkgs []Package) map[string]int {
		n := map[string]int{}
		for _, p := range pkgs {
			n[p.Name]++
		}
		return n
	}
	na, nb := count(a.Packages), count(b.Packages)
	keyOf := func(p Package) key {
		if na[p.Name] == 1 && nb[p.Name] == 1 {
			return key{name: p.Name}
		}
		return key{p.Name, p.Architecture}
	}
	inA := map[key]Package{}
	for _, p := range a.Packages {
		inA[keyOf(p)] = p
	}
	c := &Changes{Added: []Package{}, Removed: []Package{}, Changed: []Change{}}
	inB := map[key]bool{}
	for _, p := range b.Packages {
		k := keyOf(p)
		inB[k] = true
		old, ok := inA[k]
		switch {
		case !ok:
			c.Added = append(c.Added, p)
		case !old.same(p):
			c.Changed = append(c.Changed, Change{From: old, To: p})
		}
	}
	for _, p := range a.Packages {
		if !inB[keyOf(p)] {
			c.Removed = append(c.Removed, p)
		}
	}
	slices.SortFunc(c.Added, byName)
	slices.SortFunc(c.Removed, byName)
	slices.SortFunc(c.Changed, func(x, y Change) int { return byName(x.To, y.To) })
	return c
}

func byName(a, b Package) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Architecture, b.Architecture))
}

// same says whether p and q are the same package (see Diff).
func (p Package) same(q Package) bool {
	return p.Name == q.Name && p.Version == q.Version && p.Architecture == q.Architecture &&
		p.Source == q.Source && p.SourceVersion == q.SourceVersion && p.SHA256 == q.SHA256
}
