package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/rootfs"
)

// TestForeignArchBookworm builds bookworm for arm64 (amd64 on an arm64
// host), a foreign architecture: the maintainer scripts run through
// qemu-user-static's binfmt_misc entries (make test registers them with
// scripts/binfmt.sh). The image names the platform (arm64 v8), skopeo
// reads it, and in the chroot dpkg is of that architecture, its state
// clean, the shell works, and the packages are the resolver's.
func TestForeignArchBookworm(t *testing.T) {
	testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	// arm64, or amd64 on an arm64 host: the platform it names, and the
	// machine qemu's uname reports.
	arch, variant, machine := "arm64", "v8", "aarch64"
	if debian.ArchOf(runtime.GOARCH) == arch {
		arch, variant, machine = "amd64", "", "x86_64"
	}
	// make test registered the entries; a host without them fails here,
	// with the build's own message.
	if err := rootfs.CheckArch(arch); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	dir, layoutDir := filepath.Join(work, "rootfs"), filepath.Join(work, "layout")
	common := []string{"--suite", "bookworm", "--arch", arch, "--cache-dir", sharedCache}
	list, stderr, err := runBinary(t, append(common, "--dry-run")...)
	if err != nil {
		t.Fatalf("--dry-run: %v\n%s", err, stderr)
	}
	start := time.Now()
	out, stderr, err := runBinary(t, append(common, "--rootfs", dir, "--output", "oci:"+layoutDir)...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	t.Logf("%s build: %s", arch, time.Since(start).Round(time.Second))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	digest := lines[len(lines)-1]
	if mounts := mountsUnder(t, dir); len(mounts) > 0 {
		t.Fatalf("mounts left after the build: %v", mounts)
	}

	// The image's config names the platform, as oci.Platform does.
	want, err := oci.Platform(arch)
	if err != nil {
		t.Fatal(err)
	}
	if want.Architecture != arch || want.Variant != variant {
		t.Fatalf("oci.Platform(%s) = %+v", arch, want)
	}
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var desc *v1.Descriptor
	for i, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == "bookworm" {
			desc = &im.Manifests[i]
		}
	}
	if desc == nil {
		t.Fatalf("layout index has no image tagged bookworm: %+v", im.Manifests)
	}
	if desc.Digest.String() != digest {
		t.Errorf("layout's bookworm manifest %s, we printed %s", desc.Digest, digest)
	}
	if desc.Platform == nil || !desc.Platform.Equals(want) {
		t.Errorf("layout index: platform %v, want %v", desc.Platform, want)
	}
	img, err := p.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != want.Architecture || cfg.Variant != want.Variant {
		t.Errorf("image config: os %q architecture %q variant %q, want linux %s %s", cfg.OS, cfg.Architecture, cfg.Variant, want.Architecture, want.Variant)
	}

	// skopeo reads the layout and sees an image of arch.
	raw, err := exec.Command("skopeo", "inspect", "oci:"+layoutDir+":bookworm").Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	var info struct{ Digest, Architecture, Os string }
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	if info.Digest != digest || info.Architecture != arch || info.Os != "linux" {
		t.Errorf("skopeo inspect: digest %s architecture %q os %q, want %s %s linux", info.Digest, info.Architecture, info.Os, digest, arch)
	}

	// In the chroot, arch's programs run through binfmt_misc.
	run := chrootRunner(t, dir)
	if s := run("dpkg", "--print-architecture"); s != arch+"\n" {
		t.Errorf("dpkg --print-architecture = %q, want %s", s, arch)
	}
	if s := run("dpkg", "--audit"); s != "" {
		t.Errorf("dpkg --audit: %s", s)
	}
	run("/bin/sh", "-c", "true")
	// qemu answers uname for the programs it runs.
	if s := run("uname", "-m"); s != machine+"\n" {
		t.Errorf("uname -m in the chroot = %q, want %s", s, machine)
	}
	if s := run("dpkg-query", "-W", "-f", "${Package} ${Version} ${Architecture}\n"); s != list {
		t.Errorf("dpkg-query -W differs from --dry-run --arch %s:\n%s", arch, lineDiff(list, s))
	}
	if !strings.Contains(list, " "+arch+"\n") {
		t.Errorf("--dry-run --arch %s lists no %s package:\n%s", arch, arch, list)
	}
}
