package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/plan"
	"github.com/basebuild/basebuild/rootfs"
)

// Rootfs fetches set's debs and builds the configured rootfs into dir,
// which must not exist or be empty. The tree is built beside dir (see
// stageTree) and renamed into place only when complete, so a failed
// build leaves dir as it was.
func Rootfs(ctx context.Context, o *Options, c *apt.Client, set *plan.Plan, dir string) (err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := CheckDestination(dir); err != nil {
		return err
	}
	// A foreign --arch needs qemu-user-static's binfmt_misc entry for
	// the maintainer scripts: say so before downloading anything.
	if err := o.checkArch(set.Arch); err != nil {
		return err
	}
	debs, stop := fetching(ctx, o, c, set)
	err = stageTree(dir, func(tree string) error {
		return rootfs.Build(ctx, tree, debs, o.buildOptions(set))
	})
	return errors.Join(err, stop(err))
}

// fetching starts downloading set's debs into the cache and returns them
// for rootfs to unpack as each arrives (see rootfs.DebFile.Fetched), so
// that unpacking starts with the first deb, not after the last. stop ends
// the download, given the error the build ended with: if the build
// failed the download is cancelled and stop returns nil, else it waits
// for the download (done: the tree has every deb) and returns its error.
func fetching(ctx context.Context, o *Options, c *apt.Client, set *plan.Plan) (debs []rootfs.DebFile, stop func(buildErr error) error) {
	type arrival struct {
		ready chan struct{} // closed once path or err is set
		path  string
		err   error
	}
	arrivals := map[string]*arrival{}
	for _, p := range set.Packages {
		if arrivals[p.SHA256] == nil {
			arrivals[p.SHA256] = &arrival{ready: make(chan struct{})}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		start := time.Now()
		err = c.DownloadEach(ctx, set.Packages, o.Jobs, o.downloadProgress(), func(sum, path string) {
			a := arrivals[sum]
			a.path = path
			close(a.ready)
		})
		if err == nil {
			o.logf("fetched %d packages", len(set.Packages))
			o.phase("fetch", start)
		}
		for _, a := range arrivals {
			select {
			case <-a.ready:
			default:
				a.err = cmp.Or(err, errors.New("download stopped"))
				close(a.ready)
			}
		}
	}()
	debs = make([]rootfs.DebFile, len(set.Packages))
	for i, p := range set.Packages {
		a := arrivals[p.SHA256]
		debs[i] = rootfs.DebFile{Package: p, Cache: c.Cache, Fetched: func(ctx context.Context) (string, error) {
			select {
			case <-a.ready:
				return a.path, a.err
			case <-ctx.Done():
				return "", context.Cause(ctx)
			}
		}}
	}
	return debs, func(buildErr error) error {
		if buildErr != nil {
			cancel()
			<-done
			return nil
		}
		<-done
		cancel()
		return err
	}
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
	if err := makeTree(tree); err != nil {
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

// makeTree makes the root directory of a tree, 0755 whatever the umask:
// the maintainer scripts and hooks that run in it as other users need it.
func makeTree(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// buildOptions say how rootfs builds the tree of set as o says.
func (o *Options) buildOptions(set *plan.Plan) rootfs.BuildOptions {
	// The extra repositories' sources and keys and the preferences, as
	// the site script copies them in; then --apt-conf.
	files := apt.ImageFiles(o.Repos)
	if o.Preferences != nil {
		files = append(files, o.Preferences.File())
	}
	var config []rootfs.ConfigFile
	if o.Distroless() {
		files = nil // no apt in the image to read them
	}
	for _, f := range files {
		config = append(config, rootfs.ConfigFile{Path: f.Path, Data: f.Data})
	}
	if len(o.AptConf) > 0 {
		config = append(config, rootfs.AptConf(o.AptConf))
	}
	return rootfs.BuildOptions{
		Arch: set.Arch, Epoch: set.Epoch, Suite: o.Suite, Snapshot: o.Snapshot,
		MergedUsr: o.mergedUsr(), Slim: o.Variant == VariantSlim, Distroless: o.Distroless(), Jobs: o.Jobs,
		Config: config, Copies: o.Copies, Hooks: o.Customize, HookNetwork: o.CustomizeNetwork,
		// As debuerreotype-init: everything is marked automatically
		// installed but what the user asked to include.
		Manual: o.Include,
		Phase:  o.phase,
		Note:   func(s string) { o.logf("%s", s) },
		Unpacked: func(done, total int) {
			o.progress(Event{Phase: PhaseUnpack, Done: done, Total: total})
		},
		SettingUp: func(pkg string, done, total int) {
			o.progress(Event{Phase: PhaseConfigure, Package: pkg, Done: done, Total: total})
		},
		Scripts: func() (io.Writer, func(error) error) {
			log := o.scripts()
			return log.writer(), log.replay
		},
	}
}

// checkArch says what the host lacks to build arch: qemu-user-static's
// binfmt_misc entry for a foreign one, where maintainer scripts run (a
// distroless build runs none).
func (s *Spec) checkArch(arch string) error {
	if s.Distroless() {
		return nil
	}
	return rootfs.CheckArch(arch)
}

// mergedUsr says whether to merge /usr: as debuerreotype's official
// builds do, from bookworm on, unless the user said otherwise.
func (s *Spec) mergedUsr() bool {
	if s.MergedUsr != nil {
		return *s.MergedUsr
	}
	return debian.MergedUsr(s.Suite)
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
