package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
)

// NoDowngrade refuses to replace the image at a --push or oci: destination
// of o with one built from older inputs than set's: an earlier epoch, or
// a package at a lower version (an archive replayed to roll back security
// updates, say). A destination holding a multi-architecture index is
// compared by its image for set's architecture. A destination without an
// image, or whose image records no inputs, has nothing to lose.
func NoDowngrade(ctx context.Context, o *Options, set *plan.Plan) error {
	refs := append([]string(nil), o.Push...)
	for _, out := range o.Outputs {
		if out.Type == oci.OCILayout {
			refs = append(refs, "oci:"+out.Path+":"+o.Tag())
		}
	}
	var platform *v1.Platform
	if set.Arch != "" {
		p, err := oci.Platform(set.Arch)
		if err != nil {
			return err
		}
		platform = &p
	}
	inputs := o.Inputs(set)
	for _, ref := range refs {
		src, err := oci.OpenPlatform(ctx, ref, o.InsecureRegistry, platform)
		if errors.Is(err, oci.ErrNoImage) {
			continue
		}
		if err != nil {
			return err
		}
		old, err := ImageInputs(src.Image)
		if err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		if downs := Downgrades(old, inputs); len(downs) > 0 {
			return fmt.Errorf("image %s is newer than this build (%s): not replacing it without --allow-downgrade", ref, strings.Join(downs, ", "))
		}
	}
	return nil
}

// ImageInputs returns the inputs img records (see Inputs), or "" if it
// records none, as images of other builders do.
func ImageInputs(img v1.Image) (string, error) {
	m, err := img.Manifest()
	if err != nil {
		return "", err
	}
	return m.Annotations[AnnotationInputs], nil
}

// Verification is the result of Verify.
type Verification struct {
	Built, Reference v1.Hash
	// Files lists the differences between the layers, Changes the
	// differences between the recorded inputs (see InputChanges); both
	// are empty when the digests are equal.
	Files   []oci.Difference
	Changes []string
	// NoInputs says the reference records no inputs to compare with.
	NoInputs bool
}

// Same reports whether the rebuilt image is the reference.
func (v *Verification) Same() bool { return v.Built == v.Reference }

// Verify builds the image of set as Image does, without o's outputs and
// pushes, and compares it with the image want.
func Verify(ctx context.Context, o *Options, c *apt.Client, set *plan.Plan, want v1.Image) (v *Verification, err error) {
	oo := *o
	oo.Outputs, oo.Push, oo.RootfsDir = nil, nil, ""
	err = buildTargets(ctx, c, []Target{{Options: &oo, Plans: []*plan.Plan{set}}}, func(images, _ [][]v1.Image) (err error) {
		v, err = compare(o, set, images[0][0], want)
		return err
	})
	return v, err
}

// compare compares img, built of set as o says, with want: their
// digests and, when they differ, their files and recorded inputs.
func compare(o *Options, set *plan.Plan, img, want v1.Image) (*Verification, error) {
	built, err := img.Digest()
	if err != nil {
		return nil, err
	}
	wantDigest, err := want.Digest()
	if err != nil {
		return nil, err
	}
	v := &Verification{Built: built, Reference: wantDigest}
	if v.Same() {
		return v, nil
	}
	gotTree, err := layerTree(img)
	if err != nil {
		return nil, fmt.Errorf("rebuilt image: %w", err)
	}
	wantTree, err := layerTree(want)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", wantDigest, err)
	}
	v.Files = oci.Compare(wantTree, gotTree)

	wantInputs, err := ImageInputs(want)
	if err != nil {
		return nil, err
	}
	if wantInputs == "" {
		v.NoInputs = true
	} else {
		v.Changes = InputChanges(wantInputs, o.Inputs(set))
	}
	return v, nil
}

// layerTree reads the entries of img's single layer.
func layerTree(img v1.Image) (map[string]oci.Entry, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != 1 {
		return nil, fmt.Errorf("%d layers, basebuild makes one", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return oci.ReadTar(rc)
}
