package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	sd, err := partial.Descriptor(subject)
	if err != nil {
		return nil, err
	}
	a := &artifact{data: data, config: emptyConfig}
	a.manifest = &v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        descriptorOf(emptyConfigType, emptyConfig),
		Layers:        []v1.Descriptor{descriptorOf(types.MediaType(artifactType), data)},
		Subject:       &v1.Descriptor{MediaType: sd.MediaType, Digest: sd.Digest, Size: sd.Size},
		Annotations:   annotations,
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
	manifest     *v1.Manifest
	raw          []byte
	config, data []byte
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return a.manifest.MediaType, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.raw, nil }
func (a *artifact) ArtifactType() (string, error)       { return a.manifest.ArtifactType, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h != a.manifest.Layers[0].Digest {
		return nil, fmt.Errorf("artifact has no blob %s", h)
	}
	return &blob{desc: a.manifest.Layers[0], data: a.data}, nil
}

// blob is an artifact's data as a layer that is stored as is.
type blob struct {
	desc v1.Descriptor
	data []byte
}

func (b *blob) Digest() (v1.Hash, error)             { return b.desc.Digest, nil }
func (b *blob) Compressed() (io.ReadCloser, error)   { return io.NopCloser(bytes.NewReader(b.data)), nil }
func (b *blob) Size() (int64, error)                 { return b.desc.Size, nil }
func (b *blob) MediaType() (types.MediaType, error)  { return b.desc.MediaType, nil }
func (b *blob) Uncompressed() (io.ReadCloser, error) { return b.Compressed() }
func (b *blob) DiffID() (v1.Hash, error)             { return b.desc.Digest, nil }

// ArtifactData returns the one blob of an artifact made by NewArtifact.
func ArtifactData(a v1.Image) ([]byte, error) {
	m, err := a.Manifest()
	if err != nil {
		return nil, err
	}
	if len(m.Layers) != 1 {
		return nil, fmt.Errorf("artifact has %d blobs, want 1", len(m.Layers))
	}
	l, err := a.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

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
