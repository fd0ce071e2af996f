package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
)

// The inputs artifact (--attach-inputs) and the media types of its blobs:
// the lock, each suite's InRelease, each Packages index as fetched, and
// every deb, each a blob of its own, so that a registry stores a deb once
// for all the images that hold it.
const (
	InputsType                    = "application/vnd.basebuild.inputs.v1"
	LockType      types.MediaType = "application/vnd.basebuild.lock.v1"
	InReleaseType types.MediaType = "application/vnd.basebuild.inrelease"
	IndexType     types.MediaType = "application/vnd.basebuild.packages-index"
	DebType       types.MediaType = "application/vnd.debian.binary-package"
)

// lockTitle names the lock among the inputs.
const lockTitle = "basebuild.lock"

// inputsArtifact returns the inputs artifact of img, built from set as o
// says. Its blobs are read from c's cache, where the build verified them,
// and streamed when the artifact is written; an index the cache lacks (a
// resolved set read back from the cache needs none) is fetched.
func inputsArtifact(ctx context.Context, o *Options, c *apt.Client, set *plan.Plan, img v1.Image) (v1.Image, error) {
	var lock bytes.Buffer
	if err := o.WriteLock(&lock, set); err != nil {
		return nil, err
	}
	blobs := []oci.Blob{oci.BytesBlob(LockType, lock.Bytes(), lockTitle)}
	add := func(mt types.MediaType, path, sum, title string) error {
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("inputs: %s: %w", title, err)
		}
		blobs = append(blobs, oci.FileBlob(mt, path, sum, fi.Size(), title))
		return nil
	}
	for _, r := range set.Releases {
		dists := r.URL + "/dists/" + r.Suite + "/"
		p, ok := c.Cache.Lookup(r.SHA256, -1)
		if !ok {
			return nil, fmt.Errorf("inputs: %sInRelease sha256:%s: not in the cache", dists, r.SHA256)
		}
		if err := add(InReleaseType, p, r.SHA256, dists+"InRelease"); err != nil {
			return nil, err
		}
		for _, idx := range r.Indexes {
			p, err := c.File(ctx, dists+idx.Path, apt.FileHash{Size: idx.Size, SHA256: idx.SHA256})
			if err != nil {
				return nil, fmt.Errorf("inputs: %s%s: %w", dists, idx.Path, err)
			}
			if err := add(IndexType, p, idx.SHA256, dists+idx.Path); err != nil {
				return nil, err
			}
		}
	}
	for _, pkg := range set.Packages {
		p, ok := c.Cache.Lookup(pkg.SHA256, pkg.Size)
		if !ok {
			return nil, fmt.Errorf("inputs: package %s %s (%s): not in the cache", pkg.Name, pkg.Version, pkg.URL)
		}
		if err := add(DebType, p, pkg.SHA256, pkg.URL); err != nil {
			return nil, err
		}
	}
	// Created at the epoch, so that rebuilds attach the same artifact.
	ann := map[string]string{"org.opencontainers.image.created": set.Epoch.UTC().Format(time.RFC3339)}
	return oci.NewArtifactOf(InputsType, blobs, img, ann)
}

// ImportInputs writes each blob of the inputs artifact a into cc, checking
// its digest as it is copied, and returns the lock it holds. A blob that
// is not what its descriptor says is an error naming it.
func ImportInputs(ctx context.Context, o *Options, a v1.Image, cc *cache.Cache) (*Lock, error) {
	defer o.phase("import inputs", time.Now())
	m, err := a.Manifest()
	if err != nil {
		return nil, err
	}
	if m.ArtifactType != InputsType {
		return nil, fmt.Errorf("artifact of type %q, not %s", m.ArtifactType, InputsType)
	}
	var lock string
	var size int64
	for _, d := range m.Layers {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		title := d.Annotations[oci.AnnotationTitle]
		if title == "" {
			title = d.Digest.String()
		}
		if d.Digest.Algorithm != "sha256" || !cache.IsSHA256(d.Digest.Hex) {
			return nil, fmt.Errorf("%s: digest %s: want sha256", title, d.Digest)
		}
		if err := importBlob(a, d, cc); err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		size += d.Size
		if d.MediaType == LockType {
			if lock != "" {
				return nil, fmt.Errorf("two locks (%s and %s)", lock, d.Digest.Hex)
			}
			lock = d.Digest.Hex
		}
	}
	if lock == "" {
		return nil, fmt.Errorf("no lock (a blob of type %s)", LockType)
	}
	o.logf("imported %d inputs, %.1f MB", len(m.Layers), float64(size)/1e6)
	p, ok := cc.Lookup(lock, -1)
	if !ok {
		return nil, fmt.Errorf("lock sha256:%s: not in the cache", lock)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := ReadLock(f)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	return l, nil
}

// importBlob copies the blob d of a into cc, checked (see oci.OpenBlob).
func importBlob(a v1.Image, d v1.Descriptor, cc *cache.Cache) error {
	rc, err := oci.OpenBlob(a, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := cc.Create()
	if err != nil {
		return err
	}
	defer f.Discard()
	if _, err := io.Copy(f, rc); err != nil {
		return err
	}
	_, err = cc.Commit(f, d.Digest.Hex)
	return err
}
