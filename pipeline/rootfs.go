package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/rootfs"
)

// Rootfs fetches set's debs and builds the configured rootfs into dir,
// which must not exist or be empty. The tree is built beside dir (see
// stageTree) and renamed into place only when complete, so a failed
// build leaves dir as it was.
func Rootfs(ctx context.Context, o *Options, c *apt.Client, set *apt.Set, dir string) (err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := CheckDestination(dir); err != nil {
		return err
	}
	// A foreign --arch needs qemu-user-static's binfmt_misc entry for
	// the maintainer scripts: say so before downloading anything.
	if err := rootfs.CheckArch(set.Arch); err != nil {
		return err
	}
	paths, err := fetch(ctx, o, c, set)
	if err != nil {
		return err
	}
	return stageTree(dir, func(tree string) error {
		return buildTree(ctx, o, set, paths, c.Cache, tree)
	})
}

// stageTree has build make a tree, then renames it to dir. The tree is
// built in a private (0700) directory beside dir, so that no other user
// of the host reaches its setuid programs or half-written files before
// it is complete; the tree itself is 0755, as the maintainer scripts
// and hooks that run in it as other users need. A failed build leaves
// dir as it was and nothing beside it.
func stageTree(dir string, build func(tree string) error) (err error) {
	stage, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".basebuild-")
	if err != nil {
		return fmt.Errorf("rootfs %s: %w", dir, err)
	}
	defer func() {
		switch rerr := removeTree(stage); {
		case rerr == nil:
		case err != nil:
			err = fmt.Errorf("%w (and %v)", err, rerr)
		default:
			err = fmt.Errorf("rootfs %s: %w", dir, rerr)
		}
	}()
	tree := filepath.Join(stage, "rootfs")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tree, 0o755); err != nil { // whatever the umask
		return err
	}
	if err := build(tree); err != nil {
		return err
	}
	// An empty dir was accepted above; it is replaced.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rootfs %s: %w", dir, err)
	}
	if err := os.Rename(tree, dir); err != nil {
		return fmt.Errorf("rootfs %s: %w", dir, err)
	}
	return nil
}

// buildTree runs the rootfs stages in dir; cache keeps the debs'
// decompressed data for the next build.
func buildTree(ctx context.Context, o *Options, set *apt.Set, paths map[string]string, cache *apt.Cache, dir string) error {
	debs := make([]rootfs.DebFile, len(set.Packages))
	for i, p := range set.Packages {
		debs[i] = rootfs.DebFile{Deb: p, Path: paths[p.SHA256], Cache: cache}
	}
	step := func(name string, f func() error) error {
		start := time.Now()
		if err := f(); err != nil {
			return err
		}
		o.phase(name, start)
		return nil
	}
	if o.mergedUsr() {
		if err := step("merged-usr", func() error { return rootfs.MergeUsr(dir, set.Arch) }); err != nil {
			return err
		}
	}
	var installed []*rootfs.Installed
	err := step("unpack", func() (err error) {
		installed, err = rootfs.Unpack(ctx, dir, debs, o.Jobs)
		if err != nil {
			return err
		}
		if o.mergedUsr() {
			if err := rootfs.PruneMergedUsr(dir, set.Arch, installed); err != nil {
				return err
			}
		}
		return rootfs.WriteDatabase(dir, set.Arch, installed)
	})
	if err != nil {
		return err
	}
	// Maintainer scripts see SOURCE_DATE_EPOCH through this file, as under
	// debuerreotype (/etc/shadow's dates come from it); Finish removes it.
	// Through the tree's root: a package may ship debuerreotype-epoch as
	// a symlink to a host path.
	epoch := fmt.Sprintf("%d\n", set.Epoch.Unix())
	if err := writeInTree(dir, "debuerreotype-epoch", []byte(epoch)); err != nil {
		return err
	}
	if err := step("configure", func() error {
		log := o.scripts()
		return log.replay(rootfs.Configure(ctx, dir, installed, log.writer()))
	}); err != nil {
		return err
	}
	if err := step("minimizing-config", func() error { return rootfs.MinimizingConfig(dir) }); err != nil {
		return err
	}
	// As examples/debian.sh: slimify the upgraded tree, before the fixups.
	if o.Variant == VariantSlim {
		if err := step("slimify", func() error { return rootfs.Slimify(dir) }); err != nil {
			return err
		}
	}
	// The extra repositories' sources and keys and the preferences, as
	// the site script copies them in; then --apt-conf.
	var config []configFile
	if len(o.Repos) > 0 {
		config = append(config, repoFiles(o.Repos)...)
	}
	if o.Preferences != nil {
		config = append(config, configFile{o.Preferences.path(), o.Preferences.Data})
	}
	if len(o.AptConf) > 0 {
		config = append(config, aptConfFile(o.AptConf))
	}
	if len(config) > 0 {
		if err := step("apt config", func() error { return writeConfig(dir, config) }); err != nil {
			return err
		}
	}
	for _, c := range o.Copies {
		if err := step("copy "+c.Dst, func() error { return copyInto(dir, c) }); err != nil {
			return err
		}
	}
	if len(o.Customize) > 0 {
		if err := step("customize", func() error {
			log := o.scripts()
			return log.replay(runHooks(ctx, dir, o.Customize, o.CustomizeNetwork, log.writer()))
		}); err != nil {
			return err
		}
	}
	return step("finish", func() error {
		return rootfs.Finish(dir, rootfs.FinishOptions{Epoch: set.Epoch, Suite: o.Suite, Snapshot: o.Snapshot,
			// As debuerreotype-init: everything is marked automatically
			// installed but what the user asked to include.
			Manual: o.Include})
	})
}

// mergedUsr says whether to merge /usr: as debuerreotype's official
// builds do, from bookworm on, unless the user said otherwise.
func (s *Spec) mergedUsr() bool {
	if s.MergedUsr != nil {
		return *s.MergedUsr
	}
	switch s.Suite {
	case "etch", "lenny", "squeeze", "wheezy", "jessie", "stretch", "buster", "bullseye":
		return false
	}
	return true
}

// CheckDestination refuses a rootfs dir that exists and is not an empty directory.
func CheckDestination(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("rootfs %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("rootfs %s: exists and is not empty", dir)
	}
	return nil
}

// removeTree deletes a failed build, but never while anything is mounted
// inside it: RemoveAll would descend into the host's /proc, /sys or /dev.
func removeTree(dir string) error {
	if err := notMountedBelow(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// notMountedBelow is an error naming the mounts below dir, if any.
func notMountedBelow(dir string) error {
	mounts, err := rootfs.MountsBelow(dir)
	if err != nil {
		return err
	}
	if len(mounts) > 0 {
		return fmt.Errorf("%s left in place: still mounted: %s", dir, strings.Join(mounts, ", "))
	}
	return nil
}

// writeInTree creates name in the tree dir. It must not exist: a
// package's file or symlink in its place (one to a host path, say) is an
// error, never followed.
func writeInTree(dir, name string, data []byte) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("write /%s in the tree: %w", name, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write /%s in the tree: %w", name, err)
	}
	return nil
}
