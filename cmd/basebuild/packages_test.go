package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
)

// auditedImage returns a random image and its attached package manifest
// of pkgs ("name version source" each) and SBOM.
func auditedImage(t *testing.T, pkgs ...string) (v1.Image, []v1.Image) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img, auditArtifacts(t, img, "amd64", pkgs...)
}

// auditArtifacts returns the package manifest of pkgs ("name version
// source" each, of arch) and SBOM, attached to img.
func auditArtifacts(t *testing.T, img v1.Image, arch string, pkgs ...string) []v1.Image {
	t.Helper()
	set := &plan.Plan{Suite: "bookworm", Arch: arch, Epoch: time.Unix(1704067200, 0)}
	for _, p := range pkgs {
		f := strings.Fields(p)
		set.Packages = append(set.Packages, plan.Package{Name: f[0], Version: f[1], Architecture: arch, Source: f[2], SHA256: strings.Repeat("0", 64)})
	}
	manifest, err := audit.NewManifest(set).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var sbom bytes.Buffer
	doc, err := audit.SBOM(set, audit.SBOMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.WriteSBOM(&sbom, doc); err != nil {
		t.Fatal(err)
	}
	var arts []v1.Image
	for typ, data := range map[string][]byte{audit.ManifestType: manifest, audit.SBOMType: sbom.Bytes()} {
		a, err := oci.NewArtifact(typ, data, img, nil)
		if err != nil {
			t.Fatal(err)
		}
		arts = append(arts, a)
	}
	return arts
}

// statusImage returns an image whose layer has a dpkg status and no
// attached manifest.
func statusImage(t *testing.T, status string) v1.Image {
	t.Helper()
	return layerImage(t, map[string]string{"./var/lib/dpkg/status": status})
}

// layerImage returns an image of one layer with files, by name, and no
// attached manifest.
func layerImage(t *testing.T, files map[string]string) v1.Image {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(emptyImage(t), types.OCIConfigJSON), types.OCIManifestSchema1),
		static.NewLayer(b.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func emptyImage(t *testing.T) v1.Image {
	img, err := random.Image(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func writeLayout(t *testing.T, dir, tag string, img v1.Image, arts ...v1.Image) {
	t.Helper()
	if err := (oci.Output{Type: oci.OCILayout, Path: dir}).Write(img, "debian:"+tag); err != nil {
		t.Fatal(err)
	}
	if len(arts) > 0 {
		if err := oci.AppendArtifacts(dir, arts...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPackagesAndDiffLayout(t *testing.T) {
	// A colon in DIR's name: "oci:DIR:TAG" and "oci:DIR" still name it,
	// as they do for verify and --if-changed (one reader, oci.Open).
	dir := filepath.Join(t.TempDir(), "lay:out")
	a, aArts := auditedImage(t, "bash 5.2.15-2 bash", "libc6 2.36-9 glibc", "zlib1g 1:1.2.13 zlib")
	writeLayout(t, dir, "a", a, aArts...)
	b := statusImage(t, `Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-3

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9

Package: hello
Status: install ok installed
Architecture: amd64
Version: 2.10-3
`)
	writeLayout(t, dir, "b", b)

	out, _, err := runCLI(t, "packages", "oci:"+dir+":a")
	if err != nil {
		t.Fatal(err)
	}
	if want := "bash 5.2.15-2 amd64 bash\nlibc6 2.36-9 amd64 glibc\nzlib1g 1:1.2.13 amd64 zlib\n"; out != want {
		t.Errorf("packages oci:…:a (manifest) =\n%s\nwant\n%s", out, want)
	}
	out, _, err = runCLI(t, "packages", "--json", "oci:"+dir+":b")
	if err != nil {
		t.Fatal(err)
	}
	var got []imagePackages
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].From != "dpkg-status" || len(got[0].Packages) != 3 || got[0].Packages[0].Name != "bash" {
		t.Errorf("packages --json of the status image: %s", out)
	}
	out, _, err = runCLI(t, "packages", "--source", "glibc", "oci:"+dir+":a", "oci:"+dir+":b")
	if err != nil {
		t.Fatal(err)
	}
	if want := "oci:" + dir + ":a libc6 2.36-9 amd64 glibc\noci:" + dir + ":b libc6 2.36-9 amd64 glibc\n"; out != want {
		t.Errorf("packages --source glibc of both =\n%s\nwant\n%s", out, want)
	}
	// A distroless image: status.d's control files, the md5sums
	// files beside them ignored.
	c := layerImage(t, map[string]string{
		"./var/lib/dpkg/status.d/libc6":         "Package: libc6\nSource: glibc\nVersion: 2.36-9\nArchitecture: amd64\n",
		"./var/lib/dpkg/status.d/libc6.md5sums": "0123  usr/lib/libc.so.6\n",
		"./var/lib/dpkg/status.d/libapt-pkg6.0": "Package: libapt-pkg6.0\nSource: apt\nVersion: 2.6.1\nArchitecture: amd64\n",
		"./var/lib/dpkg/status.d/base-files":    "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n",
	})
	dl := filepath.Join(t.TempDir(), "distroless")
	writeLayout(t, dl, "c", c)
	out, _, err = runCLI(t, "packages", "--json", "oci:"+dl+":c")
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got[0].Packages {
		names = append(names, p.Name+" "+p.Version+" "+p.Source)
	}
	if got[0].From != "status.d" || strings.Join(names, ", ") != "base-files 12.4 base-files, libapt-pkg6.0 2.6.1 apt, libc6 2.36-9 glibc" {
		t.Errorf("packages --json of the distroless image: %s", out)
	}
	if _, _, err := runCLI(t, "packages", "oci:"+dir); err == nil || !strings.Contains(err.Error(), "2 images") {
		t.Errorf("packages of a layout with two images and no tag: %v, want an error asking for a tag", err)
	}

	out, _, err = runCLI(t, "diff", "oci:"+dir+":a", "oci:"+dir+":b")
	if err != nil {
		t.Fatal(err)
	}
	if want := "- zlib1g 1:1.2.13 amd64 zlib\n+ hello 2.10-3 amd64 hello\n~ bash 5.2.15-2 -> 5.2.15-3 amd64 bash\n"; out != want {
		t.Errorf("diff =\n%s\nwant\n%s", out, want)
	}

	// Replacing the image of tag a drops its artifacts from the index.
	a2, a2Arts := auditedImage(t, "dash 0.5.12-2 dash")
	writeLayout(t, dir, "a", a2, a2Arts...)
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), audit.ManifestType); n != 1 {
		t.Errorf("index.json lists %d package manifests after the tag moved, want 1", n)
	}
	if out, _, _ := runCLI(t, "packages", "oci:"+dir+":a"); out != "dash 0.5.12-2 amd64 dash\n" {
		t.Errorf("packages after the tag moved: %q", out)
	}
}

// TestPackagesRegistry attaches the artifacts to an image in the loopback
// registry, which has no referrers API, and reads them back.
func TestPackagesRegistry(t *testing.T) {
	registry := testenv.Registry(t)
	ref := registry + "/audit/random:" + strings.ToLower(t.Name())
	img, arts := auditedImage(t, "bash 5.2.15-2 bash", "libc6 2.36-9 glibc")
	ctx := t.Context()
	digest, err := oci.Push(ctx, img, ref, oci.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := oci.PushArtifacts(ctx, ref, arts, oci.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	// The distribution spec's fallback tag lists both artifacts.
	fallback := strings.Replace(digest.String(), ":", "-", 1)
	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+registry+"/audit/random:"+fallback).Output()
	if err != nil {
		t.Fatalf("skopeo inspect the referrers tag %s: %v", fallback, err)
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, d := range index.Manifests {
		types[d.ArtifactType] = true
	}
	if len(index.Manifests) != 2 || !types[audit.ManifestType] || !types[audit.SBOMType] {
		t.Errorf("referrers tag lists %+v, want the manifest and the SBOM", index.Manifests)
	}
	out, _, err := runCLI(t, "packages", ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := "bash 5.2.15-2 amd64 bash\nlibc6 2.36-9 amd64 glibc\n"; out != want {
		t.Errorf("packages %s =\n%s\nwant\n%s", ref, out, want)
	}
	s, err := oci.Open(ctx, ref, false)
	if err != nil {
		t.Fatal(err)
	}
	sbom, err := s.Artifact(audit.SBOMType)
	if err != nil || !bytes.Contains(sbom, []byte(`"SPDX-2.3"`)) {
		t.Errorf("SBOM read back: %v\n%.200s", err, sbom)
	}
}
