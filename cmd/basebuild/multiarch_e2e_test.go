package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/rootfs"
)

// TestMultiArchUsage: what several --arch cannot do yet is refused in one
// line, exit status 2 from the binary, before anything is built.
func TestMultiArchUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--arch", "amd64,arm64,amd64"}, "amd64 given twice"},
		{[]string{"--arch", "amd64,"}, "is not an architecture name"},
		{[]string{"--arch", "amd64,arm64", "--output", "docker-archive:" + filepath.Join(dir, "a.tar")}, "holds one image"},
		{[]string{"--arch", "amd64,arm64", "--output", "rootfs-tar:" + filepath.Join(dir, "r.tar")}, "holds one image"},
		{[]string{"--arch", "amd64,arm64", "--rootfs", filepath.Join(dir, "rootfs")}, "--rootfs takes one --arch"},
		{[]string{"--arch", "amd64,arm64", "--sbom", filepath.Join(dir, "s.json")}, "--sbom takes one --arch"},
	} {
		out, stderr, err := runBinary(t, append([]string{"--suite", "bookworm"}, c.args...)...)
		if exitCode(err) != 2 || out != "" || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: %v, want exit status 2 and a one-line usage error with %q:\n%s%s", c.args, err, c.want, out, stderr)
		}
	}
	if _, _, err := runBinary(t, "verify", "--suite", "bookworm", "--arch", "amd64,arm64,amd64", "oci:"+dir); exitCode(err) != 2 || !strings.Contains(err.Error(), "amd64 given twice") {
		t.Errorf("verify with amd64 twice: %v, want exit status 2", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("refused commands left %d files", len(entries))
	}
}

// TestMultiArchIndex builds bookworm for amd64 and arm64 into an OCI image
// index, written to a layout and pushed: two manifests, linux/amd64 and
// linux/arm64/v8, the printed digest the index's, verify of the pushed
// index rebuilds the same, and each image the one
// a single-architecture build gives (the index through the binary, as
// users build, the single images in-process: the two paths agree).
func TestMultiArchIndex(t *testing.T) {
	testenv.SnapshotServer(t)
	registry := testenv.Registry(t)
	testenv.RequireRoot(t)
	archs := []string{"amd64", "arm64"}
	for _, a := range archs {
		if err := rootfs.CheckArch(a); err != nil {
			t.Fatal(err)
		}
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Logf("host %s: both architectures are foreign", runtime.GOARCH)
	}
	work := t.TempDir()
	common := []string{"--suite", "bookworm", "--cache-dir", sharedCache}
	last := func(out string) string {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}

	start := time.Now()
	layoutDir := filepath.Join(work, "multi")
	ref := registry + "/debian:multi"
	out, stderr, err := runBinary(t, append(common, "--arch", "amd64,arm64", "--output", "oci:"+layoutDir, "--push", ref)...)
	if err != nil {
		t.Fatalf("multi-arch build: %v\n%s", err, stderr)
	}
	t.Logf("amd64,arm64 build: %s", time.Since(start).Round(time.Second))
	digest := last(out)

	// --if-changed with nothing changed: the index's digest, no build;
	// --dry-run: each architecture's packages.
	out, stderr, err = runBinary(t, append(common, "--arch", "amd64,arm64", "--output", "oci:"+layoutDir, "--push", ref, "--if-changed")...)
	if err != nil || last(out) != digest || !strings.Contains(stderr, "up to date") {
		t.Errorf("--if-changed of the index: %v, printed %q, want %s\n%s", err, out, digest, stderr)
	}
	out, stderr, err = runBinary(t, append(common, "--arch", "amd64,arm64", "--dry-run")...)
	if err != nil || !strings.Contains(out, "amd64 libc6 ") || !strings.Contains(out, "arm64 libc6 ") || !strings.Contains(out, " arm64\n") {
		t.Errorf("--dry-run of two architectures: %v\n%s%s", err, out, stderr)
	}
	// verify of the pushed index, without --arch: each image rebuilt.
	start = time.Now()
	out, stderr, err = runBinary(t, append(append([]string{"verify"}, common...), ref)...)
	if err != nil || !strings.HasPrefix(out, ref+": same index, "+digest+"\n") ||
		!strings.Contains(out, ref+" (amd64): same image, ") || !strings.Contains(out, ref+" (arm64): same image, ") {
		t.Errorf("verify %s: %v\n%s%s", ref, err, out, lastLines(stderr, 5))
	}
	t.Logf("verify of the index: %s", time.Since(start).Round(time.Second))

	// Each architecture alone, as the index's images must equal.
	single := map[string]string{}
	for _, a := range archs {
		start := time.Now()
		out, stderr, err := runCLI(t, append(common, "--arch", a, "--output", "oci:"+filepath.Join(work, a))...)
		if err != nil {
			t.Fatalf("%s build: %v\n%s", a, err, stderr)
		}
		t.Logf("%s build: %s", a, time.Since(start).Round(time.Second))
		single[a] = last(out)
	}

	check := func(where string, ii v1.ImageIndex) {
		t.Helper()
		d, err := ii.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if d.String() != digest {
			t.Errorf("%s: index %s, we printed %s", where, d, digest)
		}
		im, err := ii.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if im.MediaType != types.OCIImageIndex || len(im.Manifests) != len(archs) {
			t.Fatalf("%s: %s with %d manifests, want an OCI index of %d", where, im.MediaType, len(im.Manifests), len(archs))
		}
		for i, m := range im.Manifests {
			p, err := oci.Platform(archs[i])
			if err != nil {
				t.Fatal(err)
			}
			if m.Platform == nil || m.Platform.String() != p.String() {
				t.Errorf("%s: manifest %d platform %v, want %s", where, i, m.Platform, p.String())
			}
			if m.Digest.String() != single[archs[i]] {
				t.Errorf("%s: %s image %s, the single-arch build's is %s", where, archs[i], m.Digest, single[archs[i]])
			}
		}
	}

	// The same index, assembled from the single-architecture builds as
	// native builders would publish them.
	assembled := filepath.Join(work, "assembled")
	out, stderr, err = runBinary(t, "index", "--output", "oci:"+assembled, "--push", registry+"/debian:assembled",
		"oci:"+filepath.Join(work, "amd64"), "oci:"+filepath.Join(work, "arm64"))
	if err != nil || last(out) != digest {
		t.Errorf("index of the single builds: %v, printed %q, the multi-arch build's is %s\n%s", err, out, digest, stderr)
	}
	if got, err := oci.Open(t.Context(), registry+"/debian:assembled", false); err != nil || got.Digest.String() != single["amd64"] {
		t.Errorf("the pushed index's amd64 image: %v", err)
	}
	other, _ := recordedImage(t, "basebuild test\nsuite trixie\narch arm64\n")
	writeLayout(t, filepath.Join(work, "other"), "trixie", other)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"oci:" + filepath.Join(work, "amd64"), "oci:" + filepath.Join(work, "amd64")}, 1, "are both for amd64"},
		{[]string{"oci:" + filepath.Join(work, "amd64"), "oci:" + filepath.Join(work, "other")}, 1, "were built from other inputs: basebuild"},
		{[]string{"oci:" + filepath.Join(work, "amd64"), "oci:" + layoutDir}, 1, "is an index already"},
		{[]string{"--output", "docker-archive:" + filepath.Join(work, "x.tar"), "oci:" + filepath.Join(work, "amd64")}, 2, "want oci:DIR"},
	} {
		args := append([]string{"index"}, tc.args...)
		if !slices.Contains(tc.args, "--output") {
			args = append(args, "--output", "oci:"+filepath.Join(work, "refused"))
		}
		_, _, err := runBinary(t, args...)
		oneLineError(t, strings.Join(tc.args, " "), err, tc.want)
		if code := exitCode(err); code != tc.code {
			t.Errorf("index %s: exit %d, want %d", strings.Join(tc.args, " "), code, tc.code)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "refused")); err == nil {
		t.Error("a refused index was written")
	}

	// The layout: the index tagged bookworm.
	lp, err := layout.FromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var tagged *v1.Descriptor
	for i, d := range rm.Manifests {
		if d.Annotations[oci.AnnotationRefName] == "bookworm" {
			tagged = &rm.Manifests[i]
		}
	}
	if tagged == nil {
		t.Fatalf("layout has nothing tagged bookworm: %+v", rm.Manifests)
	}
	ii, err := root.ImageIndex(tagged.Digest)
	if err != nil {
		t.Fatal(err)
	}
	check("layout", ii)
	// Each image keeps its audit artifacts in the layout.
	subjects := map[string]int{}
	for _, d := range rm.Manifests {
		if d.ArtifactType == "" {
			continue
		}
		raw, err := lp.Bytes(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := v1.ParseManifest(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != nil {
			subjects[m.Subject.Digest.String()]++
		}
	}
	for _, a := range archs {
		if subjects[single[a]] < 2 {
			t.Errorf("layout: %s image has %d artifacts, want the manifest and the SBOM", a, subjects[single[a]])
		}
	}

	// The registry: go-containerregistry and skopeo read the index.
	r, err := oci.ParseReference(ref, false)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := remote.Index(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	check("registry", pushed)
	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw: %v", err)
	}
	var sk struct {
		MediaType string
		Manifests []struct {
			Digest   string
			Platform struct{ Architecture, OS, Variant string }
		}
	}
	if err := json.Unmarshal(raw, &sk); err != nil {
		t.Fatal(err)
	}
	if sk.MediaType != string(types.OCIImageIndex) || len(sk.Manifests) != 2 ||
		sk.Manifests[0].Digest != single["amd64"] || sk.Manifests[0].Platform.Architecture != "amd64" ||
		sk.Manifests[1].Digest != single["arm64"] || sk.Manifests[1].Platform.Architecture != "arm64" || sk.Manifests[1].Platform.Variant != "v8" {
		t.Errorf("skopeo inspect --raw: %s", raw)
	}
	if h, _, err := v1.SHA256(strings.NewReader(string(raw))); err != nil || h.String() != digest {
		t.Errorf("skopeo's index is %s, we printed %s", h, digest)
	}
}

// TestVerifyIndex builds an index of amd64 and arm64 from a hermetic
// archive, and verify tells it apart from others. Without --arch it
// rebuilds every architecture the index holds: the same index, exit 0.
// An index whose arm64 image was tampered with: exit 1, the amd64 image
// the same, the arm64 one named with the file that differs. --arch naming
// an architecture the index lacks, or two for a single image: exit 1,
// saying which the index holds and which the rebuild, the images in both
// still compared.
func TestVerifyIndex(t *testing.T) {
	testenv.RequireRoot(t)
	archs := []string{"amd64", "arm64"}
	a := bootArchive(t, archs...)
	work := t.TempDir()
	common := []string{"--suite", "bookworm", "--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"),
		"--keyring", a.KeyringPath, "--cache-dir", filepath.Join(work, "cache")}
	layout := "oci:" + filepath.Join(work, "layout")
	out, stderr, err := runBinary(t, append(common, "--arch", "amd64,arm64", "--output", layout)...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	digest := lastLine(out)
	sources, err := oci.OpenAll(t.Context(), layout, false)
	if err != nil || len(sources) != 2 {
		t.Fatalf("the index: %v, %d images", err, len(sources))
	}

	out, stderr, err = runBinary(t, append(append([]string{"verify"}, common...), layout)...)
	want := layout + ": same index, " + digest + "\n" +
		layout + " (amd64): same image, " + sources[0].Digest.String() + "\n" +
		layout + " (arm64): same image, " + sources[1].Digest.String() + "\n"
	if err != nil || out != want {
		t.Errorf("verify of the index: %v\n%s\nwant:\n%s\n%s", err, out, want, lastLines(stderr, 5))
	}

	// arm64's image with a file more, in an index with amd64's.
	tampered := tamperedImage(t, sources[1].Image, "./etc/tampered")
	ii, err := oci.NewIndex(archs, []v1.Image{sources[0].Image, tampered})
	if err != nil {
		t.Fatal(err)
	}
	other := "oci:" + filepath.Join(work, "tampered")
	if err := (oci.Output{Type: oci.OCILayout, Path: filepath.Join(work, "tampered")}).WriteIndex(ii, "debian:bookworm"); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = runBinary(t, append(append([]string{"verify"}, common...), "--arch", "amd64,arm64", other)...)
	if exitCode(err) != 1 {
		t.Fatalf("verify of a tampered index: %v, exit %d, want 1\n%s%s", err, exitCode(err), out, lastLines(stderr, 5))
	}
	oneLineError(t, "verify of a tampered index", err, "the rebuild differs from "+other+": arm64")
	for _, want := range []string{
		other + " (amd64): same image, " + sources[0].Digest.String() + "\n",
		other + " (arm64) is ",
		", the rebuild is " + sources[1].Digest.String() + "\n",
		"  ./etc/tampered: only in A\n",
		", the rebuild is " + digest + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify of a tampered index says no %q:\n%s", want, out)
		}
	}

	// The index holds arm64, --arch asks for i386: amd64 is still compared.
	out, stderr, err = runBinary(t, append(append([]string{"verify"}, common...), "--arch", "amd64,i386", layout)...)
	if exitCode(err) != 1 {
		t.Fatalf("verify --arch amd64,i386: %v, exit %d, want 1\n%s%s", err, exitCode(err), out, lastLines(stderr, 5))
	}
	oneLineError(t, "verify --arch amd64,i386", err, "the rebuild differs from "+layout+": i386, arm64")
	for _, want := range []string{
		layout + " is an index of amd64, arm64, the rebuild of amd64, i386\n",
		layout + " (amd64): same image, " + sources[0].Digest.String() + "\n",
		layout + " (i386): no image for i386, not rebuilt\n",
		layout + " (arm64): not in --arch, not rebuilt\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify --arch amd64,i386 says no %q:\n%s", want, out)
		}
	}

	// One image, amd64's, is no index of two.
	single := "oci:" + filepath.Join(work, "single")
	writeLayout(t, filepath.Join(work, "single"), "bookworm", sources[0].Image)
	out, stderr, err = runBinary(t, append(append([]string{"verify"}, common...), "--arch", "amd64,arm64", single)...)
	oneLineError(t, "verify --arch amd64,arm64 of one image", err, "the rebuild differs from "+single+": arm64")
	for _, want := range []string{
		single + " is an image for amd64, not an index: the rebuild is an index of amd64, arm64\n",
		single + " (amd64): same image, " + sources[0].Digest.String() + "\n",
		single + " (arm64): no image for arm64, not rebuilt\n",
	} {
		if exitCode(err) != 1 || !strings.Contains(out, want) {
			t.Errorf("verify --arch amd64,arm64 of one image: exit %d, says no %q:\n%s%s", exitCode(err), want, out, lastLines(stderr, 5))
		}
	}
}

// tamperedImage is img, an image of one layer, with an empty file at path
// added to its layer, its config and annotations kept.
func tamperedImage(t *testing.T, img v1.Image, path string) v1.Image {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(h)
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Typeflag: tar.TypeReg})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs, cf.History = nil, nil
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	base, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), cf)
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(base, static.NewLayer(b.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	return mutate.Annotations(out, m.Annotations).(v1.Image)
}
