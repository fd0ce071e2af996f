package oci

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NewIndex returns the OCI image index of images, the image of the Debian
// architecture archs[i] being images[i], each described with its
// architecture's Platform, in that order.
func NewIndex(archs []string, images []v1.Image) (v1.ImageIndex, error) {
	if len(archs) != len(images) {
		return nil, fmt.Errorf("index: %d architectures, %d images", len(archs), len(images))
	}
	ii := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	seen := map[string]bool{}
	for i, img := range images {
		p, err := Platform(archs[i])
		if err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		if seen[archs[i]] {
			return nil, fmt.Errorf("index: two images for %s", archs[i])
		}
		seen[archs[i]] = true
		ii = mutate.AppendManifests(ii, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return ii, nil
}

// WriteIndex writes the index ii to o, which must be an OCI layout, as
// Write writes an image: atomically, tagged with ref's tag, replacing what
// the layout had of that tag.
func (o Output) WriteIndex(ii v1.ImageIndex, ref string) error {
	if err := o.writeIndex(ii, ref); err != nil {
		return fmt.Errorf("output %s: %w", o, err)
	}
	return nil
}

func (o Output) writeIndex(ii v1.ImageIndex, ref string) error {
	if o.Type != OCILayout {
		return fmt.Errorf("a multi-architecture index can only be written to an OCI layout (oci:DIR)")
	}
	if err := o.check(); err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	if !strings.HasSuffix(ref, ":"+tag.TagStr()) {
		return fmt.Errorf("image name %q: no tag", ref)
	}
	return o.writeLayoutOf(ii, tag.TagStr(), func(lp layout.Path) error {
		return lp.AppendIndex(ii, layout.WithAnnotations(map[string]string{AnnotationRefName: tag.TagStr()}))
	})
}

// PushIndex uploads the index ii and its images to the registry and tags
// it as ref, as Push does an image (retries, one-line errors), returning
// the index digest.
func PushIndex(ctx context.Context, ii v1.ImageIndex, ref string, o PushOptions) (v1.Hash, error) {
	return push(ctx, ref, o, ii.Digest, func(r name.Reference, opts ...remote.Option) error {
		return remote.WriteIndex(r, ii, opts...)
	})
}
