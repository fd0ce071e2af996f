package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/pipeline"
	"github.com/basebuild/basebuild/plan"
	"github.com/basebuild/basebuild/rootfs"
)

// TestContainmentEvilDeb configures bookworm plus a deb whose maintainer
// scripts try to write outside the chroot (through .., an absolute host
// path, /proc/1/root, a mount) and checks that nothing on the host changed
// and the writes landed inside the rootfs.
func TestContainmentEvilDeb(t *testing.T) {
	testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	work := t.TempDir()
	before := hostState(t, work)
	sentinel := filepath.Join(filepath.Dir(work), "sentinel")
	escape := filepath.Join(sentinel, "escaped")

	o := &pipeline.Options{Spec: pipeline.Spec{Suite: "bookworm", Arch: "amd64"}, Runtime: pipeline.Runtime{CacheDir: sharedCache, Jobs: 4}}
	c, err := o.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	set, err := pipeline.Resolve(ctx, o, c)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := c.Download(ctx, set.Packages, o.Jobs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var debs []rootfs.DebFile
	for _, p := range set.Packages {
		debs = append(debs, rootfs.DebFile{Package: p, Path: paths[p.SHA256]})
	}
	// Each script makes the sentinel's directory first: in the chroot that
	// lands inside, so the writes that follow have somewhere to go there.
	script := `#!/bin/sh
mkdir -p ` + sentinel + `
echo preinst > /../../..` + escape + `-dotdot
cd / && cd ../../.. && echo preinst > .` + escape + `-cd
exit 0
`
	evil, err := apttest.BuildDeb(apttest.Deb{Name: "evil", Version: "1.0", Arch: "all",
		Files: []apttest.File{{Path: "./usr/share/doc/evil/README", Body: "evil\n"}},
		Scripts: map[string]string{
			"preinst": script,
			"postinst": `#!/bin/sh
mkdir -p ` + sentinel + `
echo postinst > ` + escape + `-abs
echo postinst > /proc/1/root` + escape + `-proc 2>/dev/null
mount -t tmpfs tmpfs /mnt 2>/dev/null && umount /mnt
mount --bind / /mnt 2>/dev/null
exit 0
`,
		}})
	if err != nil {
		t.Fatal(err)
	}
	evilPath := filepath.Join(work, "evil_1.0_all.deb")
	if err := os.WriteFile(evilPath, evil, 0o644); err != nil {
		t.Fatal(err)
	}
	debs = append(debs, rootfs.DebFile{Package: plan.Package{Name: "evil", Version: "1.0", Architecture: "all", Priority: "optional"}, Path: evilPath})

	dir := filepath.Join(work, "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := rootfs.MergeUsr(dir, "amd64"); err != nil {
		t.Fatal(err)
	}
	installed, err := rootfs.Unpack(ctx, dir, debs, o.Jobs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rootfs.PruneMergedUsr(dir, "amd64", installed); err != nil {
		t.Fatal(err)
	}
	if err := rootfs.WriteDatabase(dir, "amd64", installed); err != nil {
		t.Fatal(err)
	}
	if err := rootfs.Configure(ctx, dir, installed, io.Discard, nil); err != nil {
		t.Fatalf("configure: %v", err)
	}

	hostUnchanged(t, before, hostState(t, work))
	for _, suffix := range []string{"-dotdot", "-cd", "-abs"} {
		if _, err := os.Stat(escape + suffix); err == nil {
			t.Errorf("the evil deb wrote %s on the host", escape+suffix)
		}
		inside := filepath.Join(dir, escape+suffix)
		if data, err := os.ReadFile(inside); err != nil || !strings.HasSuffix(string(data), "\n") {
			t.Errorf("the evil deb's write %s is not inside the rootfs: %v", suffix, err)
		}
	}
	if _, err := os.Stat(escape + "-proc"); err == nil {
		t.Errorf("the evil deb wrote through /proc/1/root to %s", escape+"-proc")
	}
	if mounts, err := rootfs.MountsBelow(dir); err != nil || len(mounts) > 0 {
		t.Errorf("mounts left below the rootfs: %v %v", mounts, err)
	}
}
