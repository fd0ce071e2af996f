package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
func Verify(ctx context.Context, o *Options, c *apt.Client, set *plan.Plan, want v1.Image) (_ *Verification, err error) {
	wantDigest, err := want.Digest()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(o.TempDir, "basebuild-verify-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()
	oo := *o
	oo.Outputs = []oci.Output{{Type: oci.OCILayout, Path: filepath.Join(tmp, "layout")}}
	oo.Push = nil
	oo.TempDir = tmp
	digest, err := Image(ctx, &oo, c, set)
	if err != nil {
		return nil, err
	}
	v := &Verification{Built: digest, Reference: wantDigest}
	if v.Same() {
		return v, nil
	}

	got, err := oci.Open(ctx, oci.OCILayout+":"+filepath.Join(tmp, "layout"), false)
	if err != nil {
		return nil, fmt.Errorf("rebuilt image: %w", err)
	}
	gotTree, err := layerTree(got.Image)
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
