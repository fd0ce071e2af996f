package pipeline

import (
	"cmp"
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/plan"
)

// An Update is one installed package with a newer candidate.
type Update struct {
	Name         string `json:"name"`
	Architecture string `json:"architecture"`
	Installed    string `json:"installed"`
	Candidate    string `json:"candidate"`
	Source       string `json:"source"`
	Suite        string `json:"suite"`    // the candidate's
	Security     bool   `json:"security"` // the candidate is from the security suite
}

// Outdated is what apt in an image would upgrade: each package, and how
// the set would move, with the changelogs and CVEs between the versions.
type Outdated struct {
	Updates []Update      `json:"updates"`
	Review  *audit.Review `json:"review"`
}

// CheckOutdated returns the packages of installed, an image's, that apt
// would upgrade from the suites and sources o describes (the image's), as
// `apt list --upgradable` after `apt-get update` would, under o's
// preferences: the Releases and indexes are fetched and verified as for
// a build, and the candidates' debs downloaded to read their changelogs.
func CheckOutdated(ctx context.Context, o *Options, c *apt.Client, installed []audit.Package) (*Outdated, error) {
	universe, err := readUniverse(ctx, o, c)
	if err != nil {
		return nil, err
	}
	var have []apt.Installed
	old := &plan.Plan{Suite: o.Suite, Arch: o.Arch}
	for _, p := range installed {
		have = append(have, apt.Installed{Name: p.Name, Version: p.Version, Architecture: p.Architecture})
		old.Packages = append(old.Packages, plan.Package{Name: p.Name, Version: p.Version, Architecture: p.Architecture,
			Source: cmp.Or(p.Source, p.Name), SourceVersion: cmp.Or(p.SourceVersion, p.Version)})
	}
	var prefs *apt.Preferences
	if o.Preferences != nil {
		prefs = o.Preferences.Prefs
	}
	ups, err := apt.Upgrades(universe, have, prefs, o.Arch)
	if err != nil {
		return nil, err
	}
	out := &Outdated{Updates: []Update{}}
	var cands []*apt.Package
	for _, up := range ups {
		cands = append(cands, up.Candidate)
	}
	// The candidates as a plan's packages: what a build would download.
	next := map[string]plan.Package{}
	for _, p := range apt.NewPlan(cands, apt.ResolveOptions{Suite: o.Suite, Arch: o.Arch}, old.Epoch).Packages {
		next[p.Name+":"+p.Architecture] = p
	}
	security := debian.SecuritySuite(o.Suite)
	for _, up := range ups {
		p := next[up.Installed.Name+":"+up.Installed.Architecture]
		out.Updates = append(out.Updates, Update{Name: p.Name, Architecture: p.Architecture, Installed: up.Installed.Version,
			Candidate: p.Version, Source: p.Source, Suite: up.Candidate.Suite, Security: up.Candidate.Suite == security})
	}
	updated := &plan.Plan{Suite: o.Suite, Arch: o.Arch}
	for _, p := range old.Packages {
		if q, ok := next[p.Name+":"+p.Architecture]; ok {
			p = q
		}
		updated.Packages = append(updated.Packages, p)
	}
	if out.Review, err = Review(ctx, o, c, old, updated); err != nil {
		return nil, fmt.Errorf("changelogs: %w", err)
	}
	return out, nil
}

// RecordedInputs returns the inputs an image records (see Inputs): its
// manifest's annotation, or, for an image built on top of one of
// basebuild's, its config's label, which the derived image inherits:
// without the package lines but from images of basebuild 0.2.0 and older
// (the derived image's dpkg status says its packages). "" when it
// records none.
func RecordedInputs(img v1.Image) (string, error) {
	in, err := ImageInputs(img)
	if err != nil || in != "" {
		return in, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	return cfg.Config.Labels[AnnotationInputs], nil
}

// RecordedPlan returns the packages an image's recorded inputs (the text
// Inputs writes) list: name, version, architecture and SHA-256 each.
func RecordedPlan(inputs string) *plan.Plan {
	_, p := parseInputs(inputs)
	return p
}

// InputKeys returns the inputs an image records (the text Inputs
// writes) by key, without the packages.
func InputKeys(inputs string) map[string]string {
	keys, _ := parseInputs(inputs)
	return keys
}
