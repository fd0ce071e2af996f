package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/plan"
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

// diffPackages compares two package lists as plan.Diff does, by name and
// architecture; a package is changed when its version or source differs.
func diffPackages(a, b []audit.Package) *packageDiff {
	type key struct{ name, arch string }
	// Each list as a plan, of what diff compares only (not the debs'
	// SHA-256s, which a manifest read from dpkg's status lacks), and its
	// packages by name and architecture.
	index := func(pkgs []audit.Package) (*plan.Plan, map[key]audit.Package) {
		p, byKey := &plan.Plan{}, map[key]audit.Package{}
		for _, x := range pkgs {
			byKey[key{x.Name, x.Architecture}] = x
			p.Packages = append(p.Packages, plan.Package{Name: x.Name, Version: x.Version, Architecture: x.Architecture,
				Source: x.Source, SourceVersion: x.SourceVersion})
		}
		return p, byKey
	}
	pa, from := index(a)
	pb, to := index(b)
	c := plan.Diff(pa, pb)
	d := &packageDiff{Added: []audit.Package{}, Removed: []audit.Package{}, Changed: []packageChange{}}
	for _, p := range c.Added {
		d.Added = append(d.Added, to[key{p.Name, p.Architecture}])
	}
	for _, p := range c.Removed {
		d.Removed = append(d.Removed, from[key{p.Name, p.Architecture}])
	}
	for _, ch := range c.Changed {
		d.Changed = append(d.Changed, packageChange{Name: ch.To.Name, Architecture: ch.To.Architecture,
			From: from[key{ch.From.Name, ch.From.Architecture}], To: to[key{ch.To.Name, ch.To.Architecture}]})
	}
	return d
}
