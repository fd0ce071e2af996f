package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"pault.ag/go/debian/version"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/oci"
)

const inventoryUsage = `Usage: basebuild inventory [--json|--csv] [--package NAME [--older-than VERSION]] REPOSITORY|IMAGE…

Lists the packages of every image: each tag of a registry REPOSITORY
(registry/path, without tag: listed through the registry's API with the
credentials push uses), each IMAGE (a registry reference with a tag or
digest, or oci:DIR[:TAG]), and each image of a multi-architecture index.
A package is read from the manifest attached to the image, or from the
dpkg status in its layers. One line per package: image, platform, name,
version, architecture, source, source version.

--package NAME keeps only that binary package, and the images that have
it; with --older-than VERSION, only where its version is older (Debian
version order): "which images need a rebuild for this fix" in one query.
Exit status: 0 listed, 1 failed (an image or repository unreadable), 2
bad command line.

Flags:
`

// inventoryRow is one image of an inventory: its packages and platform.
type inventoryRow struct {
	imagePackages
	Platform string `json:"platform"`
}

func runInventory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("basebuild inventory", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print a JSON array, one object per image")
	asCSV := fs.Bool("csv", false, "print CSV with a header line, one row per package")
	pkg := fs.String("package", "", "list only this binary package, and only the images that have it")
	olderThan := fs.String("older-than", "", "with --package: only where its version is older than VERSION")
	insecure := fs.Bool("insecure-registry", false, "allow plain HTTP to registries not on loopback, without credentials (loopback registries always get it)")
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: inventory: %v (see basebuild inventory --help)", errUsage, err)
	}
	if *help {
		fmt.Fprint(stdout, inventoryUsage+fs.FlagUsages())
		return pflag.ErrHelp
	}
	switch {
	case fs.NArg() == 0:
		return fmt.Errorf("%w: inventory: no REPOSITORY or IMAGE (see basebuild inventory --help)", errUsage)
	case *asJSON && *asCSV:
		return fmt.Errorf("%w: inventory: --json and --csv contradict each other", errUsage)
	case *olderThan != "" && *pkg == "":
		return fmt.Errorf("%w: inventory: --older-than needs --package", errUsage)
	}
	var before *version.Version
	if *olderThan != "" {
		v, err := version.Parse(*olderThan)
		if err != nil {
			return fmt.Errorf("%w: inventory: --older-than %q: %v", errUsage, *olderThan, err)
		}
		before = &v
	}
	keep := func(p audit.Package) bool {
		if *pkg == "" {
			return true
		}
		if p.Name != *pkg {
			return false
		}
		if before == nil {
			return true
		}
		v, err := version.Parse(p.Version)
		return err == nil && version.Compare(v, *before) < 0
	}

	var images []string
	for _, arg := range fs.Args() {
		if !isRepository(arg) {
			images = append(images, arg)
			continue
		}
		tags, err := oci.Tags(ctx, arg, *insecure)
		if err != nil {
			return err
		}
		for _, tag := range tags {
			// The referrers fallback tags name artifacts, not images.
			if !strings.HasPrefix(tag, "sha256-") {
				images = append(images, arg+":"+tag)
			}
		}
	}
	rows := []inventoryRow{}
	for _, image := range images {
		sources, err := oci.OpenAll(ctx, image, *insecure)
		if err != nil {
			return err
		}
		for _, s := range sources {
			ip, err := packagesOf(s)
			if err != nil {
				return err
			}
			cfg, err := s.Image.ConfigFile()
			if err != nil {
				return fmt.Errorf("image %s: %w", image, err)
			}
			ip.Packages = slices.DeleteFunc(ip.Packages, func(p audit.Package) bool { return !keep(p) })
			row := inventoryRow{imagePackages: *ip, Platform: cfg.Platform().String()}
			if *pkg == "" || len(row.Packages) > 0 {
				rows = append(rows, row)
			}
		}
	}

	switch {
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case *asCSV:
		w := csv.NewWriter(stdout)
		w.Write([]string{"image", "platform", "digest", "name", "version", "architecture", "source", "source_version"})
		for _, r := range rows {
			for _, p := range r.Packages {
				w.Write([]string{r.Image, r.Platform, r.Digest, p.Name, p.Version, p.Architecture, p.Source, p.SourceVersion})
			}
		}
		w.Flush()
		return w.Error()
	}
	for _, r := range rows {
		for _, p := range r.Packages {
			fmt.Fprintf(stdout, "%s %s %s %s %s %s %s\n", r.Image, r.Platform, p.Name, p.Version, p.Architecture, p.Source, p.SourceVersion)
		}
	}
	return nil
}

// isRepository says whether arg names a registry repository, to list,
// rather than one image: no oci: layout, no tag, no digest.
func isRepository(arg string) bool {
	if strings.HasPrefix(arg, oci.OCILayout+":") || strings.Contains(arg, "@") {
		return false
	}
	last := arg[strings.LastIndexByte(arg, '/')+1:]
	return strings.Contains(arg, "/") && !strings.Contains(last, ":")
}
