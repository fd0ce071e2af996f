// Package pipeline ties the stages together for the command line: it turns
// the user's options into archives, a verified index set, a resolved
// package set and verified debs in the cache.
package pipeline

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
	"github.com/basebuild/basebuild/rootfs"
	"github.com/basebuild/basebuild/snapshots"
)

// DefaultKeyring is Debian's archive keyring (package debian-archive-keyring).
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// Options are the inputs of a build, in four parts: what decides the
// image, where its packages come from, where it goes, and how this run
// goes. Only the Spec is recorded in the image (see Inputs).
type Options struct {
	Spec
	Sources
	Destinations
	Runtime
}

// Spec is what decides the image: two builds with the same Spec from the
// same archive state make the same image, whatever the other Options.
// Its one canonical text is Inputs; the image history's created_by and
// the resolved-set cache key derive from the same fields (a test checks
// that every field changes each of them).
type Spec struct {
	Suite       string
	Snapshot    time.Time // zero: the live mirror
	Arch        string
	Include     []string
	Exclude     []string
	MergedUsr   *bool                // nil: as debuerreotype does for the suite
	Variant     string               // "" (the default), VariantSlim or a debian.DistrolessVariants
	Nonroot     bool                 // a distroless image runs as nonroot (see rootfs.NonrootUID)
	AptConf     []string             // --apt-conf lines, written to AptConfFile in order
	Repos       []apt.Repo           // extra repositories (--repo, --sources), see LoadRepos
	Preferences *apt.PreferencesFile // --apt-preferences; nil: none
	Copies      []rootfs.Copy        // --copy, in order (see ParseCopy)
	Customize   []string             // --customize hooks: shell commands run in the chroot, in order
	// CustomizeNetwork gives the hooks the host's network; without it
	// they have a loopback of their own only.
	CustomizeNetwork bool
	// AllowMissing names the -updates or security suites a build may go
	// without (--allow-missing-suite); any other missing suite is an
	// error, so that security updates are never dropped unnoticed.
	AllowMissing []string
	Compression  oci.Compression
}

// Sources say where the archive is read from and whom it must be signed
// by. They decide which packages a Spec gets only through the archive's
// state, which the package list in Inputs records.
type Sources struct {
	SnapshotServer string
	Mirror         string // archive root; empty: the host's apt sources
	SecurityMirror string // empty: the host's, or Mirror's -security sibling
	Keyring        string
	// HostRoot is where the host's apt sources are read from ("/").
	HostRoot string
	// Locked are the Releases of a lock: each suite's InRelease is read
	// from the cache by the SHA-256 the lock gives it before the network
	// (see apt.Repository.Pin).
	Locked []plan.Release
}

// Destinations are where the image goes.
type Destinations struct {
	RootfsDir        string       // keep the rootfs here; empty: a temporary one
	Outputs          []oci.Output // oci:DIR, docker-archive:FILE, rootfs-tar:FILE
	Push             []string     // registry references
	SBOM             string       // also write the SBOM to this file
	SBOMFormat       string       // of SBOM: "spdx" (the default) or "cyclonedx"
	InsecureRegistry bool         // plain HTTP to registries that are not loopback
	AllowDowngrade   bool         // replace destinations' images built from newer inputs (see NoDowngrade)
	// Rebuilt is why --if-changed rebuilds (see Review), attached to the
	// image when set.
	Rebuilt *audit.Review
	// AttachInputs attaches the inputs artifact (see InputsType) to each
	// image, beside its audit artifacts.
	AttachInputs bool
}

// Runtime are the settings of this run alone.
type Runtime struct {
	CacheDir string
	Jobs     int
	TempDir  string    // for the temporary rootfs and layer; empty: os.TempDir()
	Tmpfs    bool      // build them in a tmpfs of their own under TempDir (see workDir)
	Log      io.Writer // progress and notes; nil discards them
	Verbose  bool      // also each phase's time and the maintainer scripts' output on Log
	Report   *Report   // if set, records the phases (--report)
	// Progress, if set, is told how far the build has come (see Event),
	// from several goroutines at once.
	Progress func(Event)
	// Offline makes any request to an archive an error: the build reads
	// the cache alone.
	Offline bool
	// Now is the time Valid-Until is checked against without --snapshot;
	// zero means time.Now. With --snapshot it is the snapshot's time.
	Now time.Time
}

// VariantSlim is debuerreotype's "slim" variant: no documentation, man
// pages or translations (see rootfs.Slimify).
const VariantSlim = "slim"

// Tag names the image: the suite, with "-slim" for the slim variant, as
// the official images are tagged; a distroless one as distroless names
// it ("static-debian12", "base-debian12-nonroot").
func (s *Spec) Tag() string {
	switch {
	case s.Variant == VariantSlim:
		return s.Suite + "-" + VariantSlim
	case s.Distroless():
		return debian.DistrolessTag(s.Variant, s.Suite, s.Nonroot)
	}
	return s.Suite
}

// Distroless reports whether s builds a distroless variant.
func (s *Spec) Distroless() bool {
	return debian.IsDistroless(s.Variant)
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Archives returns the archive roots the options select. A URL in
// --snapshot-server, --mirror, --security-mirror or the host's apt
// sources that is not http(s) or holds credentials is an error, whether
// it is used or not: archive URLs are written into images, SBOMs, the
// cache and reports.
func (o *Options) Archives() (snapshots.Archives, error) {
	for _, url := range []string{o.SnapshotServer, o.Mirror, o.SecurityMirror} {
		if url == "" {
			continue
		}
		if err := snapshots.CheckURL(url); err != nil {
			return snapshots.Archives{}, err
		}
	}
	if !o.Snapshot.IsZero() {
		server := o.SnapshotServer
		if server == "" {
			server = snapshots.DefaultServer
		}
		return snapshots.Snapshot(server, o.Snapshot), nil
	}
	var a snapshots.Archives
	if o.Mirror != "" {
		a = snapshots.Mirror(o.Mirror)
	} else {
		root := o.HostRoot
		if root == "" {
			root = "/"
		}
		var err error
		if a, err = snapshots.HostArchives(root); err != nil {
			return snapshots.Archives{}, err
		}
	}
	if o.SecurityMirror != "" {
		a.Security = o.SecurityMirror
	}
	return a, nil
}

// repositories lists the suites a build reads, each with the keyring its
// InRelease must be signed by: SUITE, SUITE-updates and the security
// suite with --keyring's (suites that never have updates, sid and
// experimental, read SUITE alone), then the extra repositories with
// their own. Each must exist, but for those in o.AllowMissing.
func (o *Options) repositories(a snapshots.Archives) ([]apt.Repository, error) {
	keyring, err := apt.LoadKeyring(cmp.Or(o.Keyring, DefaultKeyring))
	if err != nil {
		return nil, err
	}
	snap := !o.Snapshot.IsZero()
	repos := []apt.Repository{{URL: a.Debian, Suite: o.Suite, Snapshot: snap, Debian: true, Keyring: keyring}}
	for _, s := range o.UpdateSuites() {
		url := a.Debian
		if s == debian.SecuritySuite(o.Suite) {
			url = a.Security
		}
		repos = append(repos, apt.Repository{URL: url, Suite: s, Snapshot: snap, Debian: true, Optional: slices.Contains(o.AllowMissing, s), Keyring: keyring})
	}
	for i := range o.Repos {
		repos = append(repos, o.Repos[i].RepositoriesFor(o.Arch)...)
	}
	pin(repos, o.Locked)
	return repos, nil
}

// pin gives each of repos the SHA-256 of its InRelease in locked, a lock's
// Releases, which are in the order of repos but for missing suites. They
// are matched by suite, not URL: the content is what the lock pins, from
// whichever mirror, and it is verified with the repository's keyring.
func pin(repos []apt.Repository, locked []plan.Release) {
	for i := range repos {
		for j, rel := range locked {
			if rel.Suite == repos[i].Suite {
				repos[i].Pin = rel.SHA256
				locked = locked[j+1:]
				break
			}
		}
	}
}

// UpdateSuites are the suites that carry SUITE's updates, SUITE-updates
// and its security suite, or none for suites that never have updates.
func (s *Spec) UpdateSuites() []string {
	return debian.UpdateSuites(s.Suite)
}

// release is c.Release for a suite of the build; a missing update suite's
// error says how to build without it.
func (o *Options) release(ctx context.Context, c *apt.Client, repo apt.Repository) (*apt.Release, error) {
	rel, err := c.Release(ctx, repo, o.now())
	switch {
	case !errors.Is(err, apt.ErrNotFound):
	case slices.Contains(o.UpdateSuites(), repo.Suite):
		err = fmt.Errorf("%w (to build without its updates: --allow-missing-suite %s)", err, repo.Suite)
	case debian.Suggest(repo.Suite) != "":
		err = fmt.Errorf("%w (did you mean %s?)", err, debian.Suggest(repo.Suite))
	}
	return rel, err
}

// releases holds the verified Release of each suite a build reads, nil
// for a missing one the build may go without, so that each is fetched
// and verified once per build, however many architectures read it.
type releases map[string]*apt.Release

// fetch returns the Release of each of repos, fetching and verifying in
// parallel those rs does not hold yet.
func (rs releases) fetch(ctx context.Context, o *Options, c *apt.Client, repos []apt.Repository) ([]*apt.Release, error) {
	rels := make([]*apt.Release, len(repos))
	errs := make([]error, len(repos))
	var wg sync.WaitGroup
	for i, repo := range repos {
		if rel, ok := rs[releaseKey(repo)]; ok {
			rels[i] = rel
			continue
		}
		wg.Go(func() { rels[i], errs[i] = o.release(ctx, c, repo) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	for i, repo := range repos {
		rs[releaseKey(repo)] = rels[i]
	}
	return rels, nil
}

// read returns the archives o reads, the repositories of its suites and
// their verified Releases, fetched through rs.
func (rs releases) read(ctx context.Context, o *Options, c *apt.Client) (snapshots.Archives, []apt.Repository, []*apt.Release, error) {
	archives, err := o.Archives()
	if err != nil {
		return snapshots.Archives{}, nil, nil, err
	}
	repos, err := o.repositories(archives)
	if err != nil {
		return snapshots.Archives{}, nil, nil, err
	}
	rels, err := rs.fetch(ctx, o, c, repos)
	if err != nil {
		return snapshots.Archives{}, nil, nil, err
	}
	return archives, repos, rels, nil
}

// releaseKey is what a Release is held under: its URL and the keys that
// may sign it, as a suite read with another keyring is verified anew.
func releaseKey(repo apt.Repository) string {
	key := repo.InReleaseURL()
	for _, e := range repo.Keyring {
		key += " " + hex.EncodeToString(e.PrimaryKey.Fingerprint)
	}
	return key
}

// now is the time the archive is read as of: the snapshot's, or the
// present, against which Valid-Until is checked.
func (o *Options) now() time.Time {
	if !o.Snapshot.IsZero() {
		return o.Snapshot
	}
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// installRecommends matches an --apt-conf line setting
// APT::Install-Recommends, and takes its value.
var installRecommends = regexp.MustCompile(`(?i)^\s*APT::Install-Recommends\s+"?([^";\s]*)"?\s*;?\s*$`)

// noRecommends reports whether --apt-conf says APT::Install-Recommends
// "false": then the --include packages apt installs (those the bootstrap
// suite lacks) come without their Recommends, as in the site script that
// sets it before apt-get install. The last such line wins, as in apt.
func (s *Spec) noRecommends() bool {
	no := false
	for _, l := range s.AptConf {
		if m := installRecommends.FindStringSubmatch(l); m != nil {
			no = slices.Contains([]string{"0", "no", "false", "off", "without", "disable"}, strings.ToLower(m[1]))
		}
	}
	return no
}

// Client returns an apt client that caches under o.CacheDir.
func (o *Options) Client() (*apt.Client, error) {
	cc, err := cache.Open(o.CacheDir)
	if err != nil {
		return nil, err
	}
	cc.Log = o.logf
	return &apt.Client{Cache: cc, Log: o.logf, Offline: o.Offline}, nil
}

// readUniverse fetches and verifies the Releases of o's suites and their
// Packages indexes of o.Arch, and returns the packages they list.
func readUniverse(ctx context.Context, o *Options, c *apt.Client) ([]apt.Package, error) {
	_, repos, rels, err := releases{}.read(ctx, o, c)
	if err != nil {
		return nil, err
	}
	return fetchIndexes(ctx, o, c, repos, rels)
}

// fetchIndexes fetches the Packages indexes of o.Arch that rels, the
// verified Releases of repos, list, and checks them against rels.
func fetchIndexes(ctx context.Context, o *Options, c *apt.Client, repos []apt.Repository, rels []*apt.Release) ([]apt.Package, error) {
	// Fetch the indexes in parallel; each result lands in its own slot
	// so the universe's order does not depend on timing.
	indexes := make([][]apt.Package, len(repos))
	errs := make([]error, len(repos))
	var wg sync.WaitGroup
	for i, repo := range repos {
		if rel := rels[i]; rel != nil && !slices.Contains(rel.Architectures, o.Arch) {
			return nil, fmt.Errorf("suite %q (%s): no architecture %q (has %v)", repo.Suite, repo.URL, o.Arch, rel.Architectures)
		}
	}
	for i, repo := range repos {
		if rel := rels[i]; rel != nil {
			wg.Go(func() { indexes[i], errs[i] = c.Packages(ctx, repo, rel, o.Arch) })
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var universe []apt.Package
	for _, idx := range indexes {
		universe = append(universe, idx...)
	}
	return universe, nil
}

// resolveIndexes fetches and verifies the indexes of repos, whose Releases
// are rels, and resolves the plan, downloading no package.
func resolveIndexes(ctx context.Context, o *Options, c *apt.Client, archives snapshots.Archives, repos []apt.Repository, rels []*apt.Release) (*plan.Plan, error) {
	universe, err := fetchIndexes(ctx, o, c, repos, rels)
	if err != nil {
		return nil, err
	}

	main := rels[0]
	epoch := o.Snapshot
	if epoch.IsZero() {
		// Without a snapshot the image epoch is the main suite's Date,
		// as debuerreotype does for non-snapshot builds.
		epoch = main.Date
	}
	ropts := apt.ResolveOptions{Arch: o.Arch, Suite: o.Suite, Archive: strings.TrimRight(archives.Debian, "/"),
		Include: o.Include, Exclude: o.Exclude}
	if o.Preferences != nil {
		ropts.Preferences = o.Preferences.Prefs
	}
	ropts.NoRecommends = o.noRecommends()
	ropts.Required, ropts.ExcludeDependency = debian.DebootstrapExtras(main.Codename)
	if o.Distroless() {
		// distroless's packages and --include's, with what they need,
		// as they stand in the archive: nothing bootstrapped first.
		if ropts.Only, err = debian.DistrolessPackages(o.Variant, main.Codename); err != nil {
			return nil, err
		}
		ropts.NoDepends = []string{debian.CACertificates}
		ropts.Skip = debian.ScriptOnlyPackages
		ropts.Required, ropts.ExcludeDependency = nil, nil
	}
	pkgs, err := apt.Resolve(universe, ropts)
	if err != nil {
		return nil, fmt.Errorf("suite %q: %w", o.Suite, err)
	}
	return apt.NewPlan(pkgs, ropts, epoch), nil
}

// fetch downloads set's debs and returns their cache paths by SHA256.
func fetch(ctx context.Context, o *Options, c *apt.Client, set *plan.Plan) (map[string]string, error) {
	start := time.Now()
	paths, err := c.Download(ctx, set.Packages, o.Jobs, o.downloadProgress())
	if err != nil {
		return nil, err
	}
	o.logf("fetched %d packages", len(set.Packages))
	o.phase("fetch", start)
	return paths, nil
}
