package oci

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/basebuild/basebuild/internal/testenv"
)

// checkIndex checks that ii is an OCI index of want, in order, with the
// platforms linux/amd64 and linux/arm64/v8.
func checkIndex(t *testing.T, ii v1.ImageIndex, want ...v1.Image) {
	t.Helper()
	im, err := ii.IndexManifest()
	must(t, err)
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s", im.MediaType)
	}
	platforms := []string{"linux/amd64", "linux/arm64/v8"}
	if len(im.Manifests) != len(want) {
		t.Fatalf("index has %d manifests, want %d: %+v", len(im.Manifests), len(want), im.Manifests)
	}
	for i, m := range im.Manifests {
		d, _ := want[i].Digest()
		if m.Digest != d || m.Platform == nil || m.Platform.String() != platforms[i] {
			t.Errorf("manifest %d: %s %v, want %s %s", i, m.Digest, m.Platform, d, platforms[i])
		}
	}
}

func TestNewIndex(t *testing.T) {
	a, _ := testImage(t)
	b, _ := testImage(t)
	ii, err := NewIndex([]string{"amd64", "arm64"}, []v1.Image{a, b})
	must(t, err)
	checkIndex(t, ii, a, b)
	for _, c := range []struct {
		archs  []string
		images []v1.Image
		want   string
	}{
		{[]string{"amd64", "amd64"}, []v1.Image{a, b}, "two images for amd64"},
		{[]string{"amd64"}, []v1.Image{a, b}, "1 architectures, 2 images"},
		{[]string{"amd64", "vax"}, []v1.Image{a, b}, `"vax"`},
	} {
		if _, err := NewIndex(c.archs, c.images); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewIndex(%q): %v, want an error with %q", c.archs, err, c.want)
		}
	}
}

// TestWriteIndex writes an index into a new layout and into one with
// other images: tagged, the other tags kept, the previous image of the tag
// and its artifacts replaced, the children's artifacts kept.
func TestWriteIndex(t *testing.T) {
	a, _ := testImage(t)
	b, _ := testImage(t)
	ii, err := NewIndex([]string{"amd64", "arm64"}, []v1.Image{a, b})
	must(t, err)
	id, _ := ii.Digest()
	for _, existing := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "layout")
		out := Output{OCILayout, dir}
		single, _ := testImage(t)
		if existing {
			must(t, out.Write(single, "debian:bookworm"))
			must(t, out.Write(single, "debian:other"))
		}
		must(t, out.WriteIndex(ii, "debian:bookworm"))
		var arts []v1.Image
		for _, img := range []v1.Image{a, b} {
			art, err := NewArtifact("application/vnd.example+json", []byte(`{}`), img, nil)
			must(t, err)
			arts = append(arts, art)
		}
		must(t, AppendArtifacts(dir, arts...))
		// Another image's artifacts added later leave the children's.
		must(t, out.Write(single, "debian:later"))
		art, err := NewArtifact("application/vnd.example+json", []byte(`{"later":1}`), single, nil)
		must(t, err)
		must(t, AppendArtifacts(dir, art))

		lp, err := layout.FromPath(dir)
		must(t, err)
		root, err := lp.ImageIndex()
		must(t, err)
		im, err := root.IndexManifest()
		must(t, err)
		var tags []string
		var listed []v1.Hash
		for _, m := range im.Manifests {
			listed = append(listed, m.Digest)
			if tag := m.Annotations[AnnotationRefName]; tag != "" {
				tags = append(tags, tag)
				if tag == "bookworm" && (m.Digest != id || m.MediaType != types.OCIImageIndex) {
					t.Errorf("existing %v: bookworm is %s %s, want the index %s", existing, m.MediaType, m.Digest, id)
				}
			}
		}
		slices.Sort(tags)
		wantTags := []string{"bookworm", "later"}
		if existing {
			wantTags = []string{"bookworm", "later", "other"}
		}
		if !slices.Equal(tags, wantTags) {
			t.Errorf("existing %v: tags %q, want %q", existing, tags, wantTags)
		}
		for _, art := range arts {
			if d, _ := art.Digest(); !slices.Contains(listed, d) {
				t.Errorf("existing %v: artifact %s of a child not listed", existing, d)
			}
		}
		got, err := root.ImageIndex(id)
		must(t, err)
		checkIndex(t, got, a, b)
		noTemporaries(t, filepath.Dir(dir), "layout")
	}
}

func TestWriteIndexRefusesOtherTypes(t *testing.T) {
	a, _ := testImage(t)
	b, _ := testImage(t)
	ii, err := NewIndex([]string{"amd64", "arm64"}, []v1.Image{a, b})
	must(t, err)
	dir := t.TempDir()
	for _, typ := range []string{DockerArchive, RootfsTar} {
		p := filepath.Join(dir, typ+".tar")
		err := Output{typ, p}.WriteIndex(ii, "debian:bookworm")
		if err == nil || !strings.Contains(err.Error(), "oci:DIR") {
			t.Errorf("%s: %v, want a refusal", typ, err)
		}
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s written", p)
		}
	}
}

func TestPushIndex(t *testing.T) {
	registry := testenv.Registry(t)
	ctx := testContext(t)
	a, _ := testImage(t)
	b, _ := testImage(t)
	ii, err := NewIndex([]string{"amd64", "arm64"}, []v1.Image{a, b})
	must(t, err)
	id, _ := ii.Digest()
	ref := testRepo(t, registry) + ":multi"
	got, err := PushIndex(ctx, ii, ref, fastOptions(t))
	must(t, err)
	if got != id {
		t.Errorf("PushIndex: %s, want %s", got, id)
	}
	r, err := ParseReference(ref, false)
	must(t, err)
	pulled, err := remote.Index(r, remote.WithContext(ctx))
	must(t, err)
	if d, _ := pulled.Digest(); d != id {
		t.Errorf("registry has %s, want %s", d, id)
	}
	checkIndex(t, pulled, a, b)

	// A push that cannot succeed fails in one line, as Push's do.
	if _, err = PushIndex(ctx, ii, "127.0.0.1:1/debian:multi", fastOptions(t)); err == nil {
		t.Fatal("PushIndex to a closed port succeeded")
	}
	checkOneLine(t, err, "127.0.0.1:1/debian:multi")
}
