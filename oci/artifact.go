package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/basebuild/basebuild/internal/atomicfile"
)

// emptyConfig is the OCI 1.1 empty descriptor's content: artifacts have
// no image config.
var emptyConfig = []byte("{}")

const emptyConfigType types.MediaType = "application/vnd.oci.empty.v1+json"

// NewArtifact returns an OCI 1.1 artifact of artifactType whose one blob is
// data, attached to subject: registries list it among subject's referrers.
func NewArtifact(artifactType string, data []byte, subject v1.Image, annotations map[string]string) (v1.Image, error) {
	return NewArtifactOf(artifactType, []Blob{BytesBlob(types.MediaType(artifactType), data, "")}, subject, annotations)
}

// A Blob is one blob of an artifact: its descriptor, and how to read its
// content, which must be the descriptor's.
type Blob struct {
	Descriptor v1.Descriptor
	Open       func() (io.ReadCloser, error)
}

// BytesBlob is a blob of media type mt holding data; a title other than ""
// is its org.opencontainers.image.title annotation.
func BytesBlob(mt types.MediaType, data []byte, title string) Blob {
	h, n, _ := v1.SHA256(bytes.NewReader(data))
	return Blob{
		Descriptor: v1.Descriptor{MediaType: mt, Digest: h, Size: n, Annotations: titled(title)},
		Open:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

// FileBlob is a blob of media type mt whose content is the file at path,
// of size bytes with the SHA-256 sum (hex), read only when the blob is
// written: a large artifact is streamed, never held in memory.
func FileBlob(mt types.MediaType, path, sum string, size int64, title string) Blob {
	return Blob{
		Descriptor: v1.Descriptor{MediaType: mt, Digest: v1.Hash{Algorithm: "sha256", Hex: sum}, Size: size, Annotations: titled(title)},
		Open:       func() (io.ReadCloser, error) { return os.Open(path) },
	}
}

// AnnotationTitle names a blob: a file name or the URL it came from.
const AnnotationTitle = "org.opencontainers.image.title"

func titled(title string) map[string]string {
	if title == "" {
		return nil
	}
	return map[string]string{AnnotationTitle: title}
}

// NewArtifactOf returns an OCI 1.1 artifact of artifactType holding blobs,
// in order, attached to subject. Blobs with the same content are stored
// once, as registries and layouts store any blob.
func NewArtifactOf(artifactType string, blobs []Blob, subject v1.Image, annotations map[string]string) (v1.Image, error) {
	sd, err := partial.Descriptor(subject)
	if err != nil {
		return nil, err
	}
	a := &artifact{blobs: map[v1.Hash]Blob{}, config: emptyConfig}
	a.manifest = &v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        descriptorOf(emptyConfigType, emptyConfig),
		Subject:       &v1.Descriptor{MediaType: sd.MediaType, Digest: sd.Digest, Size: sd.Size},
		Annotations:   annotations,
	}
	for _, b := range blobs {
		a.manifest.Layers = append(a.manifest.Layers, b.Descriptor)
		a.blobs[b.Descriptor.Digest] = b
	}
	if a.raw, err = json.Marshal(a.manifest); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(a)
}

func descriptorOf(mt types.MediaType, data []byte) v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(data))
	return v1.Descriptor{MediaType: mt, Digest: h, Size: n}
}

// artifact is the core of an image whose manifest is not an image's.
type artifact struct {
	manifest *v1.Manifest
	raw      []byte
	config   []byte
	blobs    map[v1.Hash]Blob
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return a.manifest.MediaType, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.raw, nil }
func (a *artifact) ArtifactType() (string, error)       { return a.manifest.ArtifactType, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	b, ok := a.blobs[h]
	if !ok {
		return nil, fmt.Errorf("artifact has no blob %s", h)
	}
	return &blob{b}, nil
}

// blob is an artifact's blob as a layer that is stored as is.
type blob struct{ Blob }

func (b *blob) Digest() (v1.Hash, error)             { return b.Descriptor.Digest, nil }
func (b *blob) Compressed() (io.ReadCloser, error)   { return b.Open() }
func (b *blob) Size() (int64, error)                 { return b.Descriptor.Size, nil }
func (b *blob) MediaType() (types.MediaType, error)  { return b.Descriptor.MediaType, nil }
func (b *blob) Uncompressed() (io.ReadCloser, error) { return b.Compressed() }
func (b *blob) DiffID() (v1.Hash, error)             { return b.Descriptor.Digest, nil }

// ArtifactData returns the one blob of an artifact made by NewArtifact.
func ArtifactData(a v1.Image) ([]byte, error) {
	m, err := a.Manifest()
	if err != nil {
		return nil, err
	}
	if len(m.Layers) != 1 {
		return nil, fmt.Errorf("artifact has %d blobs, want 1", len(m.Layers))
	}
	rc, err := OpenBlob(a, m.Layers[0])
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// OpenBlob returns the content of the blob d of the artifact a, checked
// as it is read: reading past its end, or to its end, fails unless it has
// d's size and digest, so that a blob altered where it is stored (a
// layout's file, say) is never taken for d's.
func OpenBlob(a v1.Image, d v1.Descriptor) (io.ReadCloser, error) {
	l, err := a.LayerByDigest(d.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	return &checked{rc: rc, want: d, h: sha256.New()}, nil
}

// checked reads a blob and fails at its end, or past it, unless it is
// the descriptor's.
type checked struct {
	rc   io.ReadCloser
	want v1.Descriptor
	h    hash.Hash
	n    int64
}

func (c *checked) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	switch {
	case c.n > c.want.Size:
		return n, fmt.Errorf("blob %s: more than its %d bytes", c.want.Digest, c.want.Size)
	case err != io.EOF:
		return n, err
	case c.n != c.want.Size:
		return n, fmt.Errorf("blob %s: %d bytes, want %d", c.want.Digest, c.n, c.want.Size)
	}
	if got := hex.EncodeToString(c.h.Sum(nil)); c.want.Digest.Algorithm != "sha256" || got != c.want.Digest.Hex {
		return n, fmt.Errorf("blob %s: content has sha256:%s", c.want.Digest, got)
	}
	return n, io.EOF
}

func (c *checked) Close() error { return c.rc.Close() }

// AppendArtifacts adds artifacts to the OCI image layout dir, which has
// their subject. Artifacts whose subject the layout no longer lists (the
// image of a tag that was replaced) are dropped from its index.
func AppendArtifacts(dir string, artifacts ...v1.Image) error {
	if err := appendArtifacts(layout.Path(dir), artifacts); err != nil {
		return fmt.Errorf("output oci:%s: %w", dir, err)
	}
	return nil
}

func appendArtifacts(lp layout.Path, artifacts []v1.Image) error {
	for _, a := range artifacts {
		if err := lp.WriteImage(a); err != nil {
			return err
		}
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		return err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	listed := map[v1.Hash]bool{}
	for _, d := range im.Manifests {
		listed[d.Digest] = true
		// The images of a listed multi-arch index are listed too.
		if d.MediaType.IsIndex() {
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			cm, err := child.IndexManifest()
			if err != nil {
				return err
			}
			for _, c := range cm.Manifests {
				listed[c.Digest] = true
			}
		}
	}
	// Drop the artifacts of images no longer listed, and those added again.
	ii = mutate.RemoveManifests(ii, func(d v1.Descriptor) bool {
		for _, a := range artifacts {
			if h, err := a.Digest(); err == nil && h == d.Digest {
				return true
			}
		}
		m, err := manifestIn(lp, d.Digest)
		return err == nil && m.Subject != nil && !listed[m.Subject.Digest]
	})
	for _, a := range artifacts {
		d, err := partial.Descriptor(a)
		if err != nil {
			return err
		}
		ii = mutate.AppendManifests(ii, mutate.IndexAddendum{Add: a, Descriptor: *d})
	}
	index, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(index, "", "   ")
	if err != nil {
		return err
	}
	if err := readableByAll(string(lp)); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(string(lp), "index.json"), raw, atomicfile.Options{Sync: true})
}

func manifestIn(lp layout.Path, h v1.Hash) (*v1.Manifest, error) {
	raw, err := lp.Bytes(h)
	if err != nil {
		return nil, err
	}
	return v1.ParseManifest(bytes.NewReader(raw))
}

// PushArtifacts pushes artifacts by digest to the repository of ref, where
// their subject is. Registries without the OCI 1.1 referrers API get them
// listed under the tag sha256-<subject digest> instead, as the
// distribution spec's fallback has it.
func PushArtifacts(ctx context.Context, ref string, artifacts []v1.Image, o PushOptions) error {
	r, err := ParseReference(ref, o.Insecure)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	for _, a := range artifacts {
		h, err := a.Digest()
		if err != nil {
			return err
		}
		if _, err := Push(ctx, a, r.Context().Digest(h.String()).String(), o); err != nil {
			return err
		}
	}
	return nil
}
