package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrNoImage means a reference names no image: the layout, the tag, or
// the index's image for the platform wanted does not exist (yet).
var ErrNoImage = errors.New("no image")

// Source is an image read for inspection: from a registry or from an OCI
// image layout.
type Source struct {
	Name   string // as the user gave it
	Image  v1.Image
	Digest v1.Hash
	// Platform is the platform an index gives Image (see OpenAll); nil
	// for an image read on its own.
	Platform *v1.Platform

	// referrers returns the artifacts of artifactType ("": of any type)
	// attached to Image.
	referrers func(artifactType string) ([]v1.Image, error)
}

// Open reads the image ref names, the one grammar every command that
// reads an image takes: "oci:DIR[:TAG]" for an OCI image layout (TAG may
// be left out when it holds one image; see splitLayout), else a registry
// reference, read with the docker config's credentials and under the same
// plain-HTTP rule as Push. A reference to a multi-architecture index is
// an error; see OpenPlatform. Only the manifest is fetched here.
func Open(ctx context.Context, ref string, insecure bool) (*Source, error) {
	return open(ctx, ref, insecure, nil)
}

// OpenPlatform is Open where ref may name a multi-architecture index: it
// reads the index's image for platform, and ErrNoImage if it has none. A
// nil platform is Open's rule.
func OpenPlatform(ctx context.Context, ref string, insecure bool, platform *v1.Platform) (*Source, error) {
	return open(ctx, ref, insecure, platform)
}

func open(ctx context.Context, ref string, insecure bool, platform *v1.Platform) (*Source, error) {
	var s *Source
	var err error
	if p, ok := strings.CutPrefix(ref, OCILayout+":"); ok {
		s, err = openLayout(p, platform)
	} else {
		s, err = openRemote(ctx, ref, insecure, platform)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	s.Name = ref
	if s.Digest, err = s.Image.Digest(); err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return s, nil
}

func openRemote(ctx context.Context, ref string, insecure bool, platform *v1.Platform) (*Source, error) {
	r, err := newRegistryRef(ctx, ref, insecure)
	if err != nil {
		return nil, err
	}
	imgOpts := r.opts
	if platform != nil {
		imgOpts = append(imgOpts[:len(imgOpts):len(imgOpts)], remote.WithPlatform(*platform))
	}
	img, err := remote.Image(r.ref, imgOpts...)
	if err != nil {
		if notFound(err) || platform != nil && strings.Contains(err.Error(), "no child with platform") {
			return nil, fmt.Errorf("%w: %w", ErrNoImage, r.readError(err))
		}
		return nil, r.readError(err)
	}
	return r.source(img), nil
}

// registryRef is a registry reference with what every request for it
// takes: the options (credentials resolved once, the plain-HTTP rule),
// and whether they are anonymous, for the one-line form of its errors.
type registryRef struct {
	ref       name.Reference
	opts      []remote.Option
	anonymous bool
}

func newRegistryRef(ctx context.Context, ref string, insecure bool) (*registryRef, error) {
	r, err := ParseReference(ref, insecure)
	if err != nil {
		return nil, err
	}
	opts, auth, err := remoteOptions(ctx, r.Context(), insecure, nil, newTransport())
	if err != nil {
		return nil, err
	}
	return &registryRef{ref: r, opts: opts, anonymous: auth == authn.Anonymous}, nil
}

// readError is err, a failed read from r's registry, said in one line as
// a failed push is, though registries answer with whole documents.
func (r *registryRef) readError(err error) error {
	return &remoteError{describe(err, r.ref.Context().RegistryStr(), 1, r.anonymous), err}
}

// notFound says whether err is a registry's 404.
func notFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// source is the Source of img, an image of r's repository, whose
// referrers the registry is asked for.
func (r *registryRef) source(img v1.Image) *Source {
	s := &Source{Image: img}
	s.referrers = func(typ string) ([]v1.Image, error) {
		h, err := img.Digest()
		if err != nil {
			return nil, err
		}
		ropts := r.opts[:len(r.opts):len(r.opts)]
		if typ != "" {
			ropts = append(ropts, remote.WithFilter("artifactType", typ))
		}
		ii, err := remote.Referrers(r.ref.Context().Digest(h.String()), ropts...)
		if err != nil {
			return nil, r.readError(err)
		}
		im, err := ii.IndexManifest()
		if err != nil {
			return nil, err
		}
		var out []v1.Image
		for _, d := range im.Manifests {
			if typ != "" && d.ArtifactType != typ || d.ArtifactType == "" {
				continue
			}
			a, err := remote.Image(r.ref.Context().Digest(d.Digest.String()), r.opts...)
			if err != nil {
				return nil, r.readError(err)
			}
			out = append(out, a)
		}
		return out, nil
	}
	return s
}

// A remoteError is a failed read from a registry, said in one line; it
// unwraps to what go-containerregistry returned.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.err }

// splitLayout splits the DIR[:TAG] of an "oci:" reference. DIR may hold
// colons itself, as an --output oci:DIR may: a spec that names a directory
// as it is, is DIR; else TAG is what follows the last colon.
func splitLayout(spec string) (dir, tag string) {
	if fi, err := os.Stat(spec); err == nil && fi.IsDir() {
		return spec, ""
	}
	if i := strings.LastIndexByte(spec, ':'); i > 0 {
		return spec[:i], spec[i+1:]
	}
	return spec, ""
}

// layoutEntry is what DIR[:TAG] names in an OCI layout: its index, and
// the descriptor of the image or image index tagged TAG, or of its only
// one. Artifacts attached to images (their SBOM, say) are not candidates.
type layoutEntry struct {
	path  layout.Path
	index v1.ImageIndex
	im    *v1.IndexManifest
	desc  v1.Descriptor
}

func findInLayout(spec string) (*layoutEntry, error) {
	dir, tag := splitLayout(spec)
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is not an OCI layout (no index.json)", ErrNoImage, dir)
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
			continue
		}
		// go-containerregistry gives images an artifactType too (their
		// config's media type): artifacts are what has a subject.
		if d.MediaType.IsImage() {
			if m, err := manifestIn(lp, d.Digest); err != nil || m.Subject != nil {
				continue
			}
		}
		if tag == "" || d.Annotations[AnnotationRefName] == tag {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0 && tag != "":
		return nil, fmt.Errorf("%w tagged %q in %s", ErrNoImage, tag, dir)
	case len(found) == 0:
		return nil, fmt.Errorf("%w in %s", ErrNoImage, dir)
	case len(found) > 1:
		return nil, fmt.Errorf("%s has %d images: name one as oci:%s:TAG", dir, len(found), dir)
	}
	return &layoutEntry{path: lp, index: ii, im: im, desc: found[0]}, nil
}

// openLayout reads DIR[:TAG], the image of the OCI layout DIR tagged TAG,
// or its only image; where that is an index, its image for platform.
func openLayout(spec string, platform *v1.Platform) (*Source, error) {
	e, err := findInLayout(spec)
	if err != nil {
		return nil, err
	}
	lp, ii, im := e.path, e.index, e.im
	var img v1.Image
	switch {
	case !e.desc.MediaType.IsIndex():
		img, err = ii.Image(e.desc.Digest)
	case platform == nil:
		return nil, fmt.Errorf("%s holds a multi-architecture index", OCILayout+":"+spec)
	default:
		img, err = indexImage(ii, e.desc.Digest, *platform)
	}
	if err != nil {
		return nil, err
	}
	subject, err := img.Digest()
	if err != nil {
		return nil, err
	}
	s := &Source{Image: img}
	s.referrers = func(typ string) ([]v1.Image, error) {
		var out []v1.Image
		for _, d := range im.Manifests {
			if typ != "" && d.ArtifactType != typ || d.ArtifactType == "" {
				continue
			}
			m, err := manifestIn(lp, d.Digest)
			if err != nil {
				return nil, err
			}
			if m.Subject == nil || m.Subject.Digest != subject {
				continue
			}
			a, err := ii.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
		return out, nil
	}
	return s, nil
}

// indexImage returns the image for platform of the index h in the
// layout ii.
func indexImage(ii v1.ImageIndex, h v1.Hash, platform v1.Platform) (v1.Image, error) {
	idx, err := ii.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Satisfies(platform) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("%w for %s in index %s", ErrNoImage, platform.String(), h)
}

// OpenAll is Open where ref may name a multi-architecture index: then it
// reads each of the index's images, in the index's order, each with the
// Platform the index gives it.
func OpenAll(ctx context.Context, ref string, insecure bool) ([]*Source, error) {
	if spec, ok := strings.CutPrefix(ref, OCILayout+":"); ok {
		return openAllLayout(ctx, spec, ref)
	}
	r, err := newRegistryRef(ctx, ref, insecure)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	// One manifest request says image or index, and names the index's.
	d, err := remote.Get(r.ref, r.opts...)
	if err != nil {
		if notFound(err) {
			err = fmt.Errorf("%w: %w", ErrNoImage, r.readError(err))
		} else {
			err = r.readError(err)
		}
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	var images []v1.Image
	var platforms []*v1.Platform
	if !d.MediaType.IsIndex() {
		img, err := d.Image()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		images = append(images, img)
	} else {
		idx, err := d.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		children, err := imagesOf(idx)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		for _, c := range children {
			img, err := idx.Image(c.Digest)
			if err != nil {
				return nil, fmt.Errorf("image %s: %s: %w", ref, c.Platform, r.readError(err))
			}
			images, platforms = append(images, img), append(platforms, c.Platform)
		}
	}
	var all []*Source
	for i, img := range images {
		s := r.source(img)
		s.Name = ref
		if platforms != nil {
			s.Platform = platforms[i]
		}
		if s.Digest, err = img.Digest(); err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		all = append(all, s)
	}
	return all, nil
}

// openAllLayout is OpenAll for oci:spec.
func openAllLayout(ctx context.Context, spec, ref string) ([]*Source, error) {
	e, err := findInLayout(spec)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if !e.desc.MediaType.IsIndex() {
		s, err := open(ctx, ref, false, nil)
		if err != nil {
			return nil, err
		}
		return []*Source{s}, nil
	}
	idx, err := e.index.ImageIndex(e.desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	children, err := imagesOf(idx)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	var all []*Source
	for _, c := range children {
		s, err := open(ctx, ref, false, c.Platform)
		if err != nil {
			return nil, err
		}
		s.Platform = c.Platform
		all = append(all, s)
	}
	return all, nil
}

// imagesOf returns the descriptors of idx's images that have a platform.
func imagesOf(idx v1.ImageIndex) ([]v1.Descriptor, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var images []v1.Descriptor
	for _, d := range im.Manifests {
		// BuildKit lists attestations as images of platform unknown/unknown.
		if d.MediaType.IsImage() && d.Platform != nil && d.Platform.OS != "unknown" {
			images = append(images, d)
		}
	}
	if len(images) == 0 {
		return nil, errors.New("an index of no image with a platform")
	}
	return images, nil
}

// Digest returns the digest of what ref names, an image or an index, as
// its registry or layout holds it.
func Digest(ctx context.Context, ref string, insecure bool) (v1.Hash, error) {
	if spec, ok := strings.CutPrefix(ref, OCILayout+":"); ok {
		e, err := findInLayout(spec)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("image %s: %w", ref, err)
		}
		return e.desc.Digest, nil
	}
	r, err := newRegistryRef(ctx, ref, insecure)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := remote.Head(r.ref, r.opts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image %s: %w", ref, r.readError(err))
	}
	return d.Digest, nil
}

// Tags lists the tags of the registry repository repo ("host/path", no
// tag), with the credentials and plain-HTTP rule of Open.
func Tags(ctx context.Context, repo string, insecure bool) ([]string, error) {
	r, err := newRegistryRef(ctx, repo+":latest", insecure)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", repo, err)
	}
	tags, err := remote.List(r.ref.Context(), r.opts...)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", repo, r.readError(err))
	}
	slices.Sort(tags)
	return tags, nil
}

// Artifacts returns every artifact attached to the image.
func (s *Source) Artifacts() ([]v1.Image, error) {
	arts, err := s.referrers("")
	if err != nil {
		return nil, fmt.Errorf("image %s: referrers: %w", s.Name, err)
	}
	return arts, nil
}

// ErrNoArtifact is returned by Artifact when none of the type is attached.
var ErrNoArtifact = errors.New("no artifact attached")

// Artifact returns the data of the artifact of artifactType attached to
// the image, or ErrNoArtifact.
func (s *Source) Artifact(artifactType string) ([]byte, error) {
	a, err := s.Referrer(artifactType)
	if err != nil {
		return nil, err
	}
	data, err := ArtifactData(a)
	if err != nil {
		return nil, fmt.Errorf("image %s: %s: %w", s.Name, artifactType, err)
	}
	return data, nil
}

// Referrer returns the artifact of artifactType attached to the image, or
// ErrNoArtifact.
func (s *Source) Referrer(artifactType string) (v1.Image, error) {
	arts, err := s.referrers(artifactType)
	if err != nil {
		return nil, fmt.Errorf("image %s: referrers: %w", s.Name, err)
	}
	if len(arts) == 0 {
		return nil, fmt.Errorf("image %s: %w of type %s", s.Name, ErrNoArtifact, artifactType)
	}
	return arts[0], nil
}
