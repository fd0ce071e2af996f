package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/internal/atomicfile"
	"github.com/basebuild/basebuild/pipeline"
	"github.com/basebuild/basebuild/plan"
)

const lockUsage = `Usage: basebuild lock --suite SUITE [--snapshot TS] [flags] [-o FILE]
       basebuild lock --suite SUITE [--snapshot TS] [flags] --check FILE
       basebuild lock --suite SUITE [--snapshot TS] [flags] --update FILE [--json]

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

--update FILE resolves again and, when the archive moved, downloads the
new debs (verified, through the cache), rewrites FILE (atomically) and
prints a review in markdown, the body of a pull request: for each source
package whose binary packages changed, by name, "SOURCE OLD -> NEW", those
packages with their versions, the Debian changelog entries between the
versions (from the new debs' usr/share/doc/*/changelog.Debian.gz) and the
CVEs they name; a summary line last. When it did not move, FILE is left as
it is and "FILE: up to date (N packages)" printed. --json prints the review
as one JSON document instead. Exit status: 0 rewritten or up to date, 1
failed (FILE untouched), 2 bad command line or lock.

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
	update := fs.String("update", "", "resolve again and, when the archive moved, rewrite the lockfile FILE and print a review by source package, with changelogs and CVEs")
	asJSON := fs.Bool("json", false, "with --update: print the review as JSON")
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
	switch {
	case *check != "" && *out != "":
		return fmt.Errorf("%w: lock: -o and --check contradict each other", errUsage)
	case *update != "" && *out != "":
		return fmt.Errorf("%w: lock: -o and --update contradict each other (--update rewrites its FILE)", errUsage)
	case *update != "" && *check != "":
		return fmt.Errorf("%w: lock: --check and --update contradict each other", errUsage)
	case *asJSON && *update == "":
		return fmt.Errorf("%w: lock: --json goes with --update", errUsage)
	}
	o, err := bf.options(fs, stderr)
	if err != nil {
		return err
	}
	if *check != "" {
		return checkLock(ctx, o, *check, stdout)
	}
	if *update != "" {
		return updateLock(ctx, o, *update, *asJSON, stdout)
	}
	if *out != "" {
		if fi, err := os.Stat(filepath.Dir(*out)); err != nil || !fi.IsDir() {
			return fmt.Errorf("%w: -o %s: no directory %s", errUsage, *out, filepath.Dir(*out))
		}
	}
	_, p, err := resolveLock(ctx, o)
	if err != nil {
		return err
	}
	if *out == "" {
		return o.WriteLock(stdout, p)
	}
	if err := writeLock(o, p, "-o", *out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "locked %d packages in %s\n", len(p.Packages), *out)
	return nil
}

// resolveLock resolves as o says, as a build would: the plan a lock
// holds, and the client that fetched it.
func resolveLock(ctx context.Context, o *pipeline.Options) (*apt.Client, *plan.Plan, error) {
	c, err := o.Client()
	if err != nil {
		return nil, nil, err
	}
	p, err := pipeline.Resolve(ctx, o, c)
	return c, p, err
}

// writeLock writes the lockfile of p to file, which flag named,
// atomically.
func writeLock(o *pipeline.Options, p *plan.Plan, flag, file string) error {
	err := atomicfile.Write(file, atomicfile.Options{Sync: true}, func(w io.Writer) error { return o.WriteLock(w, p) })
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, file, err)
	}
	return nil
}

// readLock reads the lockfile that the flag (--lock, --check, --update)
// names and checks it against the command line's image flags: any that
// disagrees is a usage error naming it. --check and --update may be given
// another --snapshot: a nightly job moves it forward.
func readLock(flag, file string, o *pipeline.Options) (*pipeline.Lock, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUsage, flag, err)
	}
	defer f.Close()
	l, err := pipeline.ReadLock(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", errUsage, flag, file, err)
	}
	var moving []string
	if flag != "--lock" {
		moving = append(moving, "snapshot")
	}
	if err := lockAgrees(l, o, flag+" "+file, moving...); err != nil {
		return nil, err
	}
	return l, nil
}

// lockAgrees refuses, as a usage error naming the flag, a command line
// whose image flags disagree with the lock l, which what names; the
// inputs moving (see Lock.Mismatch) may differ.
func lockAgrees(l *pipeline.Lock, o *pipeline.Options, what string, moving ...string) error {
	if key, locked, given := l.Mismatch(&o.Spec, moving...); key != "" {
		flag, _, _ := strings.Cut(key, ".")
		return fmt.Errorf("%w: %s: --%s: the lock has %q, the command line %q", errUsage, what, flag, locked, given)
	}
	return nil
}

// checkLock resolves as o says and compares the plan with the lock at
// file: nil when they are the same, an exitError 1 when the archive
// moved (the changes on stdout), 2 when it cannot tell.
func checkLock(ctx context.Context, o *pipeline.Options, file string, stdout io.Writer) error {
	l, err := readLock("--check", file, o)
	if err != nil {
		return err
	}
	_, p, err := resolveLock(ctx, o)
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

// updateLock resolves as o says and, when the archive moved from the lock
// at file, reviews the move (see pipeline.Review), rewrites file and
// prints the review, in markdown or JSON; when it did not, it leaves file
// as it is. Nothing is written when the review fails.
func updateLock(ctx context.Context, o *pipeline.Options, file string, asJSON bool, stdout io.Writer) error {
	l, err := readLock("--update", file, o)
	if err != nil {
		return err
	}
	c, p, err := resolveLock(ctx, o)
	if err != nil {
		return err
	}
	r, err := pipeline.Review(ctx, o, c, l.Plan, p)
	if err != nil {
		return err
	}
	if !r.UpToDate() {
		if err := writeLock(o, p, "--update", file); err != nil {
			return err
		}
	}
	switch {
	case asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	case r.UpToDate():
		_, err = fmt.Fprintf(stdout, "%s: up to date (%d packages)\n", file, len(p.Packages))
		return err
	}
	return r.WriteMarkdown(stdout)
}
