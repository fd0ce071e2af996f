package oci

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Open is the one reader of "oci:DIR[:TAG]" for every command (packages,
// diff, verify, --if-changed, the downgrade check). Before it, verify
// split "oci:DIR:TAG" at the last colon whatever DIR was, while packages
// took an existing directory whole, so the two read different images, or
// none, for a DIR whose name holds a colon.
func TestOpenLayout(t *testing.T) {
	ctx := t.Context()
	base := t.TempDir()
	dir := filepath.Join(base, "lay:out")
	out := Output{OCILayout, dir}
	a, aDigest := testImage(t)
	b, bDigest := testImage(t)
	must(t, out.Write(a, "debian:bookworm"))
	art, err := NewArtifact("application/vnd.example+json", []byte(`{"a":1}`), a, nil)
	must(t, err)
	must(t, AppendArtifacts(dir, art))

	open := func(ref string) (*Source, error) {
		t.Helper()
		return Open(ctx, ref, false)
	}
	want := func(ref string, digest v1.Hash) *Source {
		t.Helper()
		s, err := open(ref)
		if err != nil {
			t.Fatalf("Open(%s): %v", ref, err)
		}
		if s.Digest != digest {
			t.Errorf("Open(%s) = %s, want %s", ref, s.Digest, digest)
		}
		return s
	}
	fails := func(ref string, noImage bool, msg string) {
		t.Helper()
		_, err := open(ref)
		if err == nil || errors.Is(err, ErrNoImage) != noImage || !strings.Contains(err.Error(), msg) {
			t.Errorf("Open(%s): %v, want %q (ErrNoImage: %v)", ref, err, msg, noImage)
		}
	}

	// One image, its artifact no candidate: no TAG needed, and the colon
	// in DIR's name is DIR's.
	s := want("oci:"+dir, aDigest)
	if data, err := s.Artifact("application/vnd.example+json"); err != nil || string(data) != `{"a":1}` {
		t.Errorf("artifact: %q, %v", data, err)
	}
	want("oci:"+dir+":bookworm", aDigest)

	// Two tags: name one.
	must(t, out.Write(b, "debian:trixie"))
	fails("oci:"+dir, false, "has 2 images: name one as oci:"+dir+":TAG")
	want("oci:"+dir+":bookworm", aDigest)
	want("oci:"+dir+":trixie", bDigest)
	fails("oci:"+dir+":sid", true, `no image tagged "sid" in `+dir)
	fails("oci:"+filepath.Join(base, "none")+":bookworm", true, "not an OCI layout")

	// An index: its image for the platform asked for.
	c, _ := testImage(t)
	d, dDigest := testImage(t)
	ii, err := NewIndex([]string{"amd64", "arm64"}, []v1.Image{c, d})
	must(t, err)
	must(t, out.WriteIndex(ii, "debian:multi"))
	fails("oci:"+dir+":multi", false, "holds a multi-architecture index")
	arm64, err := Platform("arm64")
	must(t, err)
	s, err = OpenPlatform(ctx, "oci:"+dir+":multi", false, &arm64)
	if err != nil || s.Digest != dDigest {
		t.Errorf("OpenPlatform(arm64): %v, %v, want %s", s, err, dDigest)
	}
	riscv, err := Platform("riscv64")
	must(t, err)
	if _, err := OpenPlatform(ctx, "oci:"+dir+":multi", false, &riscv); !errors.Is(err, ErrNoImage) {
		t.Errorf("OpenPlatform(riscv64): %v, want ErrNoImage", err)
	}
	// A plain image is the image whatever the platform.
	if s, err := OpenPlatform(ctx, "oci:"+dir+":trixie", false, &arm64); err != nil || s.Digest != bDigest {
		t.Errorf("OpenPlatform(trixie, arm64): %v, want %s", err, bDigest)
	}
}
