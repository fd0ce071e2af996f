package pipeline

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/plan"
)

// Index builds the image of each plan, each as a build of o with that
// plan's --arch alone builds it (so with the same digest), makes their
// OCI image index, writes it to o.Outputs (OCI layouts only) with each
// image's audit artifacts, pushes it to o.Push, and returns the index
// digest. The plans are ResolveArchs's; o.Arch, o.RootfsDir and o.SBOM
// are ignored.
func Index(ctx context.Context, o *Options, c *apt.Client, plans []*plan.Plan) (v1.Hash, error) {
	digests, err := Build(ctx, c, []Target{{Options: o, Plans: plans}})
	if err != nil {
		return v1.Hash{}, err
	}
	return digests[0], nil
}

// forArch is o for the image of arch in a multi-architecture build: as a
// build with that --arch alone, publishing nothing itself.
func (o *Options) forArch(arch string) *Options {
	oa := *o
	oa.Arch, oa.RootfsDir, oa.SBOM, oa.Outputs, oa.Push = arch, "", "", nil, nil
	return &oa
}

// VerifyIndex builds the image of each plan as Index does, without o's
// outputs and pushes, and compares it with wants[i], the reference's
// image of that plan's architecture (see Verify). It returns the
// comparisons and the digest of the index of the images built, in the
// plans' order.
func VerifyIndex(ctx context.Context, o *Options, c *apt.Client, plans []*plan.Plan, wants []v1.Image) (digest v1.Hash, vs []*Verification, err error) {
	// A target each, built as a build of its --arch alone: Index's images.
	targets := make([]Target, len(plans))
	for i, p := range plans {
		targets[i] = Target{Options: o.forArch(p.Arch), Plans: []*plan.Plan{p}}
	}
	err = buildTargets(ctx, c, targets, func(images, _ [][]v1.Image) error {
		built := make([]v1.Image, len(plans))
		for i, p := range plans {
			built[i] = images[i][0]
			v, err := compare(targets[i].Options, p, built[i], wants[i])
			if err != nil {
				return fmt.Errorf("%s: %w", p.Arch, err)
			}
			vs = append(vs, v)
		}
		ii, err := newIndex(plans, built)
		if err == nil {
			digest, err = ii.Digest()
		}
		return err
	})
	return digest, vs, err
}
