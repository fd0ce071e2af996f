package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/pipeline"
)

// TestImageBookworm builds bookworm from the local snapshot server into
// every output and pushes it to the htpasswd-protected loopback registry
// with credentials from a docker config, then reads each result back with
// other tools: skopeo, umoci and go-containerregistry's puller.
func TestImageBookworm(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	registry, config := testenv.RegistryAuth(t)
	t.Setenv("DOCKER_CONFIG", config)
	work := t.TempDir()
	rootDir, layout, archive := filepath.Join(work, "rootfs"), filepath.Join(work, "layout"), filepath.Join(work, "image.tar")
	ref := registry + "/debian:bookworm"
	common := []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot, "--snapshot-server", server,
		"--cache-dir", sharedCache}
	out, stderr, err := runBinary(t, append(common, "--rootfs", rootDir, "--output", "oci:"+layout,
		"--output", "docker-archive:"+archive, "--push", ref)...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	digest := lines[len(lines)-1]
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != 71 {
		t.Fatalf("last line of stdout %q is not a digest", digest)
	}
	tree, err := oci.ReadTree(rootDir)
	if err != nil {
		t.Fatal(err)
	}

	if got := skopeoDigest(t, "oci:"+layout+":bookworm"); got != digest {
		t.Errorf("skopeo inspect oci: digest %s, we printed %s", got, digest)
	}
	if got := skopeoDigest(t, "docker://"+ref, "--tls-verify=false", "--authfile", filepath.Join(config, "config.json")); got != digest {
		t.Errorf("skopeo inspect docker://: digest %s, we printed %s", got, digest)
	}
	if _, err := exec.Command("skopeo", "inspect", "docker-archive:"+archive).Output(); err != nil {
		t.Errorf("skopeo inspect docker-archive: %v", err)
	}

	// The config's labels, as docker inspect shows them: short, the
	// fingerprint and the inputs but the package lines, which the
	// manifest's annotation has.
	raw, err := exec.Command("skopeo", "inspect", "--config", "oci:"+layout+":bookworm").Output()
	if err != nil {
		t.Fatalf("skopeo inspect --config: %v", err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	src, err := oci.Open(t.Context(), "oci:"+layout+":bookworm", false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := src.Image.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	labels, size := cfg.Config.Labels, 0
	for k, v := range labels {
		size += len(k) + len(v)
	}
	var settings string
	for l := range strings.Lines(m.Annotations[pipeline.AnnotationInputs]) {
		if !strings.HasPrefix(l, "package ") {
			settings += l
		}
	}
	if size > 1024 || labels[pipeline.AnnotationInputs] != settings || !strings.Contains(settings, "suite bookworm\n") ||
		labels[pipeline.AnnotationFingerprint] != m.Annotations[pipeline.AnnotationFingerprint] ||
		strings.Count(m.Annotations[pipeline.AnnotationInputs], "\npackage ") < 80 {
		t.Errorf("config labels (%d bytes): %q\nmanifest annotations: %q", size, labels, m.Annotations)
	}
	t.Logf("config labels: %d bytes, manifest annotations %d", size, len(m.Annotations[pipeline.AnnotationInputs]))

	// umoci unpacks the layout to the same tree as --rootfs.
	bundle := filepath.Join(work, "bundle")
	if msg, err := exec.Command("umoci", "unpack", "--image", layout+":bookworm", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, msg)
	}
	unpacked, err := oci.ReadTree(filepath.Join(bundle, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range oci.Compare(tree, unpacked) {
		t.Errorf("umoci's tree differs from --rootfs: %s", d)
	}

	// The pulled image's layer is the --rootfs tree.
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("pulled image: %d layers, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := oci.ReadTar(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range oci.Compare(tree, pulled) {
		t.Errorf("pulled layer differs from --rootfs: %s", d)
	}

	// Wrong credentials: a one-line 401 error, and the tag stays.
	bad := t.TempDir()
	auth := `{"auths":{"` + registry + `":{"auth":"YmFzZWJ1aWxkOndyb25n"}}}` // basebuild:wrong
	if err := os.WriteFile(filepath.Join(bad, "config.json"), []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", bad)
	_, _, err = runBinary(t, append(common, "--include", "hello", "--push", ref)...)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "\n") {
		t.Errorf("push with a wrong password: err = %v, want a one-line 401 error", err)
	}
	if got := skopeoDigest(t, "docker://"+ref, "--tls-verify=false", "--authfile", filepath.Join(config, "config.json")); got != digest {
		t.Errorf("after a failed push the tag moved to %s", got)
	}
}

// skopeoDigest returns the manifest digest skopeo reads at ref.
func skopeoDigest(t *testing.T, ref string, args ...string) string {
	t.Helper()
	out, err := exec.Command("skopeo", append(append([]string{"inspect"}, args...), ref)...).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	var info struct{ Digest string }
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info.Digest
}
