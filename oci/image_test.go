package oci

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testLayer is the layer of a small tree, removed when the test ends.
func testLayer(t *testing.T, c Compression) *Layer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	makeTree(t, dir, treeOptions{xattrs: true})
	l, err := NewLayer(dir, LayerOptions{Epoch: testEpoch, Compression: c, TempDir: t.TempDir()})
	must(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func TestNewImage(t *testing.T) {
	l := testLayer(t, Gzip)
	snapshot := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	img, err := NewImage(l, ImageOptions{
		Arch:        "armhf",
		Epoch:       testEpoch,
		Suite:       "bookworm",
		Snapshot:    snapshot,
		CreatedBy:   "basebuild 0.1 --suite bookworm --snapshot 20240102T030405Z",
		Annotations: map[string]string{"org.example.fingerprint": "abc", "org.example.inputs": "a\nb\n"},
		Labels:      map[string]string{"org.example.inputs": "a\n"},
	})
	must(t, err)

	wantAnnotations := map[string]string{
		"org.opencontainers.image.created": "2024-01-01T00:00:00Z",
		"org.opencontainers.image.version": "bookworm-20240102T030405Z",
		"org.opencontainers.image.source":  "https://github.com/basebuild/basebuild",
		"org.example.fingerprint":          "abc",
		"org.example.inputs":               "a\nb\n",
	}
	m, err := img.Manifest()
	must(t, err)
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("manifest %s, config %s", m.MediaType, m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("layers %+v", m.Layers)
	}
	if d, _ := l.Digest(); m.Layers[0].Digest != d {
		t.Errorf("layer digest %s, want %s", m.Layers[0].Digest, d)
	}
	if !maps.Equal(m.Annotations, wantAnnotations) {
		t.Errorf("annotations %v, want %v", m.Annotations, wantAnnotations)
	}

	cfg, err := img.ConfigFile()
	must(t, err)
	diffID, _ := l.DiffID()
	if cfg.OS != "linux" || cfg.Architecture != "arm" || cfg.Variant != "v7" {
		t.Errorf("platform %s/%s/%s, want linux/arm/v7", cfg.OS, cfg.Architecture, cfg.Variant)
	}
	if !cfg.Created.Equal(testEpoch) {
		t.Errorf("created %v", cfg.Created)
	}
	if cfg.RootFS.Type != "layers" || !slices.Equal(cfg.RootFS.DiffIDs, []v1.Hash{diffID}) {
		t.Errorf("rootfs %+v, want diff ID %s", cfg.RootFS, diffID)
	}
	if len(cfg.History) != 1 || !cfg.History[0].Created.Equal(testEpoch) ||
		cfg.History[0].CreatedBy != "basebuild 0.1 --suite bookworm --snapshot 20240102T030405Z" || cfg.History[0].EmptyLayer {
		t.Errorf("history %+v", cfg.History)
	}
	if !slices.Equal(cfg.Config.Cmd, []string{"bash"}) ||
		!slices.Equal(cfg.Config.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}) {
		t.Errorf("cmd %q, env %q", cfg.Config.Cmd, cfg.Config.Env)
	}
	// The labels are the annotations, but where Labels replace them.
	wantLabels := maps.Clone(wantAnnotations)
	wantLabels["org.example.inputs"] = "a\n"
	if !maps.Equal(cfg.Config.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", cfg.Config.Labels, wantLabels)
	}
	// The config as written: created in UTC, nothing of the build host.
	raw, err := img.RawConfigFile()
	must(t, err)
	var fields map[string]json.RawMessage
	must(t, json.Unmarshal(raw, &fields))
	if string(fields["created"]) != `"2024-01-01T00:00:00Z"` {
		t.Errorf("created %s", fields["created"])
	}
	for _, f := range []string{"container", "docker_version", "os.version", "author"} {
		if _, ok := fields[f]; ok {
			t.Errorf("config has %q: %s", f, raw)
		}
	}
}

func TestNewImageVersion(t *testing.T) {
	l := testLayer(t, Zstd)
	img, err := NewImage(l, ImageOptions{Arch: "amd64", Epoch: testEpoch, Suite: "trixie"})
	must(t, err)
	m, err := img.Manifest()
	must(t, err)
	if v := m.Annotations["org.opencontainers.image.version"]; v != "trixie" {
		t.Errorf("version %q, want trixie", v)
	}
	if m.Layers[0].MediaType != types.OCILayerZStd {
		t.Errorf("layer media type %s", m.Layers[0].MediaType)
	}
	if _, err := NewImage(l, ImageOptions{Arch: "amd64", Suite: "trixie"}); err == nil {
		t.Errorf("NewImage without epoch succeeded")
	}
	if _, err := NewImage(l, ImageOptions{Arch: "vax", Epoch: testEpoch}); err == nil || !strings.Contains(err.Error(), `"vax"`) {
		t.Errorf("NewImage for vax: %v", err)
	}
}

func TestPlatform(t *testing.T) {
	for arch, want := range map[string]string{
		"amd64":    "linux/amd64",
		"arm64":    "linux/arm64/v8",
		"armhf":    "linux/arm/v7",
		"armel":    "linux/arm/v5",
		"i386":     "linux/386",
		"ppc64el":  "linux/ppc64le",
		"s390x":    "linux/s390x",
		"riscv64":  "linux/riscv64",
		"mips64el": "linux/mips64le",
	} {
		p, err := Platform(arch)
		must(t, err)
		if p.String() != want {
			t.Errorf("Platform(%q) = %s, want %s", arch, p, want)
		}
		if got, err := Arch(p); err != nil || got != arch {
			t.Errorf("Arch(%s) = %q, %v; want %s", p, got, err, arch)
		}
	}
	// A variant left out names the architecture, where only one has it.
	if got, err := Arch(v1.Platform{OS: "linux", Architecture: "arm64"}); err != nil || got != "arm64" {
		t.Errorf("Arch(linux/arm64) = %q, %v; want arm64", got, err)
	}
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "arm"}, {OS: "windows", Architecture: "amd64"}, {OS: "linux", Architecture: "sparc64"}} {
		if got, err := Arch(p); err == nil {
			t.Errorf("Arch(%s) = %q, want an error", p.String(), got)
		}
	}
}
