package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/pipeline"
	"github.com/basebuild/basebuild/plan"
)

const verifyUsage = `Usage: basebuild verify --suite SUITE [--snapshot TS] [flags] REF
       basebuild verify --inputs-from REF --suite SUITE [flags] REF

Rebuilds the image the flags describe, as basebuild would, and compares it
with REF: a registry reference, or oci:DIR[:TAG] for an OCI layout. With
the same image, it prints one line saying so and exits 0. Otherwise it
lists the files that differ (path: what) and what changed in the inputs
the two images record (packages added, removed, upgraded), and exits 1.
It exits 2 when it cannot tell: REF cannot be read, the build fails, or
the command line is wrong. Needs root.

A multi-architecture index is verified whole: without --arch, each
architecture it holds is rebuilt as basebuild --arch A,B,… builds it,
each image compared with the index's (one line each, "REF (ARCH): same
image, DIGEST", or what differs as above) and the index of the rebuilds
with REF. --arch A,B,… names the architectures the index must hold, in
order: one it lacks, or one it holds that --arch does not name, is a
difference, said so, and the images of those in both are still
compared. The error names each architecture that differs. With one
--arch, only the index's image for it is verified.

--inputs-from REF rebuilds from the inputs artifact that basebuild
--attach-inputs attached to the image REF (usually the one verified; of
an index, each architecture's image from its own inputs) alone: each
blob is checked against its digest into a fresh private cache, the
build flags must agree with the lock it holds (else exit 2, naming the
flag), and the rebuild is offline: no archive or snapshot server is
contacted, and the InRelease signatures are checked against --keyring
and the --repo keys as always. A missing artifact or a blob that fails
its digest is exit 2.

Flags:
`

// exitError is an error with its own exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := verify(ctx, args, stdout, stderr)
	var exit *exitError
	if err == nil || errors.Is(err, pflag.ErrHelp) || errors.As(err, &exit) {
		return err
	}
	// Exit 1 means "different": anything else that stops verify is 2.
	return &exitError{2, err}
}

func verify(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := pflag.NewFlagSet("basebuild verify", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var bf buildFlags
	bf.register(fs)
	bf.multiArch = true
	// A site's config file also says where images go.
	bf.configIgnores = imageFlagNames()
	inputsFrom := fs.String("inputs-from", "", "rebuild offline from the inputs artifact attached to this image (see basebuild --attach-inputs), not from the archive")
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v (see basebuild verify --help)", errUsage, err)
	}
	if *help {
		fmt.Fprint(stdout, verifyUsage+fs.FlagUsages())
		return pflag.ErrHelp
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one image reference to verify, got %d arguments (see basebuild verify --help)", errUsage, fs.NArg())
	}
	ref := fs.Arg(0)
	o, err := bf.options(fs, stderr)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("verify needs root to rebuild: maintainer scripts run in a chroot")
	}
	// Without --arch, an index is verified whole; with several, REF must
	// be their index.
	var all []*oci.Source
	if !fs.Changed("arch") || len(bf.archs) > 1 {
		if all, err = oci.OpenAll(ctx, ref, o.InsecureRegistry); err != nil {
			return err
		}
	}
	index := len(bf.archs) > 1 || len(all) > 0 && all[0].Platform != nil
	stdout, stderr, finish := onTerminal([]*pipeline.Options{o}, stdout, stderr, false, index)
	defer func() { finish(err == nil) }()
	if index {
		var archs []string
		if fs.Changed("arch") {
			archs = bf.archs
		}
		return verifyIndex(ctx, o, ref, all, archs, *inputsFrom, stdout)
	}
	// An index is verified by its image for --arch.
	platform, err := oci.Platform(o.Arch)
	if err != nil {
		return fmt.Errorf("%w: --arch: %v", errUsage, err)
	}
	var want *oci.Source
	if len(all) > 0 {
		want = all[0]
	} else if want, err = oci.OpenPlatform(ctx, ref, o.InsecureRegistry, &platform); err != nil {
		return err
	}
	var set *plan.Plan
	if *inputsFrom != "" {
		cacheDir, err := os.MkdirTemp(o.TempDir, "basebuild-inputs-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(cacheDir)
		o.CacheDir = cacheDir
		if set, err = importInputs(ctx, o, *inputsFrom, &platform); err != nil {
			return err
		}
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	if set != nil {
		err = pipeline.CheckLocked(ctx, o, c, set)
	} else {
		set, err = pipeline.Resolve(ctx, o, c)
	}
	if err != nil {
		return err
	}
	v, err := pipeline.Verify(ctx, o, c, set, want.Image)
	if err != nil {
		return err
	}
	if !printVerification(stdout, ref, v) {
		return &exitError{1, fmt.Errorf("the rebuild differs from %s", ref)}
	}
	return nil
}

// printVerification says on w what v found of the image what names: one
// line if it is the rebuild, else the files and inputs that differ. It
// reports whether it is the same.
func printVerification(w io.Writer, what string, v *pipeline.Verification) bool {
	if v.Same() {
		fmt.Fprintf(w, "%s: same image, %s\n", what, v.Built)
		return true
	}
	fmt.Fprintf(w, "%s is %s, the rebuild is %s\n", what, v.Reference, v.Built)
	if len(v.Files) > 0 {
		fmt.Fprintf(w, "files (A: %s, B: the rebuild):\n", what)
		for _, d := range v.Files {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	switch {
	case v.NoInputs:
		fmt.Fprintf(w, "inputs: %s records none\n", what)
	case len(v.Changes) > 0:
		fmt.Fprintf(w, "inputs (%s -> the rebuild):\n", what)
		for _, c := range v.Changes {
			fmt.Fprintf(w, "  %s\n", c)
		}
	}
	return false
}

// verifyIndex verifies ref, whose images are all, as the index of archs
// (nil: of the architectures ref holds): it rebuilds each architecture's
// image as the multi-architecture build does, compares each with ref's
// image of that architecture, and their index with ref. An architecture
// of archs ref has no image of, and an image of ref for none of archs,
// are differences, said as such; the others are still compared.
func verifyIndex(ctx context.Context, o *pipeline.Options, ref string, all []*oci.Source, archs []string, inputsFrom string, stdout io.Writer) error {
	held := make([]string, len(all))
	for i, s := range all {
		p := s.Platform
		if p == nil {
			cf, err := s.Image.ConfigFile()
			if err != nil {
				return fmt.Errorf("image %s: %w", ref, err)
			}
			p = cf.Platform()
		}
		a, err := oci.Arch(*p)
		if err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		held[i] = a
	}
	if archs == nil {
		archs = held
	}
	// What is built: each of archs ref holds, in archs's order.
	var built []string
	var wants []v1.Image
	for _, a := range archs {
		if i := slices.Index(held, a); i >= 0 {
			built, wants = append(built, a), append(wants, all[i].Image)
		}
	}
	var plans []*plan.Plan
	if inputsFrom != "" {
		cacheDir, err := os.MkdirTemp(o.TempDir, "basebuild-inputs-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(cacheDir)
		o.CacheDir, o.Offline = cacheDir, true
		for _, a := range built {
			platform, err := oci.Platform(a)
			if err != nil {
				return err
			}
			oa := *o
			oa.Arch = a
			p, err := importInputs(ctx, &oa, inputsFrom, &platform)
			if err != nil {
				return err
			}
			plans = append(plans, p)
		}
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	if plans != nil {
		for _, p := range plans {
			oa := *o
			oa.Arch, oa.Locked = p.Arch, p.Releases
			if err := pipeline.CheckLocked(ctx, &oa, c, p); err != nil {
				return err
			}
		}
	} else if len(built) > 0 {
		if plans, err = pipeline.ResolveArchs(ctx, o, c, built); err != nil {
			return err
		}
	}
	var digest v1.Hash
	var vs []*pipeline.Verification
	if len(built) > 0 {
		if digest, vs, err = pipeline.VerifyIndex(ctx, o, c, plans, wants); err != nil {
			return err
		}
	}

	indexDigest, err := oci.Digest(ctx, ref, o.InsecureRegistry)
	if err != nil {
		return err
	}
	sameIndex := false
	switch {
	case all[0].Platform == nil:
		fmt.Fprintf(stdout, "%s is an image for %s, not an index: the rebuild is an index of %s\n", ref, held[0], strings.Join(archs, ", "))
	case !slices.Equal(held, archs):
		fmt.Fprintf(stdout, "%s is an index of %s, the rebuild of %s\n", ref, strings.Join(held, ", "), strings.Join(archs, ", "))
	case digest != indexDigest:
		fmt.Fprintf(stdout, "%s is %s, the rebuild is %s\n", ref, indexDigest, digest)
	default:
		fmt.Fprintf(stdout, "%s: same index, %s\n", ref, digest)
		sameIndex = true
	}
	var differ []string
	for i, a := range built {
		if !printVerification(stdout, ref+" ("+a+")", vs[i]) {
			differ = append(differ, a)
		}
	}
	for _, a := range archs {
		if !slices.Contains(held, a) {
			fmt.Fprintf(stdout, "%s (%s): no image for %s, not rebuilt\n", ref, a, a)
			differ = append(differ, a)
		}
	}
	for _, a := range held {
		if !slices.Contains(archs, a) {
			fmt.Fprintf(stdout, "%s (%s): not in --arch, not rebuilt\n", ref, a)
			differ = append(differ, a)
		}
	}
	if len(differ) == 0 && !sameIndex {
		differ = append(differ, "the index")
	}
	if len(differ) > 0 {
		return &exitError{1, fmt.Errorf("the rebuild differs from %s: %s", ref, strings.Join(differ, ", "))}
	}
	return nil
}

// importInputs writes the inputs attached to the image ref (an index's
// image for platform) into the cache o.CacheDir, checks the command line
// against their lock, and sets o to rebuild it offline, its InRelease
// files pinned. It returns the lock's plan.
func importInputs(ctx context.Context, o *pipeline.Options, ref string, platform *v1.Platform) (*plan.Plan, error) {
	src, err := oci.OpenPlatform(ctx, ref, o.InsecureRegistry, platform)
	if err != nil {
		return nil, err
	}
	art, err := src.Referrer(pipeline.InputsType)
	if err != nil {
		return nil, err
	}
	cc, err := cache.Open(o.CacheDir)
	if err != nil {
		return nil, err
	}
	l, err := pipeline.ImportInputs(ctx, o, art, cc)
	if err != nil {
		return nil, fmt.Errorf("image %s: inputs: %w", ref, err)
	}
	if err := lockAgrees(l, o, "--inputs-from "+ref); err != nil {
		return nil, err
	}
	o.Offline, o.Locked = true, l.Plan.Releases
	return l.Plan, nil
}

// ifChangedRefs returns the destinations --if-changed compares with: the
// --push references and the oci: outputs (the only outputs that record
// what they were built from: parseBuild refuses others).
func ifChangedRefs(o *pipeline.Options) []string {
	refs := append([]string(nil), o.Push...)
	for _, out := range o.Outputs {
		refs = append(refs, "oci:"+out.Path+":"+o.Tag())
	}
	return refs
}

// upToDate compares the inputs of set with those every image at refs
// records. When they are all the same it returns the first image's
// digest, and nothing need be built; else it says on stderr what changed
// and returns "" and, where the image that is out of date records its
// packages, their plan, with the sources its package manifest gives.
func upToDate(ctx context.Context, o *pipeline.Options, set *plan.Plan, refs []string, stderr io.Writer) (string, *plan.Plan, error) {
	inputs := o.Inputs(set)
	digest := ""
	for _, ref := range refs {
		src, err := oci.Open(ctx, ref, o.InsecureRegistry)
		if errors.Is(err, oci.ErrNoImage) {
			fmt.Fprintf(stderr, "%s: no image yet: building\n", ref)
			return "", nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		old, same, err := sameInputs(src.Image, ref, inputs, stderr)
		if err != nil {
			return "", nil, err
		}
		if !same {
			if old == "" {
				return "", nil, nil
			}
			return "", previousPlan(src, old), nil
		}
		if digest == "" {
			digest = src.Digest.String()
		}
	}
	fmt.Fprintf(stderr, "up to date (%s): not rebuilding\n", pipeline.Fingerprint(inputs))
	return digest, nil, nil
}

// sameInputs says whether img, which what names, records inputs; when it
// does not, it says why on stderr (it records none, or what changed) and
// that it builds. It returns what img records.
func sameInputs(img v1.Image, what, inputs string, stderr io.Writer) (old string, same bool, err error) {
	if old, err = pipeline.ImageInputs(img); err != nil {
		return "", false, fmt.Errorf("image %s: %w", what, err)
	}
	switch {
	case old == "":
		fmt.Fprintf(stderr, "%s records no inputs: building\n", what)
	case old != inputs:
		fmt.Fprintf(stderr, "%s is out of date: building\n", what)
		for _, change := range pipeline.InputChanges(old, inputs) {
			fmt.Fprintf(stderr, "  %s\n", change)
		}
	default:
		return old, true, nil
	}
	return old, false, nil
}

// previousPlan is the plan of src's recorded inputs, with each package's
// source from its attached manifest, where it has one (else the package's
// own name and version, as a source package of its own).
func previousPlan(src *oci.Source, inputs string) *plan.Plan {
	p := pipeline.RecordedPlan(inputs)
	sources := map[string]audit.Package{}
	if ip, err := packagesOf(src); err == nil {
		for _, q := range ip.Packages {
			sources[q.Name+" "+q.Architecture] = q
		}
	}
	for i := range p.Packages {
		q := &p.Packages[i]
		m := sources[q.Name+" "+q.Architecture]
		q.Source, q.SourceVersion = cmp.Or(m.Source, q.Name), cmp.Or(m.SourceVersion, q.Version)
	}
	return p
}

// printRebuilt says on stderr why --if-changed rebuilds: each source
// package that moved, with the CVEs its changelog entries name.
func printRebuilt(w io.Writer, r *audit.Review) {
	sum := r.Summary()
	fmt.Fprintf(w, "why rebuilt: %d source packages moved, %d CVEs named\n", sum.Sources, sum.CVEs)
	for _, s := range r.Sources {
		line := fmt.Sprintf("  %s %s -> %s", s.Source, cmp.Or(s.From, "(none)"), cmp.Or(s.To, "(none)"))
		if len(s.CVEs) > 0 {
			line += ": " + strings.Join(s.CVEs, " ")
		}
		fmt.Fprintln(w, line)
	}
}

// indexUpToDate is upToDate for a multi-architecture build: every image
// at refs must be an index of one image per plan, in the plans' order,
// each recording the inputs of its architecture's plan. It returns the
// first index's digest, or "" (saying why on stderr) when one must be
// built.
func indexUpToDate(ctx context.Context, o *pipeline.Options, plans []*plan.Plan, refs []string, stderr io.Writer) (string, error) {
	digest := ""
	for _, ref := range refs {
		sources, err := oci.OpenAll(ctx, ref, o.InsecureRegistry)
		if errors.Is(err, oci.ErrNoImage) {
			fmt.Fprintf(stderr, "%s: no image yet: building\n", ref)
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if len(sources) != len(plans) {
			fmt.Fprintf(stderr, "%s has %d images, the build %d: building\n", ref, len(sources), len(plans))
			return "", nil
		}
		for i, p := range plans {
			oa := *o
			oa.Arch = p.Arch
			inputs := oa.Inputs(p)
			if _, same, err := sameInputs(sources[i].Image, ref+" ("+p.Arch+")", inputs, stderr); err != nil || !same {
				return "", err
			}
		}
		if digest == "" {
			d, err := oci.Digest(ctx, ref, o.InsecureRegistry)
			if err != nil {
				return "", err
			}
			digest = d.String()
		}
	}
	fmt.Fprintf(stderr, "up to date: not rebuilding\n")
	return digest, nil
}
