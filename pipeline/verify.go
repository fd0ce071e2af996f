package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/rootfs"
)

// ErrNoImage means a reference names no image: the tag or the layout's
// image does not exist (yet).
var ErrNoImage = errors.New("no such image")

// ReadReference returns the image ref names: "oci:DIR[:TAG]" for an OCI
// layout (TAG may be left out when it holds one image), else a registry
// reference, read as oci.RemoteImage reads it. Only the manifest is
// fetched here.
func ReadReference(ctx context.Context, ref string, insecure bool) (v1.Image, error) {
	return readReference(ctx, ref, insecure, "")
}

// readReference reads ref as ReadReference does; where ref names a
// multi-architecture index, it returns the index's image for the Debian
// architecture arch (ErrNoImage if it has none), or fails if arch is "".
func readReference(ctx context.Context, ref string, insecure bool, arch string) (v1.Image, error) {
	var platform *v1.Platform
	if arch != "" {
		p, err := oci.Platform(arch)
		if err != nil {
			return nil, err
		}
		platform = &p
	}
	if dir, ok := strings.CutPrefix(ref, "oci:"); ok {
		img, err := readLayout(dir, platform)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		return img, nil
	}
	r, err := oci.ParseReference(ref, insecure)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	img, err := oci.RemoteImage(ctx, r, insecure, platform)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("image %s: %w", ref, ErrNoImage)
		}
		if platform != nil && strings.Contains(err.Error(), "no child with platform") {
			return nil, fmt.Errorf("image %s: %w", ref, ErrNoImage)
		}
		// One line, though registries answer with whole documents.
		return nil, fmt.Errorf("image %s: %s", ref, strings.Join(strings.Fields(err.Error()), " "))
	}
	return img, nil
}

// readLayout reads DIR[:TAG], an OCI layout and its image tagged TAG; if
// TAG names an index, its image for platform.
func readLayout(spec string, platform *v1.Platform) (v1.Image, error) {
	dir, tag := spec, ""
	if i := strings.LastIndexByte(spec, ':'); i >= 0 && !strings.Contains(spec[i:], "/") {
		dir, tag = spec[:i], spec[i+1:]
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoImage
	}
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range m.Manifests {
		// Artifacts attached to the image (its SBOM) have no name.
		if name := d.Annotations[oci.AnnotationRefName]; name != "" && (tag == "" || name == tag) {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0:
		return nil, ErrNoImage
	case len(found) > 1:
		return nil, fmt.Errorf("%d images in the layout: name one as oci:%s:TAG", len(found), dir)
	case !found[0].MediaType.IsIndex():
		return ii.Image(found[0].Digest)
	case platform == nil:
		return nil, fmt.Errorf("oci:%s holds a multi-architecture index", spec)
	}
	idx, err := ii.ImageIndex(found[0].Digest)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Satisfies(*platform) {
			return idx.Image(d.Digest)
		}
	}
	return nil, ErrNoImage
}

// NoDowngrade refuses to replace the image at a --push or oci: destination
// of o with one built from older inputs than set's: an earlier epoch, or
// a package at a lower version (an archive replayed to roll back security
// updates, say). A destination holding a multi-architecture index is
// compared by its image for set's architecture. A destination without an
// image, or whose image records no inputs, has nothing to lose.
func NoDowngrade(ctx context.Context, o *Options, set *apt.Set) error {
	refs := append([]string(nil), o.Push...)
	for _, out := range o.Outputs {
		if out.Type == oci.OCILayout {
			refs = append(refs, "oci:"+out.Path+":"+o.Tag())
		}
	}
	inputs := o.Inputs(set)
	for _, ref := range refs {
		img, err := readReference(ctx, ref, o.InsecureRegistry, set.Arch)
		if errors.Is(err, ErrNoImage) {
			continue
		}
		if err != nil {
			return err
		}
		old, err := ImageInputs(img)
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
	Files   []rootfs.Difference
	Changes []string
	// NoInputs says the reference records no inputs to compare with.
	NoInputs bool
}

// Same reports whether the rebuilt image is the reference.
func (v *Verification) Same() bool { return v.Built == v.Reference }

// Verify builds the image of set as Image does, without o's outputs and
// pushes, and compares it with the image want.
func Verify(ctx context.Context, o *Options, c *apt.Client, set *apt.Set, want v1.Image) (_ *Verification, err error) {
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

	got, err := readLayout(filepath.Join(tmp, "layout"), nil)
	if err != nil {
		return nil, fmt.Errorf("rebuilt image: %w", err)
	}
	gotTree, err := layerTree(got)
	if err != nil {
		return nil, fmt.Errorf("rebuilt image: %w", err)
	}
	wantTree, err := layerTree(want)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", wantDigest, err)
	}
	v.Files = rootfs.Compare(wantTree, gotTree)

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
func layerTree(img v1.Image) (map[string]rootfs.Entry, error) {
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
	return rootfs.ReadTar(rc)
}
