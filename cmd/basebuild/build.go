package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/pipeline"
	"github.com/basebuild/basebuild/plan"
)

// imageFlags are the flags of the build command that say what to make of
// the image; verify has none of them.
type imageFlags struct {
	dryRun, ifChanged, printCfg  bool
	allowDowngrade, attachInputs bool
	rootDir, sbom, report        string
	sbomFormat, lock             string
	outputs, push                []string
}

func (f *imageFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.dryRun, "dry-run", false, "resolve only: print the packages as 'name version arch', one a line, and fetch nothing but indexes")
	fs.StringVar(&f.rootDir, "rootfs", "", "build the configured root filesystem into DIR (must not exist or be empty; needs root)")
	fs.StringArrayVar(&f.outputs, "output", nil, "write the image: oci:DIR (OCI layout, tagged SUITE), docker-archive:FILE or rootfs-tar:FILE; repeatable (default oci:./out/SUITE unless --push or --rootfs is given)")
	fs.StringArrayVar(&f.push, "push", nil, "push the image to a registry reference, e.g. registry.example/debian:bookworm; repeatable; credentials from the docker config and its credential helpers")
	fs.BoolVar(&f.ifChanged, "if-changed", false, "build only if the inputs (packages, epoch, options, basebuild's version) differ from those the --push and oci: destinations' images record; else print the first one's digest")
	fs.BoolVar(&f.allowDowngrade, "allow-downgrade", false, "replace a --push or oci: destination's image even with one of an earlier epoch or older packages (without it that is an error, the destination untouched)")
	fs.StringVar(&f.sbom, "sbom", "", "also write the image's SBOM (JSON, in --sbom-format) to FILE ({suite}, {variant}, {tag}, {arch}, {date} and {snapshot} replaced, as in --output)")
	fs.StringVar(&f.sbomFormat, "sbom-format", "spdx", "the format of --sbom FILE: spdx (SPDX 2.3) or cyclonedx (CycloneDX 1.6); both are attached to the image")
	fs.BoolVar(&f.attachInputs, "attach-inputs", false, "attach to the image (in oci: outputs and on --push) an artifact of everything that built it: the lock, each InRelease, each Packages index and every deb, each a blob of its own; basebuild verify --inputs-from rebuilds from it alone")
	fs.StringVar(&f.report, "report", "", "write a JSON report of the build to FILE: each phase's wall time, the digest, the package count, peak RSS, or the error")
	fs.StringVar(&f.lock, "lock", "", "build exactly the packages of a lockfile (see basebuild lock), checked against the archive's signed indexes; the other image flags must agree with the lock's")
	fs.BoolVar(&f.printCfg, "print-config", false, "print the settings in effect, from the command line and --config, as a config file, and build nothing")
}

// imageFlagNames are the names of the imageFlags, which a config file
// read by verify may hold.
func imageFlagNames() []string {
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	(&imageFlags{}).register(fs)
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return names
}

// buildCommand is a checked command line of the build: everything in it
// has been validated, and nothing fetched yet.
type buildCommand struct {
	o         *pipeline.Options   // the first image's, and the run's Sources and Runtime
	images    []*pipeline.Options // each image's (suite × variant); the first is o
	archs     []string
	dryRun    bool
	ifChanged bool
	imaging   bool
	rootDir   string
	report    string
	lockFile  string
	// outputs and push are as given, their placeholders not yet
	// expanded.
	outputs, push []string
	lock          *pipeline.Lock // --lock: the plan to build, instead of resolving
}

func runBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	b, err := parseBuild(args, stdout, stderr)
	if err != nil || b == nil {
		return err
	}
	stdout, stderr, finish := onTerminal(b.images, stdout, stderr, len(b.images) > 1, len(b.archs) > 1)
	err = b.run(ctx, stdout, stderr)
	finish(err == nil)
	return err
}

// parseBuild parses and checks the build's command line, all of it,
// before anything is fetched: a bad one is an errUsage (exit 2). It
// returns nil when the command is done (--help, --print-config).
func parseBuild(args []string, stdout, stderr io.Writer) (*buildCommand, error) {
	fs := pflag.NewFlagSet("basebuild", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by main
	var (
		bf  buildFlags
		imf imageFlags
	)
	bf.register(fs)
	bf.multiArch, bf.multiImage = true, true
	imf.register(fs)
	help := fs.BoolP("help", "h", false, "show this help")

	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v (see basebuild --help)", errUsage, err)
	}
	if *help {
		fmt.Fprint(stdout, usage+fs.FlagUsages())
		return nil, pflag.ErrHelp
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q (see basebuild --help)", errUsage, fs.Arg(0))
	}
	o, err := bf.options(fs, stderr)
	if err != nil {
		return nil, err
	}
	if imf.printCfg {
		text, err := printConfig(fs)
		if err == nil {
			_, err = stdout.Write(text)
		}
		return nil, err
	}
	b := &buildCommand{o: o, images: bf.images, archs: bf.archs, dryRun: imf.dryRun, ifChanged: imf.ifChanged,
		rootDir: imf.rootDir, report: imf.report, lockFile: imf.lock, outputs: imf.outputs, push: imf.push}
	for _, oi := range b.images {
		oi.Push, oi.SBOM, oi.SBOMFormat, oi.RootfsDir, oi.AllowDowngrade, oi.AttachInputs = nil, imf.sbom, imf.sbomFormat, imf.rootDir, imf.allowDowngrade, imf.attachInputs
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	return b, nil
}

// check refuses what the flags cannot do together, and any output,
// reference or destination that cannot be used.
func (b *buildCommand) check() error {
	o := b.o
	if b.report != "" {
		if fi, err := os.Stat(filepath.Dir(b.report)); err != nil || !fi.IsDir() {
			return fmt.Errorf("%w: --report %s: no directory %s", errUsage, b.report, filepath.Dir(b.report))
		}
	}
	if o.SBOMFormat != "spdx" && o.SBOMFormat != "cyclonedx" {
		return fmt.Errorf("%w: --sbom-format %q: want spdx or cyclonedx", errUsage, o.SBOMFormat)
	}
	if o.Offline && len(b.push) > 0 {
		return fmt.Errorf("%w: --offline and --push contradict each other", errUsage)
	}
	if b.rootDir != "" && b.dryRun {
		return fmt.Errorf("%w: --rootfs and --dry-run contradict each other", errUsage)
	}
	if len(b.archs) > 1 {
		// Several architectures make an image index, which only OCI
		// layouts and registries hold.
		switch {
		case b.rootDir != "":
			return fmt.Errorf("%w: --rootfs takes one --arch, for now", errUsage)
		case o.SBOM != "":
			return fmt.Errorf("%w: --sbom takes one --arch, for now (each image of the index has its SBOM attached)", errUsage)
		case b.lockFile != "":
			return fmt.Errorf("%w: --lock takes one --arch, for now", errUsage)
		}
	}
	if len(b.images) > 1 {
		// Each image has its own destinations, from placeholders.
		switch {
		case b.rootDir != "":
			return fmt.Errorf("%w: --rootfs keeps one tree: one --suite and --variant", errUsage)
		case b.lockFile != "":
			return fmt.Errorf("%w: --lock holds one image's packages: one --suite and --variant", errUsage)
		}
	}
	b.imaging = len(b.outputs) > 0 || len(b.push) > 0
	if !b.imaging && b.rootDir == "" && !b.dryRun {
		b.outputs = []string{"oci:" + filepath.Join("out", "{tag}")}
		if err := os.MkdirAll("out", 0o755); err != nil {
			return err
		}
		b.imaging = true
	}
	if b.imaging && b.dryRun {
		return fmt.Errorf("%w: --dry-run builds no image: drop --output and --push", errUsage)
	}
	if o.SBOM != "" && !b.imaging {
		return fmt.Errorf("%w: --sbom describes an image: add --output or --push", errUsage)
	}
	if o.AttachInputs && len(b.push) == 0 && !slices.ContainsFunc(b.outputs, func(s string) bool { return strings.HasPrefix(s, oci.OCILayout+":") }) {
		return fmt.Errorf("%w: --attach-inputs attaches an artifact, which only --push and --output oci:DIR hold", errUsage)
	}
	if b.ifChanged && (b.rootDir != "" || b.dryRun) {
		return fmt.Errorf("%w: --if-changed skips a build: drop --rootfs and --dry-run", errUsage)
	}
	// Placeholders are checked now, expanded once the epoch is known:
	// each value must parse with any epoch, and no two images may share
	// a destination.
	users := map[string]string{} // destination: the image it is for
	var fixed []oci.Output
	for _, oi := range b.images {
		outs, err := b.checkDestinations(oi, users)
		if err != nil {
			return err
		}
		fixed = append(fixed, outs...)
	}
	for _, out := range fixed {
		if err := out.Check(); err != nil {
			return err
		}
	}
	if (b.imaging || b.rootDir != "") && os.Geteuid() != 0 {
		return fmt.Errorf("building a rootfs needs root: maintainer scripts run in a chroot")
	}
	if b.rootDir != "" {
		// Refuse a used destination before any download.
		if err := pipeline.CheckDestination(b.rootDir); err != nil {
			return err
		}
	}
	if b.lockFile != "" {
		var err error
		if b.lock, err = readLock("--lock", b.lockFile, o); err != nil {
			return err
		}
		o.Locked = b.lock.Plan.Releases
	}
	return nil
}

// checkDestinations checks the --output and --push values for the image
// oi, and that none is one another image in users already has. It
// returns the outputs the epoch does not change, which can be checked
// now.
func (b *buildCommand) checkDestinations(oi *pipeline.Options, users map[string]string) (fixed []oci.Output, _ error) {
	use := func(flag, dest string) error {
		if other, ok := users[dest]; ok && other != oi.Tag() {
			return fmt.Errorf("%w: %s %s: both %s and %s would go there: tell them apart with {suite}, {variant} or {tag}", errUsage, flag, dest, other, oi.Tag())
		}
		users[dest] = oi.Tag()
		return nil
	}
	for _, s := range b.outputs {
		expanded, err := b.expand(oi, s, time.Time{}, "--output")
		if err != nil {
			return nil, err
		}
		out, err := oci.ParseOutput(expanded)
		if err != nil {
			return nil, fmt.Errorf("%w: --output: %v", errUsage, err)
		}
		if err := use("--output", out.String()); err != nil {
			return nil, err
		}
		if len(b.archs) > 1 && out.Type != oci.OCILayout {
			return nil, fmt.Errorf("%w: --output %s holds one image: several --arch make an index, for oci:DIR or --push", errUsage, s)
		}
		if b.ifChanged && out.Type != oci.OCILayout {
			return nil, fmt.Errorf("%w: --if-changed cannot read what %s was built from: use --push or --output oci:DIR", errUsage, s)
		}
		if later, err := b.expand(oi, s, time.Unix(1<<32, 0), "--output"); err == nil && later == expanded {
			fixed = append(fixed, out)
		}
	}
	if oi.SBOM != "" {
		expanded, err := b.expand(oi, oi.SBOM, time.Time{}, "--sbom")
		if err != nil {
			return nil, err
		}
		if err := use("--sbom", expanded); err != nil {
			return nil, err
		}
	}
	for _, ref := range b.push {
		expanded, err := b.expand(oi, ref, time.Time{}, "--push")
		if err != nil {
			return nil, err
		}
		if _, err := oci.ParseReference(expanded, oi.InsecureRegistry); err != nil {
			return nil, fmt.Errorf("%w: --push %q: %v", errUsage, ref, err)
		}
		if err := use("--push", expanded); err != nil {
			return nil, err
		}
	}
	return fixed, nil
}

// expand expands the placeholders of a --push or --output value s for
// the image oi of epoch.
func (b *buildCommand) expand(oi *pipeline.Options, s string, epoch time.Time, flag string) (string, error) {
	if !pipeline.HasPlaceholders(s) {
		return s, nil
	}
	out, err := pipeline.Expand(s, oi, epoch)
	if err != nil {
		return "", fmt.Errorf("%w: %s %v", errUsage, flag, err)
	}
	return out, nil
}

// setDestinations sets the Outputs, Push and SBOM of the image oi of
// epoch.
func (b *buildCommand) setDestinations(oi *pipeline.Options, epoch time.Time) (err error) {
	if oi.SBOM, err = b.expand(oi, oi.SBOM, epoch, "--sbom"); err != nil {
		return err
	}
	oi.Outputs, oi.Push = nil, nil
	for _, s := range b.outputs {
		s, err := b.expand(oi, s, epoch, "--output")
		if err != nil {
			return err
		}
		out, err := oci.ParseOutput(s)
		if err == nil {
			err = out.Check()
		}
		if err != nil {
			return err
		}
		oi.Outputs = append(oi.Outputs, out)
	}
	for _, ref := range b.push {
		ref, err := b.expand(oi, ref, epoch, "--push")
		if err != nil {
			return err
		}
		oi.Push = append(oi.Push, ref)
	}
	return nil
}

// run builds what b says.
func (b *buildCommand) run(ctx context.Context, stdout, stderr io.Writer) (err error) {
	o := b.o
	multi := len(b.archs) > 1
	several := len(b.images) > 1
	// The report is written whatever happens from here on, with the
	// digest and package count of a success or the error.
	var digest string
	var packages int
	if b.report != "" {
		r := pipeline.NewReport(o)
		for _, oi := range b.images {
			oi.Report = r
		}
		defer func() {
			r.Finish(digest, packages, err)
			if werr := r.Write(b.report); err == nil && werr != nil {
				err = fmt.Errorf("--report: %w", werr)
			}
		}()
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	// Resolve first: the placeholders take the plan's epoch, and
	// --if-changed compares its inputs.
	resolver := pipeline.NewResolver()
	targets := make([]pipeline.Target, len(b.images))
	for i, oi := range b.images {
		var plans []*plan.Plan
		switch {
		case multi:
			plans, err = resolver.ResolveArchs(ctx, oi, c, b.archs)
		case b.lock != nil:
			plans, err = []*plan.Plan{b.lock.Plan}, pipeline.CheckLocked(ctx, oi, c, b.lock.Plan)
		default:
			var set *plan.Plan
			set, err = resolver.Resolve(ctx, oi, c)
			plans = []*plan.Plan{set}
		}
		if err != nil {
			return imageError(several, oi, err)
		}
		targets[i] = pipeline.Target{Options: oi, Plans: plans}
		// The placeholders take the epoch, every architecture's the
		// suite's.
		if err := b.setDestinations(oi, plans[0].Epoch); err != nil {
			return err
		}
	}
	if !multi && !several {
		packages = len(targets[0].Plans[0].Packages)
	}

	// Each image's line on stdout once built, or found up to date.
	digests := make([]string, len(targets))
	var build []pipeline.Target
	for i, t := range targets {
		if b.ifChanged {
			notes := stderr
			if o.Log == nil { // --quiet
				notes = io.Discard
			}
			if digests[i], err = b.upToDate(ctx, c, t, notes); err != nil {
				return imageError(several, t.Options, err)
			}
			if digests[i] != "" {
				continue
			}
		}
		// Index checks each architecture's destinations itself.
		if b.imaging && !multi && !t.Options.AllowDowngrade {
			if err := pipeline.NoDowngrade(ctx, t.Options, t.Plans[0]); err != nil {
				return imageError(several, t.Options, err)
			}
		}
		build = append(build, t)
	}
	switch {
	case b.dryRun:
		// Each image's packages, its tag and architecture first where
		// there are several.
		for _, t := range targets {
			for _, p := range t.Plans {
				prefix := ""
				if several {
					prefix += t.Options.Tag() + " "
				}
				if multi {
					prefix += p.Arch + " "
				}
				for _, q := range p.Packages {
					fmt.Fprintf(stdout, "%s%s %s %s\n", prefix, q.Name, q.Version, q.Architecture)
				}
			}
		}
		return nil
	case b.imaging:
		if len(build) > 0 {
			built, err := pipeline.Build(ctx, c, build)
			if err != nil {
				return err
			}
			for i, j := 0, 0; i < len(targets); i++ {
				if digests[i] == "" {
					digests[i], j = built[j].String(), j+1
				}
			}
		}
		if !several {
			// The digest is the last line on stdout, for scripts.
			digest = digests[0]
			fmt.Fprintln(stdout, digest)
			return nil
		}
		// One line per image: where it went, and its digest.
		for i, t := range targets {
			fmt.Fprintf(stdout, "%s %s\n", destination(t.Options), digests[i])
			if o.Report != nil {
				o.Report.AddImage(t.Options.Tag(), digests[i])
			}
		}
		return nil
	case b.rootDir != "":
		set := targets[0].Plans[0]
		if err := pipeline.Rootfs(ctx, o, c, set, b.rootDir); err != nil {
			return err
		}
		for _, p := range set.Packages {
			fmt.Fprintf(stdout, "%s %s %s\n", p.Name, p.Version, p.Architecture)
		}
	}
	return nil
}

// upToDate returns the digest of t's image (or index) if its --push and
// oci: destinations hold one built from the same inputs, else "". For a
// single image it reviews, on stderr, in the report and attached, why it
// is rebuilt.
func (b *buildCommand) upToDate(ctx context.Context, c *apt.Client, t pipeline.Target, stderr io.Writer) (string, error) {
	o := t.Options
	if len(t.Plans) > 1 {
		return indexUpToDate(ctx, o, t.Plans, ifChangedRefs(o), stderr)
	}
	set := t.Plans[0]
	digest, previous, err := upToDate(ctx, o, set, ifChangedRefs(o), stderr)
	if err != nil || digest != "" || previous == nil {
		return digest, err
	}
	if o.Rebuilt, err = pipeline.Review(ctx, o, c, previous, set); err != nil {
		return "", fmt.Errorf("why rebuilt: %w", err)
	}
	printRebuilt(stderr, o.Rebuilt)
	if o.Report != nil {
		o.Report.Rebuilt = o.Rebuilt
	}
	return "", nil
}

// imageError names the image an error is of when a run builds several.
func imageError(several bool, o *pipeline.Options, err error) error {
	if !several {
		return err
	}
	return fmt.Errorf("%s: %w", o.Tag(), err)
}

// destination names where the image of o went: its first --push
// reference, else its first output.
func destination(o *pipeline.Options) string {
	if len(o.Push) > 0 {
		return o.Push[0]
	}
	return o.Outputs[0].String()
}
