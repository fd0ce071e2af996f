package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"pault.ag/go/debian/version"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
	"github.com/basebuild/basebuild/rootfs"
	"github.com/basebuild/basebuild/snapshots"
)

// The annotations that record what an image was built from: the
// canonical text of its inputs and that text's SHA-256. The config labels
// of the same names, which images built FROM it inherit, hold the
// fingerprint and the inputs but the package lines (see settings): short
// enough to read in docker inspect, and what outdated reads of a derived
// image, whose packages its dpkg status gives. Images of basebuild 0.2.0
// and older have all the inputs in the label too.
const (
	AnnotationInputs      = "org.basebuild.inputs"
	AnnotationFingerprint = "org.basebuild.fingerprint"
)

// Inputs returns the canonical text of everything that decides the image
// of set built as s says: basebuild's version, the suite, epoch and
// snapshot, every other field of s, and every package as
// "package NAME VERSION ARCH SHA256", one a line. Two builds with the same
// inputs make the same image. Its SHA-256 is the image's fingerprint.
func (s *Spec) Inputs(set *plan.Plan) string {
	var b strings.Builder
	b.WriteString(s.settings(set))
	for _, p := range set.Packages {
		fmt.Fprintf(&b, "package %s %s %s %s\n", p.Name, p.Version, p.Architecture, p.SHA256)
	}
	return b.String()
}

// settings is Inputs but the package lines: what decides the image of
// set but the packages.
func (s *Spec) settings(set *plan.Plan) string {
	o := s
	var b strings.Builder
	line := func(key, value string) { fmt.Fprintf(&b, "%s %s\n", key, value) }
	line("basebuild", Version)
	line("suite", o.Suite)
	line("arch", o.Arch)
	line("epoch", set.Epoch.UTC().Format(time.RFC3339))
	snapshot := "none"
	if !o.Snapshot.IsZero() {
		snapshot = snapshots.ID(o.Snapshot)
	}
	line("snapshot", snapshot)
	// --include's packages stay marked manual: a set of its own.
	line("include", strings.Join(sorted(o.Include), ","))
	line("exclude", strings.Join(sorted(o.Exclude), ","))
	line("merged-usr", fmt.Sprint(o.mergedUsr()))
	// Only a variant is recorded, so default images keep the fingerprint
	// they had before variants existed.
	if o.Variant != "" {
		line("variant", o.Variant)
	}
	if o.Nonroot {
		line("nonroot", "true")
	}
	line("compression", string(cmp.Or(o.Compression, oci.Gzip)))
	// Lines only when the flags are used, so that default images keep
	// their fingerprint; numbered, as their order matters.
	for i, l := range o.AptConf {
		line(fmt.Sprintf("apt-conf.%d", i+1), l)
	}
	for i, c := range o.Copies {
		line(fmt.Sprintf("copy.%d", i+1), c.Dst+" sha256:"+c.Digest(set.Epoch))
	}
	for i, h := range o.Customize {
		line(fmt.Sprintf("customize.%d", i+1), rootfs.HookDigest(h))
	}
	for i := range o.Repos {
		line(fmt.Sprintf("repo.%d", i+1), o.Repos[i].Line())
	}
	if p := o.Preferences; p != nil {
		line("apt-preferences", p.Path()+" sha256:"+p.Digest())
	}
	if len(o.AllowMissing) > 0 {
		line("allow-missing-suite", strings.Join(sorted(o.AllowMissing), ","))
	}
	if o.CustomizeNetwork {
		line("customize-network", "true")
	}
	return b.String()
}

// Fingerprint is the SHA-256 of inputs, "sha256:<hex>".
func Fingerprint(inputs string) string {
	sum := sha256.Sum256([]byte(inputs))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// inputAnnotations are the annotations that record the inputs of set.
func (s *Spec) inputAnnotations(set *plan.Plan) map[string]string {
	in := s.Inputs(set)
	return map[string]string{AnnotationInputs: in, AnnotationFingerprint: Fingerprint(in)}
}

// inputLabels are the config labels that replace those annotations'
// (see AnnotationInputs).
func (s *Spec) inputLabels(set *plan.Plan) map[string]string {
	return map[string]string{AnnotationInputs: s.settings(set)}
}

// InputChanges lists what changed from the inputs old to new: a package
// "added NAME VERSION", "removed NAME VERSION" or "upgraded NAME OLD -> NEW"
// (or "rebuilt" when only its content changed), and for any other input
// "KEY OLD -> NEW".
func InputChanges(old, new string) []string {
	oldKeys, oldPlan := parseInputs(old)
	newKeys, newPlan := parseInputs(new)
	var changes []string
	for _, k := range unionKeys(oldKeys, newKeys) {
		if o, n := oldKeys[k], newKeys[k]; o != n {
			changes = append(changes, fmt.Sprintf("%s %s -> %s", k, cmp.Or(o, "(none)"), cmp.Or(n, "(none)")))
		}
	}
	// The packages' changes in name order, whatever their kind.
	type line struct{ name, text string }
	var lines []line
	d := plan.Diff(oldPlan, newPlan)
	for _, p := range d.Added {
		lines = append(lines, line{p.Name, "added " + p.Name + " " + p.Version})
	}
	for _, p := range d.Removed {
		lines = append(lines, line{p.Name, "removed " + p.Name + " " + p.Version})
	}
	for _, c := range d.Changed {
		o, n := c.From, c.To
		if o.Version == n.Version {
			lines = append(lines, line{n.Name, fmt.Sprintf("rebuilt %s %s (%s)", n.Name, n.Version, n.Architecture)})
			continue
		}
		verb := "upgraded"
		if downgrade(o.Version, n.Version) {
			verb = "downgraded"
		}
		lines = append(lines, line{n.Name, fmt.Sprintf("%s %s %s -> %s", verb, n.Name, o.Version, n.Version)})
	}
	slices.SortStableFunc(lines, func(a, b line) int { return strings.Compare(a.name, b.name) })
	for _, l := range lines {
		changes = append(changes, l.text)
	}
	return changes
}

// Downgrades lists what an image built from the inputs new would roll back
// against one built from old: "epoch OLD -> NEW" if the epoch is earlier,
// and "NAME OLD -> NEW" for each package whose version compares lower (as
// dpkg compares them). A rollback of security updates is among them.
func Downgrades(old, new string) []string {
	oldKeys, oldPlan := parseInputs(old)
	newKeys, newPlan := parseInputs(new)
	var downs []string
	o, erro := time.Parse(time.RFC3339, oldKeys["epoch"])
	n, errn := time.Parse(time.RFC3339, newKeys["epoch"])
	if erro == nil && errn == nil && n.Before(o) {
		downs = append(downs, fmt.Sprintf("epoch %s -> %s", oldKeys["epoch"], newKeys["epoch"]))
	}
	for _, c := range plan.Diff(oldPlan, newPlan).Changed {
		if downgrade(c.From.Version, c.To.Version) {
			downs = append(downs, fmt.Sprintf("%s %s -> %s", c.To.Name, c.From.Version, c.To.Version))
		}
	}
	return downs
}

// downgrade reports whether version b is older than a.
func downgrade(a, b string) bool {
	va, erra := version.Parse(a)
	vb, errb := version.Parse(b)
	return erra == nil && errb == nil && version.Compare(vb, va) < 0
}

// parseInputs splits the text Inputs writes into its keys and a plan of
// its packages (name, version, architecture and SHA-256).
func parseInputs(text string) (map[string]string, *plan.Plan) {
	keys := map[string]string{}
	p := &plan.Plan{}
	for l := range strings.Lines(text) {
		key, value, _ := strings.Cut(strings.TrimSuffix(l, "\n"), " ")
		if key != "package" {
			keys[key] = value
			continue
		}
		f := strings.Fields(value)
		for len(f) < 4 {
			f = append(f, "")
		}
		p.Packages = append(p.Packages, plan.Package{Name: f[0], Version: f[1], Architecture: f[2], SHA256: f[3]})
	}
	return keys, p
}

func unionKeys[V any](a, b map[string]V) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// Resolve fetches and verifies the suites' Release files and returns the
// plan, downloading no package. The plan is remembered in the cache under
// the key of the Release files (the indexes' SHA-256s) and the options
// resolution depends on (see cache.Cache.Set). Resolution is a function of
// these, so while the mirror has not changed the plan is read back rather
// than worked out again from the indexes, which takes a second or more;
// --if-changed relies on it to answer quickly.
func Resolve(ctx context.Context, o *Options, c *apt.Client) (*plan.Plan, error) {
	return NewResolver().Resolve(ctx, o, c)
}

// ResolveArchs returns the plan of each of archs, as Resolve with that
// --arch alone does, reading each suite's Release once for all of them.
func ResolveArchs(ctx context.Context, o *Options, c *apt.Client, archs []string) ([]*plan.Plan, error) {
	return NewResolver().ResolveArchs(ctx, o, c, archs)
}

// A Resolver resolves the images of a run, each as Resolve does, reading
// each suite's Release once for all of them and resolving once the
// images that differ only by the slim variant, which resolution does not
// read.
type Resolver struct {
	rs    releases
	plans map[string]*plan.Plan // by the text of the Spec they resolve
}

// NewResolver returns a Resolver that has read nothing yet.
func NewResolver() *Resolver {
	return &Resolver{rs: releases{}, plans: map[string]*plan.Plan{}}
}

// Resolve is Resolve through r.
func (r *Resolver) Resolve(ctx context.Context, o *Options, c *apt.Client) (*plan.Plan, error) {
	s := o.Spec
	if s.Variant == VariantSlim {
		s.Variant = ""
	}
	key := s.resolveText()
	p, ok := r.plans[key]
	if !ok {
		var err error
		if p, err = resolve(ctx, o, c, r.rs); err != nil {
			return nil, err
		}
		r.plans[key] = p
	}
	shared := *p
	shared.Packages, shared.Releases = slices.Clone(p.Packages), slices.Clone(p.Releases)
	return &shared, nil
}

// ResolveArchs is ResolveArchs through r.
func (r *Resolver) ResolveArchs(ctx context.Context, o *Options, c *apt.Client, archs []string) ([]*plan.Plan, error) {
	plans := make([]*plan.Plan, len(archs))
	for i, arch := range archs {
		oa := *o
		oa.Arch = arch
		var err error
		if plans[i], err = r.Resolve(ctx, &oa, c); err != nil {
			return nil, err
		}
	}
	return plans, nil
}

// resolve is Resolve, reading the Releases through rs.
func resolve(ctx context.Context, o *Options, c *apt.Client, rs releases) (*plan.Plan, error) {
	defer o.phase("resolve", time.Now())
	o.progress(Event{Phase: PhaseResolve})
	archives, repos, rels, err := rs.read(ctx, o, c)
	if err != nil {
		return nil, err
	}
	// The indexes are verified against rels, so the plan is the key's
	// even if the mirror moves meanwhile.
	key := resolveKey(o, repos, rels)
	var p *plan.Plan
	if !c.Cache.Set(key, func(data []byte) (err error) {
		p, err = plan.Read(bytes.NewReader(data))
		return err
	}) {
		if p, err = resolveIndexes(ctx, o, c, archives, repos, rels); err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := plan.Write(&b, p); err != nil {
			o.logf("cache: %v", err)
		} else if err := c.Cache.PutSet(key, b.Bytes()); err != nil {
			o.logf("%v", err)
		}
	}
	// The Releases this build verified, recorded after caching: a plan
	// read back is of the same indexes, maybe from Releases signed since.
	for i, rel := range rels {
		if rel == nil {
			continue
		}
		r, err := releaseOf(repos[i], rel, o.Arch)
		if err != nil {
			return nil, err
		}
		p.Releases = append(p.Releases, r)
	}
	return p, nil
}

// releaseOf is the record of rel, the verified Release of repo: what
// verified it and the indexes of arch the build reads from it.
func releaseOf(repo apt.Repository, rel *apt.Release, arch string) (plan.Release, error) {
	r := plan.Release{URL: repo.URL, Suite: repo.Suite, Codename: rel.Codename, Date: rel.Date.UTC(), SHA256: rel.SHA256}
	keyring, err := apt.PublicKeyring(repo.Keyring)
	if err != nil {
		return r, fmt.Errorf("suite %q: keyring: %w", repo.Suite, err)
	}
	r.Keyring = fmt.Sprintf("%x", sha256.Sum256(keyring))
	indexes, err := rel.Indexes(repo, arch)
	if err != nil {
		return r, err
	}
	for _, ix := range indexes {
		r.Indexes = append(r.Indexes, plan.Index{Path: ix.Name, Size: ix.Size, SHA256: ix.SHA256})
	}
	return r, nil
}

// resolverRevision goes into the key of the resolved-set cache: bump it
// when Resolve's answer to the same indexes and options changes, so that
// sets an earlier build remembered are not read back (2: Recommends of the
// packages apt-get install adds; 3: Recommends as dist-upgrade follows
// them, late --include packages selected after the upgrade; 4: a
// package's origin from the repository that served it; 5: the key is
// derived from the Spec's canonical text; 6: the plan marks debootstrap's
// required packages; 7: and why each is there; 8: a distroless
// relation whose first alternative is script-only is met).
const resolverRevision = 8

// resolveText is the part of the resolved-set cache key that comes from
// s: the resolver's revision and s's canonical text without packages.
func (s *Spec) resolveText() string {
	text := fmt.Sprintf("resolver %d\n%s", resolverRevision, s.Inputs(&plan.Plan{Arch: s.Arch}))
	if s.Distroless() {
		// The tables a distroless set is resolved from.
		pkgs, _ := debian.DistrolessPackages(s.Variant, s.Suite)
		text += fmt.Sprintf("distroless %s\nscript-only %s\n", strings.Join(pkgs, ","), strings.Join(debian.ScriptOnlyPackages, ","))
	}
	return text
}

// resolveKey returns the hash of what resolution reads from repos'
// Releases, rels, and of o's Spec: its canonical text without packages,
// so that no setting can be left out of the key.
func resolveKey(o *Options, repos []apt.Repository, rels []*apt.Release) string {
	h := sha256.New()
	h.Write([]byte(o.resolveText()))
	for i, repo := range repos {
		rel := rels[i]
		fmt.Fprintf(h, "repository %s %s %s\n", repo.URL, repo.Suite, strings.Join(repo.Components, " "))
		if rel == nil {
			continue
		}
		// What the policy reads of the Release, and every variant of the
		// indexes Resolve may pick, in a fixed order.
		fmt.Fprintf(h, "release %s %s %s %q %q %q %v %v\n", rel.Codename, rel.Date.UTC().Format(time.RFC3339), strings.Join(rel.Architectures, ","),
			rel.Origin, rel.Label, rel.Version, rel.NotAutomatic, rel.ButAutomaticUpgrades)
		comps := repo.Components
		if len(comps) == 0 {
			comps = []string{"main"}
		}
		var names []string
		for name := range rel.Files {
			for _, comp := range comps {
				if strings.HasPrefix(name, comp+"/binary-"+o.Arch+"/Packages") {
					names = append(names, name)
				}
			}
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Fprintf(h, "index %s %s\n", name, rel.Files[name].SHA256)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
