package rootfs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestChrootContainment runs, in a chroot, a script that tries to write
// outside it: through "..", an absolute host path, /proc/1/root, and
// mounts. Nothing may appear on the host.
func TestChrootContainment(t *testing.T) {
	dir := busyboxRoot(t)
	for _, applet := range []string{"mkdir", "ln"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	sentinel := t.TempDir()
	parent := filepath.Dir(dir)
	before, _ := os.ReadDir(parent)
	c := enterChroot(t, dir)
	script := `
echo escaped > /../../escape-dotdot 2>/dev/null
cd / && cd .. && cd .. && echo escaped > escape-cd 2>/dev/null
echo escaped > ` + sentinel + `/escape-abs 2>/dev/null
echo escaped > /proc/1/root` + sentinel + `/escape-proc 2>/dev/null
mkdir -p /mnt && mount -t tmpfs none /mnt 2>/dev/null
mkdir -p /mnt/host && mount --bind / /mnt/host 2>/dev/null
true`
	chrootOutput(t, c, script)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(sentinel); len(entries) > 0 {
		t.Errorf("the chroot wrote into the host's %s: %v", sentinel, entries)
	}
	if after, _ := os.ReadDir(parent); len(after) != len(before) {
		t.Errorf("the chroot changed %s: %v, was %v", parent, after, before)
	}
	for _, name := range []string{"escape-dotdot", "escape-cd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v; want it inside the chroot", name, err)
		}
	}
	hostMountsUnder(t, dir)
}
