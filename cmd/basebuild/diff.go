package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/audit"
)

const diffUsage = `Usage: basebuild diff [--json] A B

Lists the packages added, removed and changed from image A to image B,
with their versions and source packages, as 'basebuild packages' reads
them. A and B are registry references or oci:DIR[:TAG]. Lines start with
'+' (added), '-' (removed) or '~' (changed). The exit status is 0 whether
or not they differ.

Flags:
`

// packageChange is a package in both images, at different versions.
type packageChange struct {
	Name         string        `json:"name"`
	Architecture string        `json:"architecture"`
	From         audit.Package `json:"from"`
	To           audit.Package `json:"to"`
}

type packageDiff struct {
	A       string          `json:"a"`
	B       string          `json:"b"`
	Added   []audit.Package `json:"added"`
	Removed []audit.Package `json:"removed"`
	Changed []packageChange `json:"changed"`
}

func runDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("basebuild diff", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print a JSON object with added, removed and changed packages")
	insecure := fs.Bool("insecure-registry", false, "allow plain HTTP to registries not on loopback, without credentials (loopback registries always get it)")
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: diff: %v (see basebuild diff --help)", errUsage, err)
	}
	if *help {
		fmt.Fprint(stdout, diffUsage+fs.FlagUsages())
		return pflag.ErrHelp
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: diff: want two images, A and B (see basebuild diff --help)", errUsage)
	}
	a, err := readPackages(ctx, fs.Arg(0), *insecure)
	if err != nil {
		return err
	}
	b, err := readPackages(ctx, fs.Arg(1), *insecure)
	if err != nil {
		return err
	}
	d := diffPackages(a.Packages, b.Packages)
	d.A, d.B = a.Image, b.Image
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	for _, p := range d.Removed {
		fmt.Fprintf(stdout, "- %s %s %s %s\n", p.Name, p.Version, p.Architecture, p.Source)
	}
	for _, p := range d.Added {
		fmt.Fprintf(stdout, "+ %s %s %s %s\n", p.Name, p.Version, p.Architecture, p.Source)
	}
	for _, c := range d.Changed {
		src := c.To.Source
		if c.From.Source != c.To.Source {
			src = c.From.Source + " -> " + c.To.Source
		}
		fmt.Fprintf(stdout, "~ %s %s -> %s %s %s\n", c.Name, c.From.Version, c.To.Version, c.Architecture, src)
	}
	return nil
}

// diffPackages compares two package lists by name and architecture; a
// package is changed when its version or source differs.
func diffPackages(a, b []audit.Package) *packageDiff {
	key := func(p audit.Package) string { return p.Name + ":" + p.Architecture }
	inA := map[string]audit.Package{}
	for _, p := range a {
		inA[key(p)] = p
	}
	d := &packageDiff{Added: []audit.Package{}, Removed: []audit.Package{}, Changed: []packageChange{}}
	seen := map[string]bool{}
	for _, p := range b {
		k := key(p)
		seen[k] = true
		old, ok := inA[k]
		switch {
		case !ok:
			d.Added = append(d.Added, p)
		case old.Version != p.Version || old.Source != p.Source || old.SourceVersion != p.SourceVersion:
			d.Changed = append(d.Changed, packageChange{Name: p.Name, Architecture: p.Architecture, From: old, To: p})
		}
	}
	for _, p := range a {
		if !seen[key(p)] {
			d.Removed = append(d.Removed, p)
		}
	}
	byName := func(x, y audit.Package) int {
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Architecture, y.Architecture))
	}
	slices.SortFunc(d.Added, byName)
	slices.SortFunc(d.Removed, byName)
	slices.SortFunc(d.Changed, func(x, y packageChange) int { return byName(x.To, y.To) })
	return d
}
