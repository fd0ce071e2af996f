package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
	"github.com/basebuild/basebuild/rootfs"
)

var hermeticEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// The digests of the hermetic builds below. They cover the layer tar's
// bytes (entry order, headers, modes, owners, mtimes clamped to the epoch,
// xattrs, hard links), its gzip compression, and the image config,
// manifest and annotations, including the recorded inputs. A change to
// any of these changes them: such a change needs a commit that says why
// every image basebuild makes now has a different digest.
const (
	fixedTreeImageDigest = "sha256:321e32eac92a70cb95a4adb01431b8ab9c359b006eb20cad71ff7c15a83c3b08"
	fixedDebsLayerDigest = "sha256:12219996a94420cd544f2f85e45c424b453334a3267ff4adb8117b0f5009b922"
)

// TestFixedTreeDigest makes the image of a fixed tree, as Image does after
// building the rootfs, and checks its digest.
func TestFixedTreeDigest(t *testing.T) {
	testenv.RequireRoot(t)
	defer unix.Umask(unix.Umask(0o022)) // the tree is fixed, whatever the caller's umask
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(dir, 0o755))
	for _, d := range []string{"etc", "usr", "usr/bin", "tmp"} {
		must(os.Mkdir(filepath.Join(dir, d), 0o755))
		must(os.Chmod(filepath.Join(dir, d), 0o755)) // whatever the umask
	}
	must(os.Chmod(filepath.Join(dir, "tmp"), 0o1777))
	must(os.WriteFile(filepath.Join(dir, "etc/hostname"), []byte("debian\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "etc/shadow"), []byte("root:*:19722:0:99999:7:::\n"), 0o640))
	must(os.Chmod(filepath.Join(dir, "etc/shadow"), 0o640))
	must(os.Chown(filepath.Join(dir, "etc/shadow"), 0, 42))
	must(os.WriteFile(filepath.Join(dir, "usr/bin/tool"), []byte("#!/bin/sh\necho tool\n"), 0o755))
	must(os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o4755))
	must(os.Link(filepath.Join(dir, "usr/bin/tool"), filepath.Join(dir, "usr/bin/tool2")))
	must(os.Symlink("tool", filepath.Join(dir, "usr/bin/link")))
	must(unix.Setxattr(filepath.Join(dir, "usr/bin/tool"), "security.capability",
		[]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
	// A file newer than the epoch is clamped to it, an older one kept.
	old := time.Date(2020, 5, 17, 12, 0, 0, 0, time.UTC)
	must(os.Chtimes(filepath.Join(dir, "etc/hostname"), old, old))
	future := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	must(os.Chtimes(filepath.Join(dir, "usr/bin/tool"), future, future))

	o := &Options{Spec: Spec{Suite: "bookworm", Arch: "amd64", Snapshot: hermeticEpoch}}
	set := &plan.Plan{Suite: "bookworm", Arch: "amd64", Epoch: hermeticEpoch, Packages: []plan.Package{
		{Name: "base-files", Version: "12.4", Architecture: "amd64", SHA256: "0000000000000000000000000000000000000000000000000000000000000001"},
	}}
	if got := hermeticImage(t, dir, o, set); got != fixedTreeImageDigest {
		t.Errorf("image digest of the fixed tree: %s, want %s", got, fixedTreeImageDigest)
	}
}

// TestFixedDebsLayerDigest unpacks fixed debs and writes their dpkg
// database as a build does before configuring (which needs a real dpkg in
// the tree), and checks the layer's digest.
func TestFixedDebsLayerDigest(t *testing.T) {
	testenv.RequireRoot(t)
	// As basebuild's main does: the dpkg database's directories are made
	// with the umask's modes.
	defer unix.Umask(unix.Umask(0o022))
	debs := []apttest.Deb{
		{Name: "base-files", Version: "12.4", Fields: map[string]string{"Priority": "required", "Essential": "yes"},
			Files: []apttest.File{
				{Path: "etc/debian_version", Body: "12.4\n"},
				{Path: "etc/motd", Body: "welcome\n"},
				{Path: "usr/share/doc/base-files/README", Body: "readme\n", Mode: 0o644},
			},
			Scripts: map[string]string{"conffiles": "/etc/motd\n", "postinst": "#!/bin/sh\nexit 0\n"}},
		{Name: "tool", Version: "1.0-1", Fields: map[string]string{"Priority": "required", "Depends": "base-files"},
			Files: []apttest.File{
				{Path: "usr/bin/tool", Body: "#!/bin/sh\n", Mode: 0o755},
				{Path: "usr/bin/tool-alias", Type: '1', Linkname: "usr/bin/tool"},
				{Path: "usr/bin/t", Type: '2', Linkname: "tool"},
				// Its security.capability is not applied, as dpkg
				// ignores data.tar's xattrs: the layer is the one
				// these debs make without it.
				{Path: "usr/bin/ping", Body: "ping\n", Mode: 0o755,
					Xattrs: map[string]string{"security.capability": "\x00\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
			}},
	}
	cache := t.TempDir()
	var files []rootfs.DebFile
	for _, d := range debs {
		data, err := apttest.BuildDeb(d)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(cache, d.Name+".deb")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, rootfs.DebFile{Package: plan.Package{Name: d.Name, Version: d.Version, Architecture: "amd64",
			Priority: "required", Required: true}, Path: path})
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	installed, err := rootfs.Unpack(context.Background(), dir, files, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rootfs.WriteDatabase(dir, "amd64", installed); err != nil {
		t.Fatal(err)
	}
	layer, err := oci.NewLayer(dir, oci.LayerOptions{Epoch: hermeticEpoch, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	got, err := layer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != fixedDebsLayerDigest {
		t.Errorf("layer digest of the fixed debs: %s, want %s", got, fixedDebsLayerDigest)
	}
}

// hermeticImage returns the digest of the image Image makes of the tree dir.
func hermeticImage(t *testing.T, dir string, o *Options, set *plan.Plan) string {
	t.Helper()
	layer, err := oci.NewLayer(dir, oci.LayerOptions{Epoch: set.Epoch, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	img, err := oci.NewImage(layer, o.imageOptions(set))
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
