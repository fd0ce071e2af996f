package pipeline

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// workDir makes the temporary directory a build works in, under
// o.TempDir, and returns it with the function that removes it. With
// o.Tmpfs it is a tmpfs of its own: the tree and the layer never touch
// the disk, and removing them is an unmount. Only a process in a mount
// namespace of its own may set Tmpfs (cmd/basebuild runs builds so), so
// that the host never sees the mount and it vanishes with the process,
// however that ends.
func workDir(o *Options, prefix string) (string, func() error, error) {
	dir, err := os.MkdirTemp(o.TempDir, prefix)
	if err != nil {
		return "", nil, err
	}
	if !o.Tmpfs {
		return dir, func() error { return removeTree(dir) }, nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("tmpfs on %s: %w (--tmpfs=false builds in TMPDIR)", dir, err)
	}
	return dir, func() error {
		if err := notMountedBelow(dir); err != nil {
			return err
		}
		if err := unix.Unmount(dir, 0); err != nil {
			return fmt.Errorf("unmounting %s: %w", dir, err)
		}
		return os.Remove(dir)
	}, nil
}
