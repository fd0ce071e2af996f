package oci

import (
	"fmt"
	"maps"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/snapshots"
)

// SourceURL is basebuild's source, recorded in every image as
// org.opencontainers.image.source.
const SourceURL = "https://github.com/basebuild/basebuild"

// The OCI annotations (and config labels) basebuild sets.
const (
	AnnotationCreated = "org.opencontainers.image.created"
	AnnotationVersion = "org.opencontainers.image.version"
	AnnotationSource  = "org.opencontainers.image.source"
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// ImageOptions describe the image NewImage makes of a layer.
type ImageOptions struct {
	// Arch is the Debian architecture: amd64, arm64, armhf, …
	Arch string
	// Epoch is the image's creation time, that of its history entry and
	// its org.opencontainers.image.created annotation.
	Epoch time.Time
	// Suite and Snapshot (zero for none) make the image's version:
	// "bookworm-20240101T000000Z", or "bookworm" alone.
	Suite    string
	Snapshot time.Time
	// CreatedBy is the history entry's command, naming basebuild, its
	// version and its inputs, e.g.
	// "basebuild 0.1 --suite bookworm --snapshot 20240101T000000Z".
	CreatedBy string
	// Annotations are added to the manifest's annotations and the
	// config's labels, replacing basebuild's own of the same key.
	Annotations map[string]string
	// Labels replace the config's labels of the same key: a short form
	// of an annotation too long to read in docker inspect.
	Labels map[string]string
	// Config, if set, replaces the official images' Cmd, Env, User and
	// WorkingDir; the labels are still the annotations and Labels.
	Config *v1.Config
}

// DefaultPath is the official images' PATH, in the config's Env.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// NewImage returns the OCI image of the single layer: the config of the
// official Debian images (Cmd bash, the default PATH) for Linux on o.Arch,
// created at o.Epoch with one history entry, and the annotations
// org.opencontainers.image.created, .version and .source plus
// o.Annotations on the manifest and, but where o.Labels replace them, as
// labels in the config.
func NewImage(layer v1.Layer, o ImageOptions) (v1.Image, error) {
	if o.Epoch.IsZero() {
		return nil, fmt.Errorf("image of %s: no epoch", o.Suite)
	}
	platform, err := Platform(o.Arch)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: o.Epoch.UTC()}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: created, CreatedBy: o.CreatedBy},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	annotations := imageAnnotations(o)
	cfg.OS = platform.OS
	cfg.Architecture = platform.Architecture
	cfg.Variant = platform.Variant
	cfg.Created = created
	cfg.Config = v1.Config{Cmd: []string{"bash"}, Env: []string{DefaultPath}}
	if o.Config != nil {
		cfg.Config = *o.Config
	}
	cfg.Config.Labels = maps.Clone(annotations)
	maps.Copy(cfg.Config.Labels, o.Labels)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	return mutate.Annotations(img, annotations).(v1.Image), nil
}

// imageAnnotations returns the annotations of the image o describes.
func imageAnnotations(o ImageOptions) map[string]string {
	version := o.Suite
	if !o.Snapshot.IsZero() {
		version += "-" + snapshots.ID(o.Snapshot)
	}
	a := map[string]string{
		AnnotationCreated: o.Epoch.UTC().Format(time.RFC3339),
		AnnotationSource:  SourceURL,
	}
	if version != "" {
		a[AnnotationVersion] = version
	}
	maps.Copy(a, o.Annotations)
	return a
}

// Platform returns the OCI platform of the Debian architecture arch, as
// the official images name them (amd64, arm32v5, arm32v7, arm64v8, i386,
// mips64le, ppc64le, riscv64, s390x).
func Platform(arch string) (v1.Platform, error) {
	a, ok := debian.LookupArch(arch)
	if !ok || a.OCIArch == "" {
		return v1.Platform{}, fmt.Errorf("architecture %q: no OCI platform for it", arch)
	}
	return v1.Platform{OS: "linux", Architecture: a.OCIArch, Variant: a.OCIVariant}, nil
}

// Arch returns the Debian architecture of the platform p: the one whose
// Platform has p's architecture and, where p gives one, its variant
// (registries often list linux/arm64 without its v8).
func Arch(p v1.Platform) (string, error) {
	var found []string
	for _, a := range debian.Archs() {
		if p.OS == "linux" && a.OCIArch != "" && a.OCIArch == p.Architecture && (p.Variant == "" || p.Variant == a.OCIVariant) {
			found = append(found, a.Name)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("platform %s: not one Debian architecture", p.String())
	}
	return found[0], nil
}
