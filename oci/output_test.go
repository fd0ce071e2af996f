package oci

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/basebuild/basebuild/internal/testenv"
)

func TestParseOutput(t *testing.T) {
	for s, want := range map[string]Output{
		"oci:out":                      {OCILayout, "out"},
		"oci:/a/b:c":                   {OCILayout, "/a/b:c"},
		"docker-archive:debian.tar":    {DockerArchive, "debian.tar"},
		"rootfs-tar:/tmp/rootfs.tar":   {RootfsTar, "/tmp/rootfs.tar"},
		"rootfs-tar:./with space.tar":  {RootfsTar, "./with space.tar"},
		"docker-archive:../x/y.tar.gz": {DockerArchive, "../x/y.tar.gz"},
	} {
		got, err := ParseOutput(s)
		if err != nil || got != want {
			t.Errorf("ParseOutput(%q) = %+v, %v; want %+v", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), s)
		}
	}
	for s, want := range map[string]string{
		"foo:bar":  `output "foo:bar": unknown type "foo" (want oci:DIR, docker-archive:FILE or rootfs-tar:FILE)`,
		"OCI:dir":  `output "OCI:dir": unknown type "OCI" (want oci:DIR, docker-archive:FILE or rootfs-tar:FILE)`,
		"out":      `output "out": want TYPE:PATH (oci:DIR, docker-archive:FILE or rootfs-tar:FILE)`,
		"":         `output "": want TYPE:PATH (oci:DIR, docker-archive:FILE or rootfs-tar:FILE)`,
		"oci:":     `output "oci:": no path`,
		":x":       `output ":x": unknown type "" (want oci:DIR, docker-archive:FILE or rootfs-tar:FILE)`,
		"docker:x": `output "docker:x": unknown type "docker" (want oci:DIR, docker-archive:FILE or rootfs-tar:FILE)`,
	} {
		_, err := ParseOutput(s)
		if err == nil || err.Error() != want {
			t.Errorf("ParseOutput(%q): %v\nwant %s", s, err, want)
		}
	}
}

// testImageOf returns an image of a small tree and the tree.
func testImageOf(t *testing.T, c Compression, o treeOptions) (v1.Image, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	makeTree(t, dir, o)
	l, err := NewLayer(dir, LayerOptions{Epoch: testEpoch, Compression: c, TempDir: t.TempDir()})
	must(t, err)
	t.Cleanup(func() { l.Close() })
	img, err := NewImage(l, ImageOptions{Arch: "amd64", Epoch: testEpoch, Suite: "bookworm", CreatedBy: "basebuild test"})
	must(t, err)
	return img, dir
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr)
	}
	return out
}

// skopeoInspect is what the tests read of "skopeo inspect".
type skopeoInspect struct {
	Digest       string
	Architecture string
	Os           string
	Labels       map[string]string
	Layers       []string
	Created      time.Time
}

func inspect(t *testing.T, ref string) skopeoInspect {
	t.Helper()
	var si skopeoInspect
	must(t, json.Unmarshal(run(t, "skopeo", "inspect", ref), &si))
	return si
}

func TestOCILayout(t *testing.T) {
	testenv.LookPath(t, "skopeo")
	testenv.LookPath(t, "umoci")
	img, tree := testImageOf(t, Gzip, treeOptions{xattrs: true, dotLinks: true, newer: true})
	dir := filepath.Join(t.TempDir(), "layout")
	out := Output{OCILayout, dir}
	must(t, out.Check())
	must(t, out.Write(img, "basebuild/debian:bookworm"))

	digest, err := img.Digest()
	must(t, err)
	si := inspect(t, "oci:"+dir+":bookworm")
	if si.Digest != digest.String() {
		t.Errorf("skopeo digest %s, want %s", si.Digest, digest)
	}
	if si.Labels["org.opencontainers.image.version"] != "bookworm" || si.Labels["org.opencontainers.image.source"] != SourceURL ||
		si.Labels["org.opencontainers.image.created"] != "2024-01-01T00:00:00Z" || si.Architecture != "amd64" || si.Os != "linux" {
		t.Errorf("skopeo inspect: %+v", si)
	}

	// Readable by all, whoever wrote it.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o644)
		if d.IsDir() {
			want = 0o755
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	must(t, err)

	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--image", dir+":bookworm", bundle)
	unpacked, err := ReadTree(filepath.Join(bundle, "rootfs"))
	must(t, err)
	want, err := ReadTree(tree)
	must(t, err)
	// umoci restores every modification time, directories' and the
	// root's too: the tree and the unpacked image differ only where the
	// layer clamped a time to the epoch.
	var diffs []string
	for _, d := range Compare(unpacked, want) {
		diffs = append(diffs, d.String())
	}
	clamped := "mtime 2024-01-01T00:00:00Z != 2024-01-01T01:00:00Z"
	wantDiffs := []string{".: " + clamped, "./bin: " + clamped, "./empty: " + clamped, "./etc/passwd: " + clamped}
	if !slices.Equal(diffs, wantDiffs) {
		t.Errorf("unpacked image differs from the tree:\n%s\nwant\n%s", strings.Join(diffs, "\n"), strings.Join(wantDiffs, "\n"))
	}
}

// TestOCILayoutUpdate writes two tags into one layout, then one again:
// each tag names one image, the last written.
func TestOCILayoutUpdate(t *testing.T) {
	testenv.LookPath(t, "skopeo")
	gz, _ := testImageOf(t, Gzip, treeOptions{xattrs: true, dotLinks: true})
	zst, _ := testImageOf(t, Zstd, treeOptions{xattrs: true, dotLinks: true})
	dir := filepath.Join(t.TempDir(), "layout")
	must(t, os.Mkdir(dir, 0o755)) // an empty directory is fine
	out := Output{OCILayout, dir}
	must(t, out.Write(gz, "basebuild/debian:bookworm"))
	must(t, out.Write(zst, "basebuild/debian:other"))
	must(t, out.Check())
	must(t, out.Write(zst, "basebuild/debian:bookworm"))
	// A layout skopeo wrote is added to as well, its image kept.
	other := filepath.Join(t.TempDir(), "skopeo")
	run(t, "skopeo", "copy", "--quiet", "oci:"+dir+":other", "oci:"+other+":theirs")
	must(t, Output{OCILayout, other}.Write(gz, "basebuild/debian:bookworm"))
	gd, _ := gz.Digest()
	if si := inspect(t, "oci:"+other+":bookworm"); si.Digest != gd.String() {
		t.Errorf("bookworm in skopeo's layout: %s, want %s", si.Digest, gd)
	}
	if si := inspect(t, "oci:"+other+":theirs"); len(si.Layers) != 1 {
		t.Errorf("skopeo's image in its layout: %+v", si)
	}

	lp, err := layout.FromPath(dir)
	must(t, err)
	ii, err := lp.ImageIndex()
	must(t, err)
	im, err := ii.IndexManifest()
	must(t, err)
	zd, _ := zst.Digest()
	var tags []string
	for _, m := range im.Manifests {
		tag := m.Annotations[AnnotationRefName]
		tags = append(tags, tag)
		if m.Digest != zd {
			t.Errorf("%s: %s, want %s", tag, m.Digest, zd)
		}
		if m.Platform == nil || m.Platform.String() != "linux/amd64" {
			t.Errorf("%s: platform %v", tag, m.Platform)
		}
	}
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"bookworm", "other"}) {
		t.Errorf("tags %q, want bookworm and other", tags)
	}
	for _, tag := range tags {
		if si := inspect(t, "oci:"+dir+":"+tag); si.Digest != zd.String() {
			t.Errorf("%s: skopeo digest %s, want %s", tag, si.Digest, zd)
		}
	}
	noTemporaries(t, filepath.Dir(dir), "layout")
}

// noTemporaries fails if dir has anything but names.
func noTemporaries(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		if !slices.Contains(names, e.Name()) {
			t.Errorf("%s left in %s", e.Name(), dir)
		}
	}
}

// TestOCILayoutRefusesOtherDirectory writes to a directory that is
// neither empty nor a layout: refused, and untouched.
func TestOCILayoutRefusesOtherDirectory(t *testing.T) {
	img, _ := testImageOf(t, Gzip, treeOptions{xattrs: true, dotLinks: true})
	dir := filepath.Join(t.TempDir(), "home")
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600))
	out := Output{OCILayout, dir}
	for _, err := range []error{out.Check(), out.Write(img, "basebuild/debian:bookworm")} {
		if err == nil || !strings.Contains(err.Error(), "output oci:"+dir+": ") || !strings.Contains(err.Error(), "not an OCI image layout") {
			t.Errorf("got %v, want a refusal naming the output", err)
		}
	}
	noTemporaries(t, dir, "notes.txt")
	noTemporaries(t, filepath.Dir(dir), "home")
	if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "mine" {
		t.Errorf("notes.txt now %q", b)
	}
	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, nil, 0o644))
	if err := (Output{OCILayout, file}).Check(); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("oci:FILE: %v", err)
	}
	if err := (Output{OCILayout, filepath.Join(file, "x")}).Check(); err == nil {
		t.Errorf("oci:FILE/x accepted")
	}
}

func TestDockerArchive(t *testing.T) {
	testenv.LookPath(t, "skopeo")
	img, _ := testImageOf(t, Gzip, treeOptions{xattrs: true, dotLinks: true})
	file := filepath.Join(t.TempDir(), "debian.tar")
	must(t, Output{DockerArchive, file}.Write(img, "basebuild/debian:bookworm"))
	si := inspect(t, "docker-archive:"+file)
	if si.Labels["org.opencontainers.image.version"] != "bookworm" || si.Architecture != "amd64" || len(si.Layers) != 1 {
		t.Errorf("skopeo inspect: %+v", si)
	}
	var repoTags []struct{ RepoTags []string }
	must(t, json.Unmarshal(run(t, "tar", "-xOf", file, "manifest.json"), &repoTags))
	if len(repoTags) != 1 || !slices.Equal(repoTags[0].RepoTags, []string{"basebuild/debian:bookworm"}) {
		t.Errorf("manifest.json: %+v", repoTags)
	}

	// skopeo copies it into a layout with our config: same diff IDs,
	// labels and history.
	dir := filepath.Join(t.TempDir(), "copy")
	run(t, "skopeo", "copy", "--quiet", "docker-archive:"+file, "oci:"+dir+":bookworm")
	var cfg v1.ConfigFile
	must(t, json.Unmarshal(run(t, "skopeo", "inspect", "--config", "oci:"+dir+":bookworm"), &cfg))
	want, err := img.ConfigFile()
	must(t, err)
	if !slices.Equal(cfg.RootFS.DiffIDs, want.RootFS.DiffIDs) || cfg.History[0].CreatedBy != "basebuild test" ||
		cfg.Config.Labels["org.opencontainers.image.source"] != SourceURL {
		t.Errorf("copied config %+v, want %+v", cfg, want)
	}
	noTemporaries(t, filepath.Dir(file), "debian.tar")
}

func TestRootfsTar(t *testing.T) {
	img, tree := testImageOf(t, Zstd, treeOptions{xattrs: true, dotLinks: true})
	file := filepath.Join(t.TempDir(), "rootfs.tar")
	must(t, os.WriteFile(file, []byte("old"), 0o600))
	must(t, Output{RootfsTar, file}.Write(img, ""))
	got, err := os.ReadFile(file)
	must(t, err)
	if !bytes.Equal(got, writeTar(t, tree)) {
		t.Errorf("rootfs-tar differs from WriteTar's archive")
	}
	fi, err := os.Stat(file)
	must(t, err)
	if !fi.ModTime().Equal(testEpoch) || fi.Mode().Perm() != 0o644 {
		t.Errorf("rootfs-tar mtime %v, mode %v; want the epoch and 0644", fi.ModTime(), fi.Mode())
	}
	noTemporaries(t, filepath.Dir(file), "rootfs.tar")
}

// TestFailedWriteKeepsFile fails a write halfway, the layer's blob being
// gone: the existing file stays as it was, and no temporary file is left.
func TestFailedWriteKeepsFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rootfs")
	makeTree(t, dir, treeOptions{})
	l, err := NewLayer(dir, LayerOptions{Epoch: testEpoch, TempDir: t.TempDir()})
	must(t, err)
	img, err := NewImage(l, ImageOptions{Arch: "amd64", Epoch: testEpoch, Suite: "bookworm"})
	must(t, err)
	must(t, l.Close())
	out := t.TempDir()
	for _, o := range []Output{
		{DockerArchive, filepath.Join(out, "debian.tar")},
		{RootfsTar, filepath.Join(out, "rootfs.tar")},
		{OCILayout, filepath.Join(out, "layout")},
	} {
		if o.Type != OCILayout {
			must(t, os.WriteFile(o.Path, []byte("previous"), 0o644))
		}
		err := o.Write(img, "basebuild/debian:bookworm")
		if err == nil || !strings.HasPrefix(err.Error(), "output "+o.String()+": ") {
			t.Errorf("%s: %v, want an error naming the output", o, err)
		}
		if o.Type != OCILayout {
			if b, _ := os.ReadFile(o.Path); string(b) != "previous" {
				t.Errorf("%s: now %q", o, b)
			}
		}
	}
	noTemporaries(t, out, "debian.tar", "rootfs.tar")
}

func TestWriteErrors(t *testing.T) {
	img, _ := testImageOf(t, Gzip, treeOptions{xattrs: true, dotLinks: true})
	dir := t.TempDir()
	for _, c := range []struct {
		o    Output
		ref  string
		want string
	}{
		{Output{DockerArchive, filepath.Join(dir, "missing", "x.tar")}, "a/b:c", "no directory"},
		{Output{DockerArchive, dir}, "a/b:c", "is a directory"},
		{Output{RootfsTar, dir}, "", "is a directory"},
		{Output{DockerArchive, filepath.Join(dir, "x.tar")}, "a/b", `image name "a/b": no tag`},
		{Output{OCILayout, filepath.Join(dir, "l")}, "A:b", `image name "A:b"`},
	} {
		err := c.o.Write(img, c.ref)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "output "+c.o.String()+": ") {
			t.Errorf("%s with %q: %v, want %q", c.o, c.ref, err, c.want)
		}
	}
	noTemporaries(t, dir)
}
