package rootfs

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// BuildOptions say what Build makes of the packages.
type BuildOptions struct {
	Arch      string
	Epoch     time.Time // the image's time: SOURCE_DATE_EPOCH, and the clamp of every mtime
	Suite     string
	Snapshot  time.Time // zero: built from a live mirror
	MergedUsr bool      // bin, sbin and lib* as symlinks into usr/
	Slim      bool      // debuerreotype's slim variant (see Slimify)
	// Distroless makes a distroless tree (see buildDistroless): the
	// packages extracted, not configured; Config and Hooks must be empty.
	Distroless bool
	Jobs       int // parallel unpacking

	Config      []ConfigFile // apt's sources, keys, preferences and settings, written once configured
	Copies      []Copy       // --copy, then
	Hooks       []string     // --customize commands, run in the sandbox, then
	HookNetwork bool         // the hooks get the host's network
	Manual      []string     // packages marked manually installed; the rest are automatic

	// Note, if set, is told what the user should know of the build: the
	// dependencies a distroless tree leaves out.
	Note func(string)
	// Phase, if set, is told each step's name and start once it is done.
	Phase func(name string, start time.Time)
	// Unpacked, if set, is told how many packages are unpacked, of all,
	// as each is (see Unpack); SettingUp the package the maintainer
	// scripts set up, and how many have been (see Configure).
	Unpacked  func(done, total int)
	SettingUp func(pkg string, done, total int)
	// Scripts, if set, says where the maintainer scripts and hooks of a
	// step write, and done is handed the step's error and returns it.
	Scripts func() (w io.Writer, done func(error) error)
}

func (o *BuildOptions) scripts() (io.Writer, func(error) error) {
	if o.Scripts == nil {
		return io.Discard, func(err error) error { return err }
	}
	return o.Scripts()
}

// Build makes the finished tree of debs in dir, in debuerreotype's order:
// Install, then Complete.
func Build(ctx context.Context, dir string, debs []DebFile, o BuildOptions) error {
	if o.Distroless {
		if len(o.Config) > 0 || len(o.Hooks) > 0 {
			return fmt.Errorf("distroless %s: no apt files or hooks in an image without apt or a shell", dir)
		}
		return buildDistroless(ctx, dir, debs, o, o.step)
	}
	if err := Install(ctx, dir, debs, o); err != nil {
		return err
	}
	return Complete(ctx, dir, o)
}

// step runs the step name, f, and tells o.Phase it is done.
func (o *BuildOptions) step(name string, f func() error) error {
	start := time.Now()
	if err := f(); err != nil {
		return err
	}
	if o.Phase != nil {
		o.Phase(name, start)
	}
	return nil
}

// Install makes the configured tree of debs in dir, the part of Build
// that the variants share (so that a copy of it, see CopyTree, can be
// completed as another): merged /usr, unpack and dpkg's database,
// configure (the maintainer scripts, with SOURCE_DATE_EPOCH in
// /debuerreotype-epoch) and the minimizing config. Of o, it reads Arch,
// Epoch, MergedUsr, Jobs, Phase and Scripts.
func Install(ctx context.Context, dir string, debs []DebFile, o BuildOptions) error {
	step := o.step
	if o.MergedUsr {
		if err := step("merged-usr", func() error { return MergeUsr(dir, o.Arch) }); err != nil {
			return err
		}
	}
	var installed []*Installed
	err := step("unpack", func() (err error) {
		installed, err = Unpack(ctx, dir, debs, o.Jobs, o.Unpacked)
		if err != nil {
			return err
		}
		if o.MergedUsr {
			if err := PruneMergedUsr(dir, o.Arch, installed); err != nil {
				return err
			}
		}
		return WriteDatabase(dir, o.Arch, installed)
	})
	if err != nil {
		return err
	}
	// Maintainer scripts see SOURCE_DATE_EPOCH through this file, as under
	// debuerreotype (/etc/shadow's dates come from it); Finish removes it.
	// Through the tree's root: a package may ship debuerreotype-epoch as
	// a symlink to a host path.
	epoch := fmt.Sprintf("%d\n", o.Epoch.Unix())
	if err := writeInTree(dir, "debuerreotype-epoch", []byte(epoch)); err != nil {
		return err
	}
	if err := step("configure", func() error {
		w, done := o.scripts()
		return done(Configure(ctx, dir, installed, w, o.SettingUp))
	}); err != nil {
		return err
	}
	return step("minimizing-config", func() error { return MinimizingConfig(dir) })
}

// Complete finishes the configured tree dir that Install made: slimify,
// then the site's apt files, copies and hooks, and Finish.
func Complete(ctx context.Context, dir string, o BuildOptions) error {
	step := o.step
	// As examples/debian.sh: slimify the upgraded tree, before the fixups.
	if o.Slim {
		if err := step("slimify", func() error { return Slimify(dir) }); err != nil {
			return err
		}
	}
	if len(o.Config) > 0 {
		if err := step("apt config", func() error { return WriteConfig(dir, o.Config) }); err != nil {
			return err
		}
	}
	for _, c := range o.Copies {
		if err := step("copy "+c.Dst, func() error { return CopyInto(dir, c) }); err != nil {
			return err
		}
	}
	if len(o.Hooks) > 0 {
		if err := step("customize", func() error {
			w, done := o.scripts()
			return done(RunHooks(ctx, dir, o.Hooks, o.HookNetwork, w))
		}); err != nil {
			return err
		}
	}
	return step("finish", func() error {
		return Finish(dir, FinishOptions{Epoch: o.Epoch, Suite: o.Suite, Snapshot: o.Snapshot, Manual: o.Manual})
	})
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
