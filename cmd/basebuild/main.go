// Command basebuild builds Debian base images from a snapshot of the
// archive, reproducibly, without a container runtime.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/pipeline"
	"github.com/basebuild/basebuild/rootfs"
	"github.com/basebuild/basebuild/snapshots"
)

const usage = `Usage: basebuild --suite SUITE [flags]
       basebuild verify --suite SUITE [--inputs-from REF] [flags] REF
       basebuild packages [--source NAME]… [--json] IMAGE…
       basebuild diff [--json] A B
       basebuild lock --suite SUITE [flags] [-o FILE]

Builds a Debian base image of SUITE from the Debian archive, or from
snapshot.debian.org as it was at --snapshot: verified packages, unpacked
and configured as debuerreotype does, with fixed timestamps, written as an
OCI image (./out/SUITE by default) or pushed straight to a registry. The
image digest is the last line on stdout. --rootfs keeps the configured
tree (alone, it builds no image and prints the packages); --dry-run only
prints the packages. Needs root, except with --dry-run.

On a terminal, stderr shows one progress line, redrawn in place
(resolving; packages downloaded, unpacked, the one being configured,
the layer's size; of each image being built, where there are several),
with the notes above it; at the end it gives way to a summary.
Without a terminal (cron, CI) stderr has the plain notes only; --quiet
leaves out both.

--if-changed builds only when the inputs differ from those the --push and
oci: destinations' images record. Exit status: 0 built, or up to date; 1
failed; 2 bad command line. basebuild verify rebuilds and compares with an
image; basebuild packages lists an image's packages and basebuild diff
compares two images' (each has its own --help). basebuild lock writes
the exact package set a build would resolve to a lockfile; --lock FILE
builds exactly that set, checked against the archive's signed indexes,
the same image as the build the lock was taken from. basebuild
inventory lists the packages of every tag of registry repositories, and
finds the images with a package older than a version; basebuild outdated
lists the updates (security ones marked, with changelogs and CVEs) that
apt in an image would install. basebuild index assembles the image index
of images built natively, one architecture each. --attach-inputs attaches
to each image its lock, InRelease files, Packages indexes and debs, from
which basebuild verify --inputs-from rebuilds it offline.

--repo and --sources add signed apt repositories (an organisation's own,
verified with their own keys) whose packages join the resolution and
whose sources and keys go into the image; --apt-preferences pins them as
apt would. --config FILE reads any of the flags from YAML (the command
line wins); --push and --output expand {suite}, {variant}, {tag}, {arch},
{date} and {snapshot}.
http_proxy, https_proxy and no_proxy are honoured and not written into
the image.

--suite bookworm,trixie and --variant default,slim build an image of
each combination in one run, each as a build of it alone would (same
digest), with its own destinations ({variant}, {tag} and {arch} are also
replaced) and a line "DESTINATION DIGEST" on stdout; what they share is
fetched, verified, unpacked and configured once (a slim image is made
from a copy of its default sibling's configured tree).

--arch amd64,arm64 builds each architecture's image exactly as a build
with that --arch alone would (same digest), and writes their OCI image
index instead, tagged SUITE in oci:DIR outputs and pushed with --push;
the index digest is the last line on stdout, and each image keeps its
own audit artifacts; --dry-run prints each image's packages, and
--if-changed compares each image of the destinations' indexes. basebuild
verify of an index rebuilds each of its architectures and compares each
image and the index. docker-archive and rootfs-tar hold one image, so
they are refused, as are --rootfs, --sbom and --lock with several
architectures, for now.

Flags:
`

// errUsage marks errors in the command line itself (exit status 2).
var errUsage = errors.New("usage")

func main() {
	// A copy of basebuild started as a maintainer-script sandbox's init
	// is that init and nothing else.
	rootfs.RunSandboxInit()
	// The image must not depend on the caller's umask: directories made
	// along the way and files the maintainer scripts create get the modes
	// of the usual umask, as in debuerreotype's container.
	syscall.Umask(0o022)
	if status, ok := reexecInNamespace(os.Args[1:]); ok {
		os.Exit(status)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var exit *exitError
	switch {
	case err == nil:
	case errors.Is(err, pflag.ErrHelp):
	case errors.As(err, &exit):
		fmt.Fprintf(os.Stderr, "basebuild: %v\n", err)
		os.Exit(exit.code)
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "basebuild: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "basebuild: %v\n", err)
		os.Exit(1)
	}
}

// A command runs one of basebuild's subcommands with its arguments.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// commands are basebuild's subcommands; without one, basebuild builds.
var commands = map[string]command{
	"verify":    runVerify,
	"packages":  runPackages,
	"diff":      runDiff,
	"lock":      runLock,
	"inventory": runInventory,
	"outdated":  runOutdated,
	"index":     runIndex,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "version") {
		_, err := fmt.Fprintf(stdout, "basebuild %s\n", pipeline.Version)
		return err
	}
	if len(args) > 0 {
		if cmd, ok := commands[args[0]]; ok {
			return cmd(ctx, args[1:], stdout, stderr)
		}
	}
	return runBuild(ctx, args, stdout, stderr)
}

// buildFlags are the flags that say which image to build; basebuild and
// its verify command share them.
type buildFlags struct {
	o        pipeline.Options
	quiet    bool
	snapshot string
	merged   bool
	unmerged bool
	compress string
	variant  string
	copies   []string
	repos    []string
	sources  []string
	prefs    string
	config   string
	tmpfs    bool
	// configIgnores are config keys this command has no flag for but
	// takes without complaint (verify: the build's image flags).
	configIgnores []string

	// multiArch allows a comma-separated --arch list (basebuild's build
	// and verify do; lock and outdated do not); archs is the list.
	multiArch bool
	archs     []string
	// multiImage allows comma-separated --suite and --variant lists
	// (basebuild's build does); images are their combinations.
	multiImage bool
	images     []*pipeline.Options
}

func (f *buildFlags) register(fs *pflag.FlagSet) {
	o := &f.o
	fs.StringVar(&o.Suite, "suite", "", "Debian suite to build: bookworm, trixie, bullseye, sid, … (required); a comma-separated list builds an image of each")
	fs.StringVar(&f.snapshot, "snapshot", "", "build from snapshot.debian.org as of this time: 20240101, 20240101T000000Z or 2024-01-01T00:00:00Z; the image epoch is this time")
	fs.StringVar(&o.SnapshotServer, "snapshot-server", snapshots.DefaultServer, "snapshot server serving /archive/debian/<ts>/ and /archive/debian-security/<ts>/ (http or https; no credentials in any archive URL)")
	fs.StringVar(&o.Mirror, "mirror", "", "Debian archive root without --snapshot (default: the host's apt sources, else "+snapshots.DefaultMirror+")")
	fs.StringVar(&o.SecurityMirror, "security-mirror", "", "Debian security archive root without --snapshot (default: the host's, else MIRROR-security)")
	fs.StringVar(&o.Arch, "arch", debian.ArchOf(runtime.GOARCH), "Debian architecture, or a comma-separated list of them (amd64,arm64) for a multi-architecture OCI image index; a foreign one (arm64, armhf, ppc64el, s390x, …) runs its maintainer scripts through qemu-user-static, whose binfmt_misc entry must be registered with the F flag")
	fs.StringVar(&o.Keyring, "keyring", pipeline.DefaultKeyring, "OpenPGP keyring (public keys only) that must have signed each suite's InRelease")
	fs.StringArrayVar(&o.AllowMissing, "allow-missing-suite", nil, "build without the update suite SUITE (--suite's -updates or security suite, e.g. bookworm-updates, bookworm-security) if the archive lacks it, with a note on stderr; recorded in the image's inputs; without it a missing update suite is an error; repeatable")
	fs.StringSliceVar(&o.Include, "include", nil, "extra packages to install, comma-separated")
	fs.StringSliceVar(&o.Exclude, "exclude", nil, "packages to leave out of the required set, comma-separated")
	fs.StringVar(&o.CacheDir, "cache-dir", cache.DefaultDir(), "cache of verified packages and snapshot indexes; must be owned by this user and writable by no one else")
	fs.IntVar(&o.Jobs, "jobs", 2*runtime.NumCPU(), "parallel downloads and unpacking")
	fs.BoolVar(&f.merged, "merged-usr", false, "make bin, sbin and lib* symlinks into usr/ (default from bookworm on, as debuerreotype does)")
	fs.BoolVar(&f.unmerged, "no-merged-usr", false, "keep bin, sbin and lib* real directories (default for bullseye and older)")
	fs.StringVar(&f.compress, "compression", "gzip", "layer compression: gzip or zstd")
	fs.StringVar(&f.variant, "variant", "default", "default; slim: as debuerreotype-slimify, no docs, man pages, info or translations, and dpkg told to keep them out (image tag SUITE-slim); or distroless-static, distroless-base-nossl, distroless-base, distroless-cc: GoogleContainerTools/distroless's packages (bookworm, trixie) and what they depend on, extracted, not configured, with no shell or package manager; a package that needs what its maintainer scripts make is refused, by name (image tag static-debian12, …); a comma-separated list builds an image of each")
	fs.BoolVar(&o.Nonroot, "nonroot", false, "with a distroless --variant: run as nonroot (65532) in /home/nonroot (image tag …-nonroot)")
	fs.StringArrayVar(&o.AptConf, "apt-conf", nil, "write this APT setting, such as 'APT::Install-Recommends \"false\";', to /etc/apt/apt.conf.d/99basebuild; repeatable, one line each, in order")
	fs.StringArrayVar(&f.copies, "copy", nil, "copy the host file or directory tree SRC to the absolute path DST in the image after configuration (SRC:DST; root-owned, modes kept, mtimes clamped to the epoch, symlinks copied as such); repeatable")
	fs.StringArrayVar(&f.repos, "repo", nil, "an extra signed apt repository, as a one-line source: 'deb [signed-by=FILE arch=ARCH,…] URL SUITE COMPONENT…'; its InRelease must be signed by a key in FILE (public keys only); its packages join the resolution, and the image gets its sources and public keys (/etc/apt/keyrings/NAME.gpg); repeatable")
	fs.StringArrayVar(&f.sources, "sources", nil, "extra signed apt repositories from a deb822 .sources FILE (Types, URIs, Suites, Components, Architectures, Signed-By), as --repo; repeatable")
	fs.StringVar(&f.prefs, "apt-preferences", "", "pin packages with an apt_preferences(5) FILE, as apt-get dist-upgrade would, and install it in the image as /etc/apt/preferences.d/NAME (FILE[:NAME], default name basebuild)")
	fs.StringArrayVar(&o.Customize, "customize", nil, "run this shell command (/bin/sh -c) in the chroot after the packages are configured and the files copied, before finishing, in the sandbox maintainer scripts run in (no network but a loopback of its own unless --customize-network); a failing one fails the build; repeatable, in order")
	fs.BoolVar(&o.CustomizeNetwork, "customize-network", false, "give --customize hooks the host's network (they are otherwise confined as maintainer scripts are, with a loopback of their own only)")
	fs.StringVar(&f.config, "config", "", "read flags from a YAML FILE: each long flag is a key, with a list for a repeatable flag; flags on the command line win over it")
	fs.BoolVar(&f.tmpfs, "tmpfs", true, "build the image's tree and layer in a private tmpfs, which the host never sees and which vanishes with basebuild; --tmpfs=false builds them in TMPDIR (a --rootfs tree is always built beside DIR)")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print only errors and, for a build, the digest: no notes and no progress line on stderr")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "also print each phase's time and the maintainer scripts' output (without it, their last lines are printed only when one fails)")
	fs.BoolVar(&o.Offline, "offline", false, "make any network access an error: read the archive from the cache alone (with --lock and --snapshot, a build of that lock fills it); --push needs the network")
	fs.BoolVar(&o.InsecureRegistry, "insecure-registry", false, "allow plain HTTP to registries not on loopback, without credentials (loopback registries always get it)")
}

// options applies --config to the flags of fs the command line left
// unset, checks the build flags and returns the options they say.
func (f *buildFlags) options(fs *pflag.FlagSet, stderr io.Writer) (*pipeline.Options, error) {
	if f.config != "" {
		if err := applyConfig(fs, f.config, f.configIgnores); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	o := &f.o
	if o.Suite == "" {
		return nil, fmt.Errorf("%w: --suite is required (see basebuild --help)", errUsage)
	}
	suites, err := list("--suite", o.Suite, "a suite", f.multiImage)
	if err != nil {
		return nil, err
	}
	for _, suite := range suites {
		if strings.HasPrefix(suite, ".") {
			return nil, fmt.Errorf("%w: --suite %q: %q is not a suite name", errUsage, o.Suite, suite)
		}
	}
	variants, err := list("--variant", f.variant, "a variant", f.multiImage)
	if err != nil {
		return nil, err
	}
	for _, v := range variants {
		if v != "default" && v != pipeline.VariantSlim && !debian.IsDistroless(v) {
			return nil, fmt.Errorf("%w: --variant %q: want default, slim, %s", errUsage, v, strings.Join(debian.DistrolessVariants, ", "))
		}
	}
	switch {
	case o.Jobs < 1:
		return nil, fmt.Errorf("%w: --jobs %d: want at least 1", errUsage, o.Jobs)
	case f.merged && f.unmerged:
		return nil, fmt.Errorf("%w: --merged-usr and --no-merged-usr contradict each other", errUsage)
	}
	if f.merged || f.unmerged {
		o.MergedUsr = &f.merged
	}
	var updates []string
	for _, suite := range suites {
		updates = append(updates, debian.UpdateSuites(suite)...)
	}
	for _, s := range o.AllowMissing {
		if !slices.Contains(updates, s) {
			return nil, fmt.Errorf("%w: --allow-missing-suite %q: not an update suite of %s (%s)", errUsage, s, o.Suite, cmp.Or(strings.Join(updates, ", "), "none"))
		}
	}
	if f.archs, err = list("--arch", o.Arch, "an architecture", true); err != nil {
		return nil, err
	}
	if len(f.archs) > 1 && !f.multiArch {
		return nil, fmt.Errorf("%w: --arch %q: one architecture only here, for now", errUsage, o.Arch)
	}
	switch c := oci.Compression(f.compress); c {
	case oci.Gzip, oci.Zstd:
		o.Compression = c
	default:
		return nil, fmt.Errorf("%w: --compression %q: want gzip or zstd", errUsage, f.compress)
	}
	for _, l := range o.AptConf {
		if l == "" || strings.Contains(l, "\n") {
			return nil, fmt.Errorf("%w: --apt-conf %q: want one non-empty line", errUsage, l)
		}
	}
	for _, h := range o.Customize {
		if strings.TrimSpace(h) == "" {
			return nil, fmt.Errorf("%w: --customize %q: empty command", errUsage, h)
		}
	}
	// Refuse a bad --copy before any download.
	o.Copies = nil
	for _, arg := range f.copies {
		c, err := rootfs.ParseCopy(arg)
		if err != nil {
			return nil, fmt.Errorf("%w: --copy %v", errUsage, err)
		}
		o.Copies = append(o.Copies, c)
	}
	// Refuse a bad repository, keyring or preferences file before any
	// download.
	o.Repos = nil
	for _, line := range f.repos {
		r, err := apt.ParseRepo(line)
		if err != nil {
			return nil, fmt.Errorf("%w: --repo %v", errUsage, err)
		}
		o.Repos = append(o.Repos, r)
	}
	for _, file := range f.sources {
		repos, err := apt.ReadSourcesFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: --sources %v", errUsage, err)
		}
		o.Repos = append(o.Repos, repos...)
	}
	if err := apt.CheckRepos(o.Repos); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	// And a bad archive URL, credentials in one above all, in the flags or
	// the host's apt sources.
	for _, f := range []struct{ flag, url string }{
		{"--snapshot-server", o.SnapshotServer}, {"--mirror", o.Mirror}, {"--security-mirror", o.SecurityMirror},
	} {
		if err := snapshots.CheckURL(f.url); f.url != "" && err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errUsage, f.flag, err)
		}
	}
	if _, err := o.Archives(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	o.Preferences = nil
	if f.prefs != "" {
		var err error
		if o.Preferences, err = apt.ReadPreferencesFile(f.prefs); err != nil {
			return nil, fmt.Errorf("%w: --apt-preferences %v", errUsage, err)
		}
	}
	if f.snapshot != "" {
		t, err := snapshots.Parse(f.snapshot)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		o.Snapshot = t
	}
	// Only basebuild's own mount namespace takes the tmpfs.
	o.Tmpfs = f.tmpfs && inNamespace()
	switch {
	case f.quiet && o.Verbose:
		return nil, fmt.Errorf("%w: --quiet and --verbose contradict each other", errUsage)
	case !f.quiet:
		o.Log = stderr
	}
	if f.images, err = imagesOf(o, suites, variants); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return f.images[0], nil
}

// list splits the comma-separated value of flag, whose items are what
// ("a suite") names: it refuses an item that is empty or holds a slash or
// white space, one given twice, and several unless many says so.
func list(flag, value, what string, many bool) ([]string, error) {
	items := strings.Split(value, ",")
	for i, item := range items {
		switch {
		case item == "" || strings.ContainsAny(item, "/ \t"):
			return nil, fmt.Errorf("%w: %s %q: %q is not %s name", errUsage, flag, value, item, what)
		case slices.Contains(items[:i], item):
			return nil, fmt.Errorf("%w: %s %q: %s given twice", errUsage, flag, value, item)
		}
	}
	if len(items) > 1 && !many {
		return nil, fmt.Errorf("%w: %s %q: one only here", errUsage, flag, value)
	}
	return items, nil
}

// imagesOf returns the options of each image o's --suite and --variant
// lists make, suites first: each as a build with that --suite and
// --variant alone, with the --allow-missing-suite of its suite and, for a
// distroless variant, --nonroot. The first is o itself.
func imagesOf(o *pipeline.Options, suites, variants []string) ([]*pipeline.Options, error) {
	nonroot, allowMissing := o.Nonroot, o.AllowMissing
	var images []*pipeline.Options
	for _, suite := range suites {
		for _, variant := range variants {
			oi := o
			if len(images) > 0 {
				oi = new(pipeline.Options)
				*oi = *o
			}
			oi.Suite, oi.Variant = suite, strings.TrimPrefix(variant, "default")
			oi.AllowMissing = nil
			for _, s := range allowMissing {
				if slices.Contains(oi.UpdateSuites(), s) {
					oi.AllowMissing = append(oi.AllowMissing, s)
				}
			}
			oi.Nonroot = nonroot && (oi.Distroless() || !slices.ContainsFunc(variants, debian.IsDistroless))
			if err := checkDistroless(oi); err != nil {
				return nil, err
			}
			images = append(images, oi)
		}
	}
	return images, nil
}

// checkDistroless refuses what a distroless image cannot have: hooks and
// apt settings (it has no shell and no apt), --exclude (it starts from
// no required set), --nonroot without it, and a suite distroless has no
// package set for.
func checkDistroless(o *pipeline.Options) error {
	if !o.Distroless() {
		if o.Nonroot {
			return errors.New("--nonroot: only with a distroless --variant")
		}
		return nil
	}
	switch {
	case len(o.Customize) > 0:
		return fmt.Errorf("--customize with --variant %s: a distroless image has no shell to run it in (use --copy)", o.Variant)
	case o.CustomizeNetwork:
		return fmt.Errorf("--customize-network with --variant %s: a distroless image runs no hooks", o.Variant)
	case len(o.AptConf) > 0:
		return fmt.Errorf("--apt-conf with --variant %s: a distroless image has no apt", o.Variant)
	case len(o.Exclude) > 0:
		return fmt.Errorf("--exclude with --variant %s: a distroless image has only its packages and what they need", o.Variant)
	}
	_, err := debian.DistrolessPackages(o.Variant, o.Suite)
	return err
}
