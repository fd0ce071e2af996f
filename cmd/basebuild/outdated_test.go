package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/pipeline"
)

// recordedImage returns an image of linux/amd64 that records inputs as
// basebuild's do: in its manifest's annotation and its config's label.
// bare is the same without the annotation, as an image built FROM it
// inherits only the label.
func recordedImage(t *testing.T, inputs string) (img, bare v1.Image) {
	t.Helper()
	bare, err := mutate.ConfigFile(emptyImage(t), &v1.ConfigFile{OS: "linux", Architecture: "amd64",
		Config: v1.Config{Labels: map[string]string{pipeline.AnnotationInputs: inputs}}})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(bare, map[string]string{pipeline.AnnotationInputs: inputs}).(v1.Image)
	return img, bare
}

// withStatus returns img with a layer holding the dpkg status status, as
// a derived image that installed packages has.
func withStatus(t *testing.T, img v1.Image, status string) v1.Image {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "./var/lib/dpkg/status", Mode: 0o644, Size: int64(len(status)), Typeflag: tar.TypeReg})
	tw.Write([]byte(status))
	tw.Close()
	img, err := mutate.AppendLayers(img, static.NewLayer(b.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestOutdated publishes a glibc security update whose changelog names
// a CVE on a hermetic archive. outdated, through the binary, lists libc6
// and libc-bin of an image built before it as security updates with the
// CVE and exits 100; an image built after it is up to date (exit 0); an
// image built FROM the first with one more package installed (dpkg
// status in its layer, the inputs inherited as a label, without the
// package lines or, as basebuild 0.2.0 wrote it, with them) is checked
// too, that package included.
func TestOutdated(t *testing.T) {
	a := apttest.New(t,
		apttest.Suite{Name: "bookworm-updates"},
		apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{
			{Name: "base-files", Version: "12.4", Fields: map[string]string{"Priority": "required", "Essential": "yes"}},
			{Name: "libc6", Version: "2.36-9", Fields: map[string]string{"Priority": "optional", "Source": "glibc"}},
			{Name: "libc-bin", Version: "2.36-9", Fields: map[string]string{"Priority": "required", "Source": "glibc"}},
			{Name: "hello", Version: "2.10-3", Fields: map[string]string{"Priority": "optional"},
				Files: []apttest.File{{Path: "usr/share/doc/hello/changelog.Debian.gz", Body: apttest.Gzip(
					"hello (2.10-3) unstable; urgency=medium\n\n  * Rebuild.\n\n -- Santiago Vila <sanvila@debian.org>  Sun, 01 Jan 2023 00:00:00 +0100\n")}}},
		}},
		securitySuite("2.36-9+deb12u1", glibcChangelog([]string{"2.36-9+deb12u1", "2.36-9"}, []string{"CVE-2024-2961", "CVE-2022-0001"})),
	)
	work := t.TempDir()
	common := []string{"--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"),
		"--keyring", a.KeyringPath, "--cache-dir", filepath.Join(work, "cache")}
	inputs := "basebuild test\nsuite bookworm\narch amd64\nsnapshot none\n"

	old, oldBare := recordedImage(t, inputs)
	writeLayout(t, filepath.Join(work, "old"), "bookworm", old,
		auditArtifacts(t, old, "amd64", "base-files 12.4 base-files", "libc6 2.36-9 glibc", "libc-bin 2.36-9 glibc")...)
	fresh, _ := recordedImage(t, inputs+"epoch 2024-02-01T00:00:00Z\n")
	writeLayout(t, filepath.Join(work, "fresh"), "bookworm", fresh,
		auditArtifacts(t, fresh, "amd64", "base-files 12.4 base-files", "libc6 2.36-9+deb12u1 glibc", "libc-bin 2.36-9+deb12u1 glibc")...)
	status := ""
	for _, p := range []string{"base-files 12.4 base-files", "hello 2.10-2 hello", "libc-bin 2.36-9 glibc", "libc6 2.36-9 glibc"} {
		f := strings.Fields(p)
		status += "Package: " + f[0] + "\nStatus: install ok installed\nArchitecture: amd64\nSource: " + f[2] + "\nVersion: " + f[1] + "\n\n"
	}
	writeLayout(t, filepath.Join(work, "derived"), "app", withStatus(t, oldBare, status))
	// Built FROM an image of basebuild 0.2.0, whose label has the package
	// lines too.
	_, longBare := recordedImage(t, inputs+"package libc6 2.36-9 amd64 "+strings.Repeat("0", 64)+"\n")
	writeLayout(t, filepath.Join(work, "derived-long"), "app", withStatus(t, longBare, status))

	out, stderr, err := runBinary(t, append([]string{"outdated", "oci:" + filepath.Join(work, "old")}, common...)...)
	if code := exitCode(err); code != 100 {
		t.Fatalf("outdated of an old image: exit %d (%v), want 100\n%s%s", code, err, out, stderr)
	}
	for _, want := range []string{
		"libc6 2.36-9 -> 2.36-9+deb12u1 (glibc, bookworm-security) [security] CVE-2024-2961\n",
		"libc-bin 2.36-9 -> 2.36-9+deb12u1 (glibc, bookworm-security) [security] CVE-2024-2961\n",
		"2 updates, 2 from the security suite", "Fix a buffer overflow (CVE-2024-2961)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("outdated of an old image lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "CVE-2022-0001") || strings.Contains(out, "base-files") {
		t.Errorf("outdated names an older CVE or an up-to-date package:\n%s", out)
	}

	out, stderr, err = runBinary(t, append([]string{"outdated", "oci:" + filepath.Join(work, "fresh")}, common...)...)
	if err != nil || !strings.Contains(out, "up to date") {
		t.Errorf("outdated of a fresh image: %v\n%s%s", err, out, stderr)
	}

	out, stderr, err = runBinary(t, append([]string{"outdated", "--json", "oci:" + filepath.Join(work, "derived"), "oci:" + filepath.Join(work, "derived-long")}, common...)...)
	if code := exitCode(err); code != 100 {
		t.Fatalf("outdated of a derived image: exit %d (%v), want 100\n%s", code, err, stderr)
	}
	var results []struct {
		From    string
		Suite   string
		Updates []pipeline.Update
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatal(err)
	}
	want := "hello 2.10-2 -> 2.10-3 bookworm, libc-bin 2.36-9 -> 2.36-9+deb12u1 bookworm-security, libc6 2.36-9 -> 2.36-9+deb12u1 bookworm-security"
	if len(results) != 2 {
		t.Fatalf("outdated --json of two derived images: %s", out)
	}
	for _, r := range results {
		var got []string
		for _, u := range r.Updates {
			got = append(got, u.Name+" "+u.Installed+" -> "+u.Candidate+" "+u.Suite)
		}
		if r.From != "dpkg-status" || r.Suite != "bookworm" || strings.Join(got, ", ") != want {
			t.Errorf("outdated --json of a derived image: %s\nwant updates %s", out, want)
		}
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"outdated"}, 2, "no IMAGE"},
		{[]string{"outdated", "--jobs", "0", "oci:" + filepath.Join(work, "old")}, 2, "--jobs 0"},
		{[]string{"outdated", "oci:" + filepath.Join(work, "nothing")}, 1, "is not an OCI layout"},
		{[]string{"outdated", "oci:" + filepath.Join(work, "old"), "--mirror", "http://127.0.0.1:9/debian"}, 1, "127.0.0.1:9"},
	} {
		_, _, err := runBinary(t, append(tc.args, common[2:]...)...)
		oneLineError(t, strings.Join(tc.args, " "), err, tc.want)
		if code := exitCode(err); code != tc.code {
			t.Errorf("%s: exit %d, want %d", strings.Join(tc.args, " "), code, tc.code)
		}
	}
	// An image with no package data at all.
	empty, _ := recordedImage(t, inputs)
	writeLayout(t, filepath.Join(work, "empty"), "x", empty)
	_, _, err = runBinary(t, append([]string{"outdated", "oci:" + filepath.Join(work, "empty")}, common...)...)
	oneLineError(t, "outdated of an image without package data", err, "no package manifest attached and no /var/lib/dpkg/status")
	if code := exitCode(err); code != 1 {
		t.Errorf("outdated of an image without package data: exit %d, want 1", code)
	}
	// An image without basebuild's records and without --suite.
	writeLayout(t, filepath.Join(work, "foreign"), "x", withStatus(t, emptyImage(t), status))
	_, _, err = runBinary(t, append([]string{"outdated", "oci:" + filepath.Join(work, "foreign")}, common...)...)
	oneLineError(t, "outdated of an image without records", err, "records no suite")
}
