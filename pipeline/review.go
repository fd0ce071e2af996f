package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/debian/changelog"
	"github.com/basebuild/basebuild/plan"
)

// Review returns how the package set moved from old to new, by source
// package, with each source's changelog entries between its versions and
// the CVEs they name, read from its new debs: downloaded and verified
// through the cache, as a build's are. A source's changelog is read from
// the first of its binary packages in new that has one of its own, those
// that changed first; one that cannot be read is noted in the review.
func Review(ctx context.Context, o *Options, c *apt.Client, old, new *plan.Plan) (*audit.Review, error) {
	r := audit.NewReview(old, new)
	// The debs of the packages that moved (as plan.Diff has it: not those
	// only fetched from elsewhere) are downloaded anyway: a source's
	// changelog is read from them first.
	changes := plan.Diff(old, new)
	moved := map[plan.Package]bool{}
	for _, p := range changes.Added {
		moved[p] = true
	}
	for _, c := range changes.Changed {
		moved[c.To] = true
	}
	var fresh, kept []plan.Package
	for _, p := range new.Packages {
		if moved[p] {
			fresh = append(fresh, p)
		} else {
			kept = append(kept, p)
		}
	}
	bySource := map[string][]plan.Package{}
	for _, p := range slices.Concat(fresh, kept) {
		bySource[p.Source] = append(bySource[p.Source], p)
	}
	var paths map[string]string
	if len(fresh) > 0 {
		var err error
		if paths, err = fetch(ctx, o, c, &plan.Plan{Packages: fresh}); err != nil {
			return nil, err
		}
	}
	for i := range r.Sources {
		s := &r.Sources[i]
		if !s.WantsChangelog() {
			continue
		}
		entries, note, err := sourceChangelog(ctx, c, bySource[s.Source], paths)
		if err != nil {
			return nil, err
		}
		if note != "" {
			s.Note = note
		} else {
			s.SetChangelog(entries)
		}
	}
	return r, nil
}

// sourceChangelog returns the changelog of the first of pkgs, binary
// packages of one source, whose deb has one of its own (see
// changelog.FromDeb): paths has those downloaded, the others are
// downloaded as needed. When it has none, or one that cannot be read, the
// note says so; the error is a failed download.
func sourceChangelog(ctx context.Context, c *apt.Client, pkgs []plan.Package, paths map[string]string) (_ []changelog.Entry, note string, _ error) {
	for _, p := range pkgs {
		path, ok := paths[p.SHA256]
		if !ok {
			more, err := c.Download(ctx, []plan.Package{p}, 1, nil)
			if err != nil {
				return nil, "", err
			}
			path = more[p.SHA256]
		}
		entries, err := debChangelog(path, p.Name)
		switch {
		case errors.Is(err, changelog.ErrNotInDeb):
			continue
		case err != nil:
			return nil, fmt.Sprintf("changelog of %s %s: %v", p.Name, p.Version, err), nil
		}
		return entries, "", nil
	}
	return nil, "no changelog in its debs", nil
}

// debChangelog reads the changelog of the binary package name from its
// deb at path.
func debChangelog(path, name string) ([]changelog.Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return changelog.FromDeb(f, fi.Size(), name)
}
