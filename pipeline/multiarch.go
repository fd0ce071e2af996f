package pipeline

import (
	"context"

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
