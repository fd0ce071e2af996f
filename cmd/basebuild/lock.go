package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/internal/atomicfile"
	"github.com/basebuild/basebuild/pipeline"
	"github.com/basebuild/basebuild/plan"
)

const lockUsage = `Usage: basebuild lock --suite SUITE [--snapshot TS] [flags] [-o FILE]
       basebuild lock --suite SUITE [--snapshot TS] [flags] --check FILE

Resolves the packages exactly as a build with the same flags would, from
the archive's signed indexes, and writes a lockfile (to stdout, or FILE):
the inputs that decide the image, the epoch, the SHA-256 of each
InRelease the packages were verified from, of its keyring and of each
Packages index read, and one line per package (name, version,
architecture, source, URL, size, SHA-256, whether debootstrap requires
it, and why it is there). basebuild --lock FILE builds exactly that set:
the same image as the build the lock was taken from. Exit status: 0
written, 1 failed, 2 bad command line.

--check FILE resolves again and compares with the lock, for CI: exit 0
when the archive still resolves to the locked set, 1 when it moved, with
the packages added (+), removed (-) and changed (~ NAME OLD -> NEW) on
stdout; 2 when it cannot tell (a bad lock or command line, a failed
resolution).

Flags:
`

func runLock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("basebuild lock", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var bf buildFlags
	bf.register(fs)
	// A site's config file also says where images go.
	bf.configIgnores = imageFlagNames()
	out := fs.StringP("out", "o", "", "write the lockfile to FILE (atomically) instead of stdout")
	check := fs.String("check", "", "compare the lockfile FILE with what the archive resolves to now: exit 0 same, 1 moved (with the changes), 2 cannot tell")
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: lock: %v (see basebuild lock --help)", errUsage, err)
	}
	if *help {
		fmt.Fprint(stdout, lockUsage+fs.FlagUsages())
		return pflag.ErrHelp
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: lock: unexpected argument %q (see basebuild lock --help)", errUsage, fs.Arg(0))
	}
	o, err := bf.options(fs, stderr)
	if err != nil {
		return err
	}
	if *check != "" {
		if *out != "" {
			return fmt.Errorf("%w: lock: -o and --check contradict each other", errUsage)
		}
		return checkLock(ctx, o, *check, stdout)
	}
	if *out != "" {
		if fi, err := os.Stat(filepath.Dir(*out)); err != nil || !fi.IsDir() {
			return fmt.Errorf("%w: -o %s: no directory %s", errUsage, *out, filepath.Dir(*out))
		}
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	p, err := pipeline.Resolve(ctx, o, c)
	if err != nil {
		return err
	}
	write := func(w io.Writer) error { return o.WriteLock(w, p) }
	if *out == "" {
		return write(stdout)
	}
	if err := atomicfile.Write(*out, atomicfile.Options{Sync: true}, write); err != nil {
		return fmt.Errorf("-o %s: %w", *out, err)
	}
	fmt.Fprintf(stderr, "locked %d packages in %s\n", len(p.Packages), *out)
	return nil
}

// readLock reads --lock FILE and checks it against the command line's
// image flags: any that disagrees is a usage error naming it.
func readLock(file string, o *pipeline.Options) (*pipeline.Lock, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: --lock: %v", errUsage, err)
	}
	defer f.Close()
	l, err := pipeline.ReadLock(f)
	if err != nil {
		return nil, fmt.Errorf("%w: --lock %s: %v", errUsage, file, err)
	}
	if key, locked, given := l.Mismatch(&o.Spec); key != "" {
		flag, _, _ := strings.Cut(key, ".")
		return nil, fmt.Errorf("%w: --lock %s: --%s: the lock has %q, the command line %q", errUsage, file, flag, locked, given)
	}
	return l, nil
}

// checkLock resolves as o says and compares the plan with the lock at
// file: nil when they are the same, an exitError 1 when the archive
// moved (the changes on stdout), 2 when it cannot tell.
func checkLock(ctx context.Context, o *pipeline.Options, file string, stdout io.Writer) error {
	l, err := readLock(file, o)
	if err != nil {
		return err
	}
	c, err := o.Client()
	if err != nil {
		return &exitError{2, err}
	}
	p, err := pipeline.Resolve(ctx, o, c)
	if err != nil {
		return &exitError{2, err}
	}
	epochMoved := !p.Epoch.Equal(l.Plan.Epoch)
	if epochMoved {
		fmt.Fprintf(stdout, "epoch %s -> %s\n", l.Plan.Epoch.UTC().Format(time.RFC3339), p.Epoch.UTC().Format(time.RFC3339))
	}
	changes := plan.Diff(l.Plan, p)
	for _, c := range changes.Removed {
		fmt.Fprintf(stdout, "- %s %s %s\n", c.Name, c.Version, c.Architecture)
	}
	for _, c := range changes.Added {
		fmt.Fprintf(stdout, "+ %s %s %s\n", c.Name, c.Version, c.Architecture)
	}
	for _, c := range changes.Changed {
		fmt.Fprintf(stdout, "~ %s %s -> %s\n", c.To.Name, c.From.Version, c.To.Version)
	}
	if epochMoved || len(changes.Removed)+len(changes.Added)+len(changes.Changed) > 0 {
		return &exitError{1, fmt.Errorf("lock %s: the archive has moved", file)}
	}
	fmt.Fprintf(stdout, "%s: up to date (%d packages)\n", file, len(p.Packages))
	return nil
}
