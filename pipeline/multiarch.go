package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
)

// Index builds the image of each plan, each as a build of o with that
// plan's --arch alone builds it (so with the same digest), makes their
// OCI image index, writes it to o.Outputs (OCI layouts only) with each
// image's audit artifacts, pushes it to o.Push, and returns the index
// digest. The plans are ResolveArchs's; o.Arch, o.RootfsDir and o.SBOM
// are ignored.
func Index(ctx context.Context, o *Options, c *apt.Client, plans []*plan.Plan) (digest v1.Hash, err error) {
	for _, out := range o.Outputs {
		if out.Type != oci.OCILayout {
			return v1.Hash{}, fmt.Errorf("output %s: holds one image, not a multi-architecture index", out)
		}
	}
	// Say what the host lacks, and check every architecture's
	// destinations, before building any.
	for _, p := range plans {
		if err := o.checkArch(p.Arch); err != nil {
			return v1.Hash{}, err
		}
	}
	archs := make([]string, len(plans))
	opts := make([]*Options, len(plans))
	for i, p := range plans {
		oa := *o
		oa.Arch, oa.RootfsDir, oa.SBOM, oa.Outputs, oa.Push = p.Arch, "", "", nil, nil
		archs[i], opts[i] = p.Arch, &oa
		if !o.AllowDowngrade {
			if err := NoDowngrade(ctx, o, p); err != nil {
				return v1.Hash{}, err
			}
		}
	}

	tmp, remove, err := workDir(o, "basebuild-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer func() {
		if rerr := remove(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	images := make([]v1.Image, len(archs))
	arts := make([][]v1.Image, len(archs))
	for i, arch := range archs {
		dir := filepath.Join(tmp, arch)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return v1.Hash{}, err
		}
		o.logf("building %s", arch)
		img, a, closeLayer, err := buildImage(ctx, opts[i], c, plans[i], dir)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("%s: %w", arch, err)
		}
		defer closeLayer()
		images[i], arts[i] = img, a
		if d, err := img.Digest(); err == nil {
			o.logf("%s: %s", arch, d)
		}
	}
	ii, err := oci.NewIndex(archs, images)
	if err != nil {
		return v1.Hash{}, err
	}
	if digest, err = ii.Digest(); err != nil {
		return v1.Hash{}, err
	}

	var all []v1.Image
	for _, a := range arts {
		all = append(all, a...)
	}
	if err := publish(ctx, o, built{index: ii, arts: all}, digest); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}
