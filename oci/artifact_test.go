package oci

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/internal/testenv"
)

// An artifact of many blobs, some in memory, some streamed from files,
// two with the same content: each blob keeps its media type and title,
// is stored once, and reads back checked, from a layout and a registry.
// A blob altered in the layout fails its read.
func TestArtifactBlobs(t *testing.T) {
	img, _ := testImage(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "deb")
	deb := []byte("a deb's content\n")
	must(t, os.WriteFile(file, deb, 0o644))
	h, n, err := v1.SHA256(strings.NewReader(string(deb)))
	must(t, err)
	blobs := []Blob{
		BytesBlob("application/vnd.example.lock", []byte("lock\n"), "basebuild.lock"),
		FileBlob("application/vnd.example.deb", file, h.Hex, n, "http://archive.example/pool/a.deb"),
		BytesBlob("application/vnd.example.deb", deb, "http://archive.example/pool/same.deb"),
	}
	const typ = "application/vnd.example.inputs"
	art, err := NewArtifactOf(typ, blobs, img, map[string]string{"k": "v"})
	must(t, err)

	check := func(where string, a v1.Image) {
		t.Helper()
		m, err := a.Manifest()
		must(t, err)
		if m.ArtifactType != typ || len(m.Layers) != 3 || m.Annotations["k"] != "v" {
			t.Fatalf("%s: manifest %+v", where, m)
		}
		for i, d := range m.Layers {
			if d.MediaType != blobs[i].Descriptor.MediaType || d.Annotations[AnnotationTitle] != blobs[i].Descriptor.Annotations[AnnotationTitle] {
				t.Errorf("%s: blob %d is %s %v, want %s %v", where, i, d.MediaType, d.Annotations, blobs[i].Descriptor.MediaType, blobs[i].Descriptor.Annotations)
			}
			rc, err := OpenBlob(a, d)
			must(t, err)
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || (i == 0) != (string(data) == "lock\n") || i > 0 && string(data) != string(deb) {
				t.Errorf("%s: blob %d: %q, %v", where, i, data, err)
			}
		}
	}

	// A layout.
	layoutDir := filepath.Join(dir, "layout")
	out := Output{OCILayout, layoutDir}
	must(t, out.Write(img, "debian:bookworm"))
	must(t, AppendArtifacts(layoutDir, art))
	s, err := Open(t.Context(), "oci:"+layoutDir, false)
	must(t, err)
	got, err := s.Referrer(typ)
	must(t, err)
	check("layout", got)
	blobFiles, err := filepath.Glob(filepath.Join(layoutDir, "blobs", "sha256", h.Hex))
	if err != nil || len(blobFiles) != 1 {
		t.Fatalf("the deb blob in the layout: %v, %v", blobFiles, err)
	}

	// A registry.
	ref := testRepo(t, testenv.Registry(t)) + ":bookworm"
	_, err = Push(testContext(t), img, ref, fastOptions(t))
	must(t, err)
	must(t, PushArtifacts(testContext(t), ref, []v1.Image{art}, fastOptions(t)))
	rs, err := Open(testContext(t), ref, false)
	must(t, err)
	got, err = rs.Referrer(typ)
	must(t, err)
	check("registry", got)

	// The deb blob replaced in the layout: its read fails, naming it.
	must(t, os.WriteFile(blobFiles[0], []byte("another deb's content\n"), 0o644))
	m, err := art.Manifest()
	must(t, err)
	s, err = Open(t.Context(), "oci:"+layoutDir, false)
	must(t, err)
	got, err = s.Referrer(typ)
	must(t, err)
	rc, err := OpenBlob(got, m.Layers[1])
	must(t, err)
	_, err = io.ReadAll(rc)
	if err == nil || !strings.Contains(err.Error(), "blob "+h.String()) {
		t.Errorf("a replaced blob: %v, want an error naming it", err)
	}
	if _, err := s.Referrer("application/vnd.example.none"); err == nil || !strings.Contains(err.Error(), "no artifact attached") {
		t.Errorf("no such artifact: %v", err)
	}
}
