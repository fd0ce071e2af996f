package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/pipeline"
)

const outdatedUsage = `Usage: basebuild outdated [--snapshot TS] [--json] [flags] IMAGE…

Lists, for each IMAGE (a registry reference or oci:DIR[:TAG]; each image
of a multi-architecture index), the packages apt in the image would
upgrade, as 'apt list --upgradable' after 'apt-get update' would: from the
image's suites (the suite and architecture it records; --suite and --arch
override them), the live archive or --snapshot TS, with --repo, --sources
and --apt-preferences as the image was built with. Updates from the
security suite are marked. Below each image's list come the Debian
changelog entries between the installed and the candidate versions, by
source package, with the CVE identifiers they name, read from the
candidates' debs (fetched and verified as a build's are).

An image basebuild built is read from its attached package manifest; one
built on top of it, with more packages installed, from the dpkg status in
its layers and the inputs it inherited. Exit status: 0 every image up to
date, 100 some update pending, 1 failed, 2 bad command line.

Flags:
`

// outdatedImage is one image's result.
type outdatedImage struct {
	Image    string `json:"image"`
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	From     string `json:"from"` // "manifest" or "dpkg-status"
	Suite    string `json:"suite"`
	*pipeline.Outdated
}

func runOutdated(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("basebuild outdated", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var bf buildFlags
	bf.register(fs)
	bf.configIgnores = imageFlagNames()
	asJSON := fs.Bool("json", false, "print a JSON array, one object per image")
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: outdated: %v (see basebuild outdated --help)", errUsage, err)
	}
	if *help {
		fmt.Fprint(stdout, outdatedUsage+fs.FlagUsages())
		return pflag.ErrHelp
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: outdated: no IMAGE (see basebuild outdated --help)", errUsage)
	}
	if bf.config != "" {
		if err := applyConfig(fs, bf.config, bf.configIgnores); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		bf.config = ""
	}
	suiteGiven, archGiven := fs.Changed("suite"), fs.Changed("arch")
	// The flags are checked before anything is fetched, with a stand-in
	// suite when the images are to say theirs.
	probe := bf
	if !suiteGiven {
		probe.o.Suite = "bookworm"
	}
	if _, err := probe.options(fs, io.Discard); err != nil {
		return err
	}

	var results []outdatedImage
	pending := 0
	for _, image := range fs.Args() {
		sources, err := oci.OpenAll(ctx, image, bf.o.InsecureRegistry)
		if err != nil {
			return err
		}
		for _, s := range sources {
			r, err := outdated(ctx, bf, s, suiteGiven, archGiven, stderr)
			if err != nil {
				return err
			}
			if len(r.Updates) > 0 {
				pending++
			}
			results = append(results, *r)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else if err := printOutdated(stdout, results); err != nil {
		return err
	}
	if pending > 0 {
		return &exitError{100, fmt.Errorf("updates pending for %d of %d images", pending, len(results))}
	}
	return nil
}

// outdated checks one image, s, against the archive: its suite and
// architecture as it records them, unless the command line gave them.
func outdated(ctx context.Context, bf buildFlags, s *oci.Source, suiteGiven, archGiven bool, stderr io.Writer) (*outdatedImage, error) {
	ip, err := packagesOf(s)
	if err != nil {
		return nil, err
	}
	inputs, err := pipeline.RecordedInputs(s.Image)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Name, err)
	}
	keys := pipeline.InputKeys(inputs)
	if !suiteGiven {
		if keys["suite"] == "" {
			return nil, fmt.Errorf("image %s records no suite (not built by basebuild?): give --suite", s.Name)
		}
		bf.o.Suite = keys["suite"]
	}
	cfg, err := s.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Name, err)
	}
	if !archGiven {
		bf.o.Arch = keys["arch"]
		if bf.o.Arch == "" {
			bf.o.Arch = cfg.Architecture
		}
	}
	o, err := bf.options(nil, stderr)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Name, err)
	}
	c, err := o.Client()
	if err != nil {
		return nil, err
	}
	out, err := pipeline.CheckOutdated(ctx, o, c, ip.Packages)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Name, err)
	}
	return &outdatedImage{Image: s.Name, Platform: cfg.Platform().String(), Digest: ip.Digest, From: ip.From, Suite: o.Suite, Outdated: out}, nil
}

// printOutdated prints each image's updates, one a line, then the review
// of its changelogs.
func printOutdated(w io.Writer, results []outdatedImage) error {
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if len(r.Updates) == 0 {
			fmt.Fprintf(w, "%s (%s): up to date\n", r.Image, r.Platform)
			continue
		}
		security := 0
		cves := map[string][]string{}
		for _, s := range r.Review.Sources {
			cves[s.Source] = s.CVEs
		}
		for _, u := range r.Updates {
			if u.Security {
				security++
			}
		}
		fmt.Fprintf(w, "%s (%s): %d updates, %d from the security suite\n", r.Image, r.Platform, len(r.Updates), security)
		for _, u := range r.Updates {
			mark := ""
			if u.Security {
				mark = " [security]"
			}
			line := fmt.Sprintf("  %s %s -> %s (%s, %s)%s", u.Name, u.Installed, u.Candidate, u.Source, u.Suite, mark)
			if c := cves[u.Source]; len(c) > 0 {
				line += " " + strings.Join(c, " ")
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintln(w)
		if err := r.Review.WriteMarkdown(w); err != nil {
			return err
		}
	}
	return nil
}
