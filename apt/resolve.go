package apt

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/basebuild/basebuild/plan"
	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// ResolveOptions says which packages Resolve starts from.
type ResolveOptions struct {
	// Arch is the native architecture, e.g. "amd64". Packages of other
	// architectures (except "all") are ignored.
	Arch string

	// Suite is the suite debootstrap installs from, e.g. "bookworm". The
	// bootstrap step sees only that suite's packages, as debootstrap does;
	// the upgrade step sees all of them. Empty means the bootstrap step
	// sees the highest versions too.
	Suite string

	// Include names extra root packages (debootstrap --include).
	Include []string

	// Exclude removes names from the bootstrap roots (debootstrap
	// --exclude). As with debootstrap, an excluded package is still
	// installed when another package depends on it, and an Essential
	// package comes back anyway because apt-get dist-upgrade installs
	// every missing Essential package.
	Exclude []string

	// ExcludeDependency names packages the bootstrap step never follows
	// as dependencies (debootstrap's EXCLUDE_DEPENDENCY, e.g. "usrmerge"
	// for bookworm and later). apt still installs one if nothing else
	// satisfies a dependency on it.
	ExcludeDependency []string

	// Required names extra required roots (debootstrap adds
	// "usr-is-merged" for bookworm).
	Required []string

	// Archive, when set, is the archive root (Package.ArchiveURL) that
	// debootstrap reads Suite from. Other archives' packages, such as an
	// extra repository's that also calls its suite "bookworm", are seen
	// only by the upgrade step, as when their sources are added after
	// debootstrap.
	Archive string

	// Preferences are the apt pins the upgrade step honours; nil means
	// none.
	Preferences *Preferences

	// NoRecommends keeps the upgrade step from installing Recommends
	// (APT::Install-Recommends "false").
	NoRecommends bool

	// Only, when set, replaces both steps: these packages (and Include)
	// and the closure of their Pre-Depends and Depends, satisfied as the
	// upgrade step satisfies them but with no Recommends, no required or
	// Essential package and nothing installed before: a distroless
	// image's packages.
	Only []string
	// NoDepends names packages of Only installed without their
	// dependencies.
	NoDepends []string
	// Skip names packages never installed to meet a dependency: a
	// relation whose alternative apt would pick (the first that the
	// universe has) is in Skip counts as met, as "dpkg | install-info"
	// when dpkg is. Only with Only.
	Skip []string
}

// Resolve picks the packages of a minbase image from universe, the
// packages of all suites: what
//
//	debootstrap --variant=minbase SUITE
//	apt-get dist-upgrade   # with SUITE-updates and SUITE-security enabled
//
// installs. It works in the same two steps.
//
// The bootstrap step is debootstrap's resolve_deps. The roots are every
// Priority: required package, apt, opts.Required and opts.Include, minus
// opts.Exclude. Of each Pre-Depends and Depends relation it follows only
// the first alternative, by name alone (no version or architecture
// qualifier), and drops names that are not real packages, such as
// virtual ones.
//
// The upgrade step is apt. Every package is upgraded to its candidate,
// the version apt's policy picks (Policy.Candidate) under
// opts.Preferences: without pins, the highest version in any suite, as
// apt's default pinning gives every suite priority 500. The missing
// Essential packages are added, then the --include packages the bootstrap
// suite lacks (as apt-get install would, say from an extra repository,
// with what they and the packages they bring Recommend), and the
// Pre-Depends and Depends of each, by name, are satisfied as apt's
// MarkInstall does: depth first, in the order they are written, skipping
// those already satisfied, with the first candidate that can be
// installed. The candidates of a relation are its alternatives in order;
// for each, the real package of that name, then its providers by
// priority, then by name. (apt also prefers Essential providers, but
// those are all installed by then.) Versions, versioned and
// unversioned Provides, :any and :native qualifiers and [arch]
// restrictions are honoured.
//
// Conflicts and Breaks are ignored. Recommends are followed as apt does
// (see install), unless opts.NoRecommends; debootstrap's step follows
// none. The result points into
// universe, is sorted by name and does not depend on the order of
// universe.
func Resolve(universe []Package, opts ResolveOptions) ([]*Package, error) {
	if opts.Arch == "" {
		return nil, errors.New("resolve: no architecture")
	}
	native, err := dependency.ParseArch(opts.Arch)
	if err != nil {
		return nil, fmt.Errorf("architecture %q: %v", opts.Arch, err)
	}
	r := &resolver{
		native: *native,
		names:  make(map[string]*entry, len(universe)),
		sel:    make(map[string]*Package),
		parent: make(map[string]string),

		noRecommends: opts.NoRecommends,
	}
	entries := make([]entry, 0, len(universe))
	inSuite := false
	for i := range universe {
		p := &universe[i]
		if p.Architecture != opts.Arch && p.Architecture != "all" {
			continue
		}
		// apt treats Architecture: all as native, so one name is one
		// package whichever of the two it is built for.
		e := r.names[p.Name]
		if e == nil {
			entries = append(entries, entry{})
			e = &entries[len(entries)-1]
			r.names[p.Name] = e
		}
		e.all = append(e.all, p)
		if (opts.Suite == "" || p.Suite == opts.Suite) && (opts.Archive == "" || p.ArchiveURL == opts.Archive) {
			inSuite = true
			if e.base == nil || newer(p, e.base) {
				e.base = p
			}
		}
	}
	if !inSuite && opts.Suite != "" {
		return nil, fmt.Errorf("suite %q has no %s packages", opts.Suite, opts.Arch)
	}

	if opts.Only != nil {
		return r.only(entries, opts)
	}
	var required []*Package
	for _, e := range entries {
		if e.base != nil && e.base.Priority == "required" {
			required = append(required, e.base)
		}
	}
	boot, late, err := r.bootstrap(required, opts)
	if err != nil {
		return nil, err
	}

	// The candidates, now that the bootstrapped (installed) versions
	// are known.
	r.installed = make(map[string]*Package, len(boot))
	for _, name := range boot {
		r.installed[name] = r.base(name)
	}
	policy := NewPolicy(opts.Preferences, opts.Arch)
	var essential []*Package
	nprov := 0
	for i := range entries {
		e := &entries[i]
		e.best = e.candidate(policy, r.installed[e.all[0].Name] != nil)
		if e.best == nil {
			continue
		}
		if e.best.Essential {
			essential = append(essential, e.best)
		}
		nprov += len(e.best.Provides.Relations)
	}
	for _, name := range late {
		if r.best(name) == nil {
			return nil, fmt.Errorf("package %q: no version may be installed (its pins are below 1)", name)
		}
	}
	r.indexProviders(entries, nprov)

	if err := r.upgrade(boot, essential, late); err != nil {
		return nil, err
	}
	return r.selected(), nil
}

type resolver struct {
	native    dependency.Arch
	installed map[string]*Package   // the bootstrapped packages, by name
	names     map[string]*entry     // package name → its versions
	providers map[string][]provider // provided name → candidates providing it, by name
	sel       map[string]*Package
	parent    map[string]string // name → the package that pulled it in; "" for roots
	added     []string          // names selected by install, in order, for undoing

	noRecommends bool            // ResolveOptions.NoRecommends
	skip         map[string]bool // ResolveOptions.Skip
	noDepends    map[string]bool // ResolveOptions.NoDepends
}

// An entry holds the packages of one name: all of them, the one the
// bootstrap step sees, and apt's candidate.
type entry struct {
	all        []*Package
	base, best *Package
}

// candidate returns apt's candidate among e's packages under policy, the
// bootstrapped version being installed if installed is set, or nil when
// no version may be installed.
func (e *entry) candidate(policy *Policy, installed bool) *Package {
	versions := versionsOf(e.all)
	inst := -1
	if installed {
		inst = slices.IndexFunc(versions, func(files []*Package) bool { return slices.Contains(files, e.base) })
	}
	c := policy.Candidate(versions, inst)
	switch {
	case c >= 0:
		return versions[c][0]
	case inst >= 0:
		return e.base // apt keeps what is installed
	}
	return nil
}

// indexProviders records which candidates of entries provide which names
// (n of them, as a size hint), each name's providers by package name.
func (r *resolver) indexProviders(entries []entry, n int) {
	r.providers = make(map[string][]provider, n)
	for _, e := range entries {
		p := e.best
		if p == nil {
			continue
		}
		for _, rel := range p.Provides.Relations {
			for i := range rel.Possibilities {
				poss := &rel.Possibilities[i]
				r.providers[poss.Name] = append(r.providers[poss.Name], provider{p, poss.Version})
			}
		}
	}
	for _, pvs := range r.providers {
		// Stable: a package may provide a name twice, in its own order.
		slices.SortStableFunc(pvs, func(a, b provider) int { return strings.Compare(a.pkg.Name, b.pkg.Name) })
	}
}

func (r *resolver) best(name string) *Package {
	if e := r.names[name]; e != nil {
		return e.best
	}
	return nil
}

func (r *resolver) base(name string) *Package {
	if e := r.names[name]; e != nil {
		return e.base
	}
	return nil
}

// A provider is a candidate that Provides a name, at a version if the
// Provides is versioned ("foo (= 1.2)").
type provider struct {
	pkg     *Package
	version *dependency.VersionRelation
}

// newer reports whether p wins over q as a candidate. Equal versions in
// several suites are the same package; the tie-break only makes the
// choice independent of the universe's order.
func newer(p, q *Package) bool {
	if c := version.Compare(p.Version, q.Version); c != 0 {
		return c > 0
	}
	return cmp.Or(
		strings.Compare(p.Suite, q.Suite),
		strings.Compare(p.Component, q.Component),
		strings.Compare(p.Architecture, q.Architecture),
		strings.Compare(p.Filename, q.Filename),
		strings.Compare(p.SHA256, q.SHA256),
	) < 0
}

// bootstrap returns the names debootstrap would install, in a fixed
// order, recording who pulled in whom, and the names of opts.Include
// that the bootstrap suite lacks but another has, sorted, for the
// upgrade step.
func (r *resolver) bootstrap(required []*Package, opts ResolveOptions) (boot, late []string, err error) {
	var roots []string
	for _, p := range required {
		roots = append(roots, p.Name)
	}
	roots = append(roots, "apt")
	roots = append(roots, opts.Required...)
	for _, name := range opts.Include {
		if r.base(name) == nil && r.names[name] != nil {
			late = append(late, name)
		} else {
			roots = append(roots, name)
		}
	}
	excluded := func(name string) bool { return slices.Contains(opts.Exclude, name) }
	roots = slices.DeleteFunc(roots, excluded)
	late = slices.DeleteFunc(late, excluded)
	slices.Sort(roots)
	roots = slices.Compact(roots)
	slices.Sort(late)
	late = slices.Compact(late)

	seen := make(map[string]bool)
	for _, name := range roots {
		if r.base(name) == nil {
			return nil, nil, fmt.Errorf("package %q not found", name)
		}
		seen[name] = true
		r.parent[name] = ""
	}
	queue := roots
	for i := 0; i < len(queue); i++ {
		p := r.base(queue[i])
		for _, dep := range [...]*dependency.Dependency{&p.PreDepends, &p.Depends} {
			for _, rel := range dep.Relations {
				if len(rel.Possibilities) == 0 {
					continue
				}
				poss := rel.Possibilities[0]
				name := poss.Name
				if poss.Substvar || !r.archApplies(&poss) || seen[name] || r.base(name) == nil ||
					slices.Contains(opts.ExcludeDependency, name) {
					continue
				}
				seen[name] = true
				r.parent[name] = p.Name
				queue = append(queue, name)
			}
		}
	}
	return queue, late, nil
}

// upgrade upgrades the bootstrapped packages to their candidates and
// closes the set as apt-get dist-upgrade does, then installs late as
// apt-get install would after it.
func (r *resolver) upgrade(boot []string, essential []*Package, late []string) error {
	for _, name := range boot {
		r.sel[name] = r.best(name)
	}
	roots := slices.Clone(boot)
	slices.Sort(roots)
	slices.SortFunc(essential, func(a, b *Package) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range essential {
		if r.sel[p.Name] == nil {
			r.sel[p.Name] = p
			r.parent[p.Name] = ""
			roots = append(roots, p.Name)
		}
	}
	for _, name := range roots {
		if err := r.install(r.sel[name]); err != nil {
			return err
		}
	}
	// Then apt-get install of the late ones: selected only now, so that
	// none of them met a dependency of the upgrade.
	for _, name := range late {
		if r.sel[name] == nil {
			r.sel[name] = r.best(name)
			r.parent[name] = ""
		}
		if err := r.install(r.sel[name]); err != nil {
			return err
		}
	}
	return nil
}

// install satisfies the dependencies of p, which is already selected, as
// apt's MarkInstall does (installDeps), then its Recommends, as apt does
// by default: every one of a newly installed package; of an upgraded (or
// downgraded) one, those its bootstrapped version did not have; none of a
// package left at its bootstrapped version, which apt does not touch.
// Each Recommends not yet met takes the first of its candidates that can
// be installed; one that none can meet is let go.
func (r *resolver) install(p *Package) error {
	if err := r.installDeps(p); err != nil {
		return err
	}
	old := r.installed[p.Name]
	if r.noRecommends || old == p {
		return nil
	}
	for _, rel := range p.Recommends.Relations {
		poss := r.applicable(rel)
		if len(poss) == 0 || r.satisfied(poss) || (old != nil && recommends(old, poss[0].Name)) {
			continue
		}
		for _, c := range r.candidates(poss) {
			if r.try(c, p) == nil {
				break
			}
		}
	}
	return nil
}

// recommends reports whether p recommends name, in any alternative.
func recommends(p *Package, name string) bool {
	for _, rel := range p.Recommends.Relations {
		for _, poss := range rel.Possibilities {
			if poss.Name == name {
				return true
			}
		}
	}
	return false
}

// installDeps satisfies p's Pre-Depends and Depends as MarkInstall does:
// depth first, in the order the relations are written, skipping those
// already satisfied, and choosing the first of their candidates whose own
// dependencies can be met.
func (r *resolver) installDeps(p *Package) error {
	if r.noDepends[p.Name] {
		return nil
	}
	for kind, dep := range [...]*dependency.Dependency{&p.PreDepends, &p.Depends} {
		for _, rel := range dep.Relations {
			poss := r.applicable(rel)
			if len(poss) == 0 || r.skipped(poss) || r.satisfied(poss) {
				continue
			}
			cands := r.candidates(poss)
			if len(cands) == 0 {
				return r.unsatisfiable(p, kind, rel, poss)
			}
			// If the first cannot be installed, try the others, but
			// report why the first failed.
			err := r.try(cands[0], p)
			for i := 1; err != nil && i < len(cands); i++ {
				if r.try(cands[i], p) == nil {
					err = nil
				}
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// skipped reports whether the alternative of poss apt would pick, the
// first the universe has a candidate for, names a package of
// ResolveOptions.Skip (or every one does).
func (r *resolver) skipped(poss []dependency.Possibility) bool {
	if len(r.skip) == 0 {
		return false
	}
	for _, p := range poss {
		if r.skip[p.Name] {
			return true
		}
		if len(r.candidates([]dependency.Possibility{p})) > 0 {
			return false
		}
	}
	return false
}

// only resolves opts.Only (see ResolveOptions): every package at its
// candidate, their dependencies met as apt meets them, in the order the
// roots are given.
func (r *resolver) only(entries []entry, opts ResolveOptions) ([]*Package, error) {
	r.noRecommends = true
	r.installed = map[string]*Package{}
	r.skip = make(map[string]bool)
	for _, name := range opts.Skip {
		r.skip[name] = true
	}
	r.noDepends = make(map[string]bool)
	for _, name := range opts.NoDepends {
		r.noDepends[name] = true
	}
	policy := NewPolicy(opts.Preferences, opts.Arch)
	for i := range entries {
		entries[i].best = entries[i].candidate(policy, false)
	}
	r.indexProviders(entries, 0)
	roots := slices.Concat(opts.Only, opts.Include)
	for _, name := range roots {
		if r.names[name] == nil {
			return nil, fmt.Errorf("package %q not found", name)
		}
		if r.best(name) == nil {
			return nil, fmt.Errorf("package %q: no version may be installed (its pins are below 1)", name)
		}
	}
	if err := r.upgrade(nil, nil, roots); err != nil {
		return nil, err
	}
	return r.selected(), nil
}

// selected returns the selected packages, sorted by name.
func (r *resolver) selected() []*Package {
	out := make([]*Package, 0, len(r.sel))
	for _, p := range r.sel {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Package) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// try selects c for by and installs it. If c cannot be installed, try
// undoes what it selected, so that the caller can try the next candidate
// as apt does.
func (r *resolver) try(c, by *Package) error {
	mark := len(r.added)
	r.sel[c.Name] = c
	r.parent[c.Name] = by.Name
	r.added = append(r.added, c.Name)
	err := r.install(c)
	if err != nil {
		for _, name := range r.added[mark:] {
			delete(r.sel, name)
			delete(r.parent, name)
		}
		r.added = r.added[:mark]
	}
	return err
}

// archApplies reports whether poss applies on the native architecture,
// given its [arch] restriction.
func (r *resolver) archApplies(poss *dependency.Possibility) bool {
	return poss.Architectures == nil || poss.Architectures.Matches(&r.native)
}

// applicable returns the possibilities of rel that apply on the native
// architecture.
func (r *resolver) applicable(rel dependency.Relation) []dependency.Possibility {
	poss := make([]dependency.Possibility, 0, len(rel.Possibilities))
	for _, p := range rel.Possibilities {
		if !p.Substvar && r.archApplies(&p) {
			poss = append(poss, p)
		}
	}
	return poss
}

// archMatches reports whether p meets the architecture qualifier q of a
// dependency. Every candidate is native or "all", which apt treats as
// native; ":any" asks for a Multi-Arch: allowed package.
func (r *resolver) archMatches(q *dependency.Arch, p *Package) bool {
	switch {
	case q == nil, q.CPU == "native":
		return true
	case *q == dependency.Any:
		return p.MultiArch == "allowed"
	default:
		return *q == r.native
	}
}

// is reports whether p, under its own name, satisfies poss.
func (r *resolver) is(poss *dependency.Possibility, p *Package) bool {
	return p != nil && r.archMatches(poss.Arch, p) &&
		(poss.Version == nil || poss.Version.SatisfiedBy(p.Version))
}

// provides reports whether pv satisfies poss. A versioned dependency
// needs a versioned Provides.
func (r *resolver) provides(poss *dependency.Possibility, pv provider) bool {
	if !r.archMatches(poss.Arch, pv.pkg) {
		return false
	}
	if poss.Version == nil {
		return true
	}
	if pv.version == nil || pv.version.Operator != "=" {
		return false
	}
	v, err := version.Parse(pv.version.Number)
	return err == nil && poss.Version.SatisfiedBy(v)
}

// satisfied reports whether a selected package satisfies one of poss.
func (r *resolver) satisfied(poss []dependency.Possibility) bool {
	for i := range poss {
		if r.is(&poss[i], r.sel[poss[i].Name]) {
			return true
		}
	}
	for i := range poss {
		for _, pv := range r.providers[poss[i].Name] {
			if r.sel[pv.pkg.Name] == pv.pkg && r.provides(&poss[i], pv) {
				return true
			}
		}
	}
	return false
}

// candidates returns the packages that would satisfy one of poss, most
// preferred first, without duplicates.
func (r *resolver) candidates(poss []dependency.Possibility) []*Package {
	var out []*Package
	for i := range poss {
		if p := r.best(poss[i].Name); r.is(&poss[i], p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
		var pvs []*Package
		for _, pv := range r.providers[poss[i].Name] {
			if pv.pkg.Name != poss[i].Name && r.provides(&poss[i], pv) && !slices.Contains(out, pv.pkg) {
				pvs = append(pvs, pv.pkg)
			}
		}
		slices.SortStableFunc(pvs, func(a, b *Package) int {
			return priorityRank(a.Priority) - priorityRank(b.Priority)
		})
		out = append(out, pvs...)
	}
	return out
}

func priorityRank(p string) int {
	switch p {
	case "required":
		return 0
	case "important":
		return 1
	case "standard":
		return 2
	case "optional":
		return 3
	case "extra":
		return 4
	}
	return 5
}

// unsatisfiable describes why p's relation rel cannot be met, with the
// chain of packages from the root that pulled p in.
func (r *resolver) unsatisfiable(p *Package, kind int, rel dependency.Relation, poss []dependency.Possibility) error {
	var chain []string
	for name := p.Name; ; {
		chain = append(chain, name)
		up, ok := r.parent[name]
		if !ok || up == "" || slices.Contains(chain, up) {
			break
		}
		name = up
	}
	slices.Reverse(chain)
	verb := "depends on"
	if kind == 0 {
		verb = "pre-depends on"
	}
	var why []string
	for i := range poss {
		if s := r.why(&poss[i]); !slices.Contains(why, s) {
			why = append(why, s)
		}
	}
	return fmt.Errorf("%s %s %s, but %s", strings.Join(chain, " → "), verb, rel, strings.Join(why, " and "))
}

// why says what the suites offer for poss.
func (r *resolver) why(poss *dependency.Possibility) string {
	if p := r.best(poss.Name); p != nil {
		s := fmt.Sprintf("%s has %s %s", p.Suite, p.Name, p.Version)
		if poss.Arch != nil && !r.archMatches(poss.Arch, p) {
			if *poss.Arch == dependency.Any {
				s += ", which is not Multi-Arch: allowed"
			} else {
				s += " for " + p.Architecture
			}
		}
		return s
	}
	var have []string
	for _, pv := range r.providers[poss.Name] {
		s := fmt.Sprintf("%s has %s %s providing %s", pv.pkg.Suite, pv.pkg.Name, pv.pkg.Version, poss.Name)
		if pv.version != nil {
			s += " " + pv.version.String()
		}
		have = append(have, s)
	}
	if len(have) > 0 {
		return strings.Join(have, " and ")
	}
	return "no suite has " + poss.Name
}

// NewPlan returns the plan of pkgs, as Resolve returned them under opts,
// with the given epoch. It marks the packages of debootstrap's $required,
// which its first stage extracts: the Priority: required ones and
// opts.Required and, following only the first alternative of each
// Pre-Depends and Depends by name, what they depend on, within pkgs.
func NewPlan(pkgs []*Package, opts ResolveOptions, epoch time.Time) *plan.Plan {
	s := &plan.Plan{Suite: opts.Suite, Arch: opts.Arch, Epoch: epoch.UTC(), Packages: make([]plan.Package, 0, len(pkgs))}
	required := requiredSet(pkgs, opts.Required)
	why := reasons(pkgs, opts)
	for _, p := range pkgs {
		d := plan.Package{
			Name:          p.Name,
			Version:       p.Version.String(),
			Architecture:  p.Architecture,
			Source:        cmp.Or(p.Source, p.Name),
			SourceVersion: p.SourceVersion,
			URL:           p.URL(),
			Size:          p.Size,
			SHA256:        p.SHA256,
			Priority:      p.Priority,
			Essential:     p.Essential,
			Required:      required[p.Name],
			Why:           why[p.Name],
		}
		if d.SourceVersion == "" {
			d.SourceVersion = d.Version
		}
		// Whose it is: Debian's if Debian's archive served it; else
		// the Release's Origin, else its Label, else the host serving
		// it (a repository made with apt-ftparchive may say neither),
		// but never Debian, whatever the Release says: then the
		// repository's URL.
		if p.Index != nil && !p.Index.Debian {
			d.Origin = cmp.Or(p.Index.Origin, p.Index.Label, p.Index.Site)
			if strings.EqualFold(d.Origin, "debian") {
				d.Origin = p.ArchiveURL
			}
		}
		s.Packages = append(s.Packages, d)
	}
	slices.SortFunc(s.Packages, func(a, b plan.Package) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// requiredSet returns the names of pkgs in debootstrap's $required (see
// NewPlan). It reads the installed versions' dependencies, as the first
// stage reads those of the debs it extracts.
func requiredSet(pkgs []*Package, extra []string) map[string]bool {
	byName := make(map[string]*Package, len(pkgs))
	for _, p := range pkgs {
		byName[p.Name] = p
	}
	required := map[string]bool{}
	var todo []*Package
	for _, p := range pkgs {
		if p.Priority == "required" || slices.Contains(extra, p.Name) {
			required[p.Name] = true
			todo = append(todo, p)
		}
	}
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, dep := range [...]*dependency.Dependency{&p.PreDepends, &p.Depends} {
			for _, rel := range dep.Relations {
				if len(rel.Possibilities) == 0 {
					continue
				}
				if q := byName[rel.Possibilities[0].Name]; q != nil && !required[q.Name] {
					required[q.Name] = true
					todo = append(todo, q)
				}
			}
		}
	}
	return required
}

// reasons returns why each of pkgs is in the set (see plan.Package.Why).
// The roots are the --include packages, the required ones, debootstrap's
// base and the Essential ones (or opts.Only's, "distroless"); from them, breadth first and by name, each
// package's Pre-Depends and Depends (every alternative and provider in
// the set) reach the packages not reached yet, and only when nothing more
// is reached that way do Recommends reach further.
func reasons(pkgs []*Package, opts ResolveOptions) map[string]string {
	byName := make(map[string]*Package, len(pkgs))
	providers := map[string][]string{}
	for _, p := range pkgs {
		byName[p.Name] = p
		for _, rel := range p.Provides.Relations {
			for _, poss := range rel.Possibilities {
				providers[poss.Name] = append(providers[poss.Name], p.Name)
			}
		}
	}
	why := map[string]string{}
	var queue []string
	reach := func(name, reason string) {
		if _, ok := why[name]; !ok && byName[name] != nil {
			why[name] = reason
			queue = append(queue, name)
		}
	}
	for _, p := range pkgs { // sorted by name
		switch {
		case slices.Contains(opts.Include, p.Name):
			reach(p.Name, "include")
		case opts.Only != nil: // nothing else is a root
			if slices.Contains(opts.Only, p.Name) {
				reach(p.Name, "distroless")
			}
		case p.Priority == "required" || slices.Contains(opts.Required, p.Name):
			reach(p.Name, "required")
		case p.Name == "apt":
			reach(p.Name, "base")
		case p.Essential:
			reach(p.Name, "essential")
		}
	}
	follow := func(p *Package, kind string, dep *dependency.Dependency) {
		for _, rel := range dep.Relations {
			for _, poss := range rel.Possibilities {
				reach(poss.Name, kind+" "+p.Name)
				for _, name := range providers[poss.Name] {
					reach(name, kind+" "+p.Name)
				}
			}
		}
	}
	for done := 0; ; {
		for ; done < len(queue); done++ {
			p := byName[queue[done]]
			follow(p, "pre-depends", &p.PreDepends)
			follow(p, "depends", &p.Depends)
		}
		before := len(queue)
		for _, name := range queue {
			p := byName[name]
			follow(p, "recommends", &p.Recommends)
		}
		if len(queue) == before {
			break
		}
	}
	return why
}
