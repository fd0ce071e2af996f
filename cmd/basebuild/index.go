package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/pipeline"
)

const indexUsage = `Usage: basebuild index [--push REF]… [--output oci:DIR]… IMAGE…

Assembles the OCI image index of images built one architecture each, on
each architecture's own hardware, and already published: each IMAGE a
registry reference or oci:DIR[:TAG], in the order the index lists them.
The index is the one 'basebuild --arch A,B,…' writes on one host for the
same inputs; its digest is the last line on stdout. Each image must
record the same inputs as the others but for the architecture (suite,
snapshot, epoch, variant, options, basebuild's version), and no
architecture may repeat: a child that disagrees is refused, naming the
input. --output takes OCI layouts only (oci:DIR, tagged as the build
tags: SUITE or SUITE-slim); each image's attached artifacts go with it.
Exit status: 0 written, 1 failed, 2 bad command line.

Flags:
`

func runIndex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("basebuild index", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	push := fs.StringArray("push", nil, "push the index to this registry reference; repeatable")
	outputs := fs.StringArray("output", nil, "write the index to this OCI layout, oci:DIR; repeatable")
	insecure := fs.Bool("insecure-registry", false, "allow plain HTTP to registries not on loopback, without credentials (loopback registries always get it)")
	verbose := fs.BoolP("verbose", "v", false, "say what is written and pushed")
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: index: %v (see basebuild index --help)", errUsage, err)
	}
	if *help {
		fmt.Fprint(stdout, indexUsage+fs.FlagUsages())
		return pflag.ErrHelp
	}
	switch {
	case fs.NArg() == 0:
		return fmt.Errorf("%w: index: no IMAGE (see basebuild index --help)", errUsage)
	case len(*push)+len(*outputs) == 0:
		return fmt.Errorf("%w: index: nowhere to put it: give --push or --output", errUsage)
	}
	o := &pipeline.Options{}
	o.InsecureRegistry = *insecure
	if *verbose {
		o.Log = stderr
	}
	for _, s := range *outputs {
		out, err := oci.ParseOutput(s)
		if err == nil && out.Type != oci.OCILayout {
			err = fmt.Errorf("holds one image, not an index: want oci:DIR")
		}
		if err == nil {
			err = out.Check()
		}
		if err != nil {
			return fmt.Errorf("%w: --output %s: %v", errUsage, s, err)
		}
		o.Outputs = append(o.Outputs, out)
	}
	for _, ref := range *push {
		if _, err := oci.ParseReference(ref, *insecure); err != nil {
			return fmt.Errorf("%w: --push %q: %v", errUsage, ref, err)
		}
		o.Push = append(o.Push, ref)
	}

	var children []pipeline.Child
	for _, image := range fs.Args() {
		sources, err := oci.OpenAll(ctx, image, *insecure)
		if err != nil {
			return err
		}
		if len(sources) != 1 {
			return fmt.Errorf("image %s is an index already, of %d images: name each architecture's image", image, len(sources))
		}
		s := sources[0]
		inputs, err := pipeline.ImageInputs(s.Image)
		if err != nil {
			return fmt.Errorf("image %s: %w", image, err)
		}
		arts, err := s.Artifacts()
		if err != nil {
			return err
		}
		children = append(children, pipeline.Child{Name: image, Image: s.Image, Inputs: inputs, Arts: arts})
	}
	digest, err := pipeline.AssembleIndex(ctx, o, children)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, digest)
	return nil
}
