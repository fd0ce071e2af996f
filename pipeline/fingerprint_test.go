package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
	"github.com/basebuild/basebuild/rootfs"
)

func fingerprintInputs() (*Options, *plan.Plan) {
	o := &Options{Spec: Spec{Suite: "bookworm", Arch: "amd64", Snapshot: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}}
	set := &plan.Plan{Suite: "bookworm", Arch: "amd64", Epoch: o.Snapshot, Packages: []plan.Package{
		{Name: "base-files", Version: "12.4", Architecture: "amd64", SHA256: "aa"},
		{Name: "libc6", Version: "2.36-9", Architecture: "amd64", SHA256: "bb"},
	}}
	return o, set
}

// Every field of Spec is recorded in the three texts that must know it:
// the canonical inputs (the fingerprint), the resolved-set cache key and,
// but for the exceptions named, the history's created_by. A field added
// to Spec without a case here fails the test.
func TestSpecFieldsRecorded(t *testing.T) {
	no := false
	set := map[string]func(s *Spec){
		"Suite":     func(s *Spec) { s.Suite = "trixie" },
		"Snapshot":  func(s *Spec) { s.Snapshot = s.Snapshot.Add(time.Hour) },
		"Arch":      func(s *Spec) { s.Arch = "arm64" },
		"Include":   func(s *Spec) { s.Include = []string{"hello"} },
		"Exclude":   func(s *Spec) { s.Exclude = []string{"hello"} },
		"MergedUsr": func(s *Spec) { s.MergedUsr = &no },
		"Variant":   func(s *Spec) { s.Variant = VariantSlim },
		"Nonroot":   func(s *Spec) { s.Nonroot = true },
		"AptConf":   func(s *Spec) { s.AptConf = []string{`APT::Install-Recommends "false";`} },
		"Repos": func(s *Spec) {
			s.Repos = []apt.Repo{{Source: apt.Source{URIs: []string{"http://acme.example/debian"}}, KeyPath: "/etc/apt/keyrings/acme.gpg"}}
		},
		"Preferences": func(s *Spec) { s.Preferences = &apt.PreferencesFile{Name: "acme", Data: []byte("Package: *\n")} },
		"Copies": func(s *Spec) {
			s.Copies = []rootfs.Copy{{Src: "/host/ca", Dst: "/usr/local/share/ca-certificates/acme"}}
		},
		"Customize":        func(s *Spec) { s.Customize = []string{"true"} },
		"CustomizeNetwork": func(s *Spec) { s.CustomizeNetwork = true },
		"AllowMissing":     func(s *Spec) { s.AllowMissing = []string{"bookworm-updates"} },
		"Compression":      func(s *Spec) { s.Compression = oci.Zstd },
	}
	// Not in created_by: it names no input of the image's content, only
	// which suites a build may go without (the inputs' package list says
	// which it had).
	notCreatedBy := []string{"AllowMissing"}

	fields := reflect.TypeFor[Spec]()
	if fields.NumField() != len(set) {
		t.Errorf("Spec has %d fields, the test sets %d", fields.NumField(), len(set))
	}
	base, _ := fingerprintInputs()
	_, pkgs := fingerprintInputs()
	for i := range fields.NumField() {
		name := fields.Field(i).Name
		change, ok := set[name]
		if !ok {
			t.Errorf("Spec.%s: no case in this test: record it in Inputs, createdBy and resolveText, and add it here", name)
			continue
		}
		o, _ := fingerprintInputs()
		change(&o.Spec)
		if o.Inputs(pkgs) == base.Inputs(pkgs) {
			t.Errorf("Spec.%s is not in Inputs", name)
		}
		// outdated reads it from the label a derived image inherits.
		if o.inputLabels(pkgs)[AnnotationInputs] == base.inputLabels(pkgs)[AnnotationInputs] {
			t.Errorf("Spec.%s is not in the inputs label", name)
		}
		if o.resolveText() == base.resolveText() {
			t.Errorf("Spec.%s is not in the resolved-set cache key", name)
		}
		if o.createdBy() == base.createdBy() && !slices.Contains(notCreatedBy, name) {
			t.Errorf("Spec.%s is not in created_by", name)
		}
	}
}

// Each input that changes the image changes the fingerprint; what does not
// (paths, jobs, outputs) leaves it.
func TestFingerprintCoversInputs(t *testing.T) {
	o, set := fingerprintInputs()
	base := Fingerprint(o.Inputs(set))
	yes, no := true, false
	changes := map[string]func(o *Options, s *plan.Plan){
		"suite":       func(o *Options, s *plan.Plan) { o.Suite = "trixie" },
		"arch":        func(o *Options, s *plan.Plan) { o.Arch = "arm64" },
		"epoch":       func(o *Options, s *plan.Plan) { s.Epoch = s.Epoch.Add(time.Second) },
		"snapshot":    func(o *Options, s *plan.Plan) { o.Snapshot = time.Time{} },
		"include":     func(o *Options, s *plan.Plan) { o.Include = []string{"hello"} },
		"exclude":     func(o *Options, s *plan.Plan) { o.Exclude = []string{"hello"} },
		"merged-usr":  func(o *Options, s *plan.Plan) { o.MergedUsr = &no },
		"compression": func(o *Options, s *plan.Plan) { o.Compression = oci.Zstd },
		"variant":     func(o *Options, s *plan.Plan) { o.Variant = VariantSlim },
		"nonroot":     func(o *Options, s *plan.Plan) { o.Nonroot = true },
		"version":     func(o *Options, s *plan.Plan) { s.Packages[1].Version = "2.36-9+deb12u1" },
		"content":     func(o *Options, s *plan.Plan) { s.Packages[1].SHA256 = "cc" },
		"package":     func(o *Options, s *plan.Plan) { s.Packages = s.Packages[:1] },
		"allow-missing-suite": func(o *Options, s *plan.Plan) {
			o.AllowMissing = []string{"bookworm-updates"}
		},
	}
	seen := map[string]string{base: "base"}
	for what, change := range changes {
		o, set := fingerprintInputs()
		set.Packages = slices.Clone(set.Packages)
		change(o, set)
		fp := Fingerprint(o.Inputs(set))
		if prev, ok := seen[fp]; ok {
			t.Errorf("changing %s gives the fingerprint of %s", what, prev)
		}
		seen[fp] = what
	}

	same := map[string]func(o *Options){
		"paths":      func(o *Options) { o.CacheDir, o.TempDir, o.RootfsDir = "/a", "/b", "/c" },
		"jobs":       func(o *Options) { o.Jobs = 1 },
		"push":       func(o *Options) { o.Push = []string{"example/x"} },
		"gzip":       func(o *Options) { o.Compression = oci.Gzip },
		"merged-usr": func(o *Options) { o.MergedUsr = &yes }, // bookworm's default
		"include":    func(o *Options) { o.Include = []string{} },
		"allow-none": func(o *Options) { o.AllowMissing = []string{} },
	}
	for what, change := range same {
		o, set := fingerprintInputs()
		change(o)
		if fp := Fingerprint(o.Inputs(set)); fp != base {
			t.Errorf("changing %s changes the fingerprint", what)
		}
	}
	o1, _ := fingerprintInputs()
	o1.Include = []string{"b", "a"}
	o2, _ := fingerprintInputs()
	o2.Include = []string{"a", "b"}
	if o1.Inputs(set) != o2.Inputs(set) {
		t.Error("the order of --include changes the inputs")
	}
}

// The inputs' text is what images record and the fingerprint hashes:
// pinned, so that a value added to the plan changes no image.
func TestInputsText(t *testing.T) {
	o, set := fingerprintInputs()
	set.Releases = []plan.Release{{URL: "http://archive.example/debian", Suite: "bookworm", Codename: "bookworm",
		Date: o.Snapshot, SHA256: strings.Repeat("e", 64)}}
	for i := range set.Packages {
		p := &set.Packages[i]
		p.Source, p.SourceVersion, p.URL, p.Size = p.Name, p.Version, "http://archive.example/debian/pool/"+p.Name+".deb", 1000
		p.Priority, p.Essential, p.Required, p.Origin = "required", true, true, "Acme"
	}
	want := `basebuild ` + Version + `
suite bookworm
arch amd64
epoch 2024-01-01T00:00:00Z
snapshot 20240101T000000Z
include 
exclude 
merged-usr true
compression gzip
`
	packages := `package base-files 12.4 amd64 aa
package libc6 2.36-9 amd64 bb
`
	if got := o.Inputs(set); got != want+packages {
		t.Errorf("Inputs:\n%s\nwant\n%s", got, want+packages)
	}
	// The label: all but the packages; the fingerprint, of them all.
	labels, annotations := o.inputLabels(set), o.inputAnnotations(set)
	if labels[AnnotationInputs] != want || annotations[AnnotationInputs] != want+packages ||
		annotations[AnnotationFingerprint] != Fingerprint(want+packages) || labels[AnnotationFingerprint] != "" {
		t.Errorf("labels %q, annotations %q", labels, annotations)
	}
}

func TestInputChanges(t *testing.T) {
	o, set := fingerprintInputs()
	old := o.Inputs(set)
	set.Epoch = set.Epoch.Add(24 * time.Hour)
	set.Packages = []plan.Package{
		{Name: "apt", Version: "2.6.1", Architecture: "amd64", SHA256: "dd"},
		{Name: "libc6", Version: "2.36-8", Architecture: "amd64", SHA256: "bb"},
	}
	got := InputChanges(old, o.Inputs(set))
	want := []string{
		"epoch 2024-01-01T00:00:00Z -> 2024-01-02T00:00:00Z",
		"added apt 2.6.1",
		"removed base-files 12.4",
		"downgraded libc6 2.36-9 -> 2.36-8",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("InputChanges:\n%q\nwant\n%q", got, want)
	}
	set.Packages[1].Version = "2.36-10"
	if got := InputChanges(old, o.Inputs(set)); got[len(got)-1] != "upgraded libc6 2.36-9 -> 2.36-10" {
		t.Errorf("last change %q, want the upgrade of libc6", got[len(got)-1])
	}
	if got := InputChanges(old, old); len(got) != 0 {
		t.Errorf("InputChanges of equal inputs: %q", got)
	}
}

func TestResolveCache(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{
		{Name: "base-files", Version: "12.4", Fields: map[string]string{"Priority": "required", "Essential": "yes"}},
		{Name: "usr-is-merged", Version: "37", Arch: "all", Fields: map[string]string{"Priority": "optional"}},
		{Name: "apt", Version: "2.6.1", Fields: map[string]string{"Priority": "important"}},
		{Name: "hello", Version: "2.10", Fields: map[string]string{"Priority": "optional"}},
	}}, apttest.Suite{Name: "bookworm-updates"}, apttest.Suite{Archive: "debian-security", Name: "bookworm-security"})
	o := &Options{Spec: Spec{Suite: "bookworm", Arch: "amd64", Snapshot: apttest.Epoch},
		Sources: Sources{SnapshotServer: a.SnapshotURL(), Keyring: a.KeyringPath}, Runtime: Runtime{CacheDir: t.TempDir()}}
	c, err := o.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want, err := Resolve(ctx, o, &apt.Client{}) // without the cache
	if err != nil {
		t.Fatal(err)
	}
	got, err := Resolve(ctx, o, c)
	if err != nil {
		t.Fatal(err)
	}
	if o.Inputs(got) != o.Inputs(want) {
		t.Fatalf("Resolve:\n%s\nResolve:\n%s", o.Inputs(got), o.Inputs(want))
	}

	// The next call reads the set back: make the cached one recognisable.
	files, _ := filepath.Glob(filepath.Join(o.CacheDir, "sets", "*.json"))
	if len(files) != 1 {
		t.Fatalf("cached sets: %q, want one", files)
	}
	marked := *got
	marked.Packages = slices.Clone(got.Packages)
	marked.Packages[0].Version = "cached"
	key, _, _ := strings.Cut(filepath.Base(files[0]), ".")
	os.Remove(files[0])
	var b bytes.Buffer
	if err := plan.Write(&b, &marked); err != nil {
		t.Fatal(err)
	}
	if err := c.Cache.PutSet(key, b.Bytes()); err != nil {
		t.Fatal(err)
	}
	again, err := Resolve(ctx, o, c)
	if err != nil {
		t.Fatal(err)
	}
	if again.Packages[0].Version != "cached" {
		t.Error("Resolve resolved again instead of reading its cache")
	}

	// A set changed in place, planted or damaged, no longer matches the
	// hash in its name: it is removed, with a note, and resolved again.
	files, _ = filepath.Glob(filepath.Join(o.CacheDir, "sets", "*.json"))
	if len(files) != 1 {
		t.Fatalf("cached sets: %q, want one", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[0], bytes.ReplaceAll(data, []byte(`"cached"`), []byte(`"planted"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	var notes []string
	c.Cache.Log = func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	planted, err := Resolve(ctx, o, c)
	if err != nil {
		t.Fatal(err)
	}
	if v := planted.Packages[0].Version; v != want.Packages[0].Version {
		t.Errorf("Resolve read the planted set: version %q", v)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], files[0]) || !strings.Contains(notes[0], "removed") {
		t.Errorf("notes %q, want one on %s removed", notes, files[0])
	}
	if _, err := os.Stat(files[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the planted set is still there: %v", err)
	}

	// Options that change the resolution change the key.
	o.Include = []string{"hello"}
	with, err := Resolve(ctx, o, c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(with.Packages, func(d plan.Package) bool { return d.Name == "hello" }) {
		t.Error("--include hello: Resolve returned the set without it")
	}
	if files, _ := filepath.Glob(filepath.Join(o.CacheDir, "sets", "*.json")); len(files) != 2 {
		t.Errorf("cached sets after --include: %d, want 2", len(files))
	}
}

// A build reads each suite's Release once, however many architectures it
// resolves, and each plan records the Releases it was resolved from and
// debootstrap's required packages.
func TestResolveArchsReadsReleasesOnce(t *testing.T) {
	var main, updates, security []apttest.Deb
	for _, arch := range []string{"amd64", "arm64"} {
		main = append(main,
			apttest.Deb{Name: "base-files", Version: "12.4", Arch: arch, Fields: map[string]string{"Priority": "required", "Essential": "yes"}},
			apttest.Deb{Name: "apt", Version: "2.6.1", Arch: arch, Fields: map[string]string{"Priority": "important"}})
		updates = append(updates, apttest.Deb{Name: "apt", Version: "2.6.1+u1", Arch: arch, Fields: map[string]string{"Priority": "important"}})
		security = append(security, apttest.Deb{Name: "base-files", Version: "12.4+deb12u1", Arch: arch, Fields: map[string]string{"Priority": "required", "Essential": "yes"}})
	}
	main = append(main, apttest.Deb{Name: "usr-is-merged", Version: "37", Arch: "all", Fields: map[string]string{"Priority": "optional"}})
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: main}, apttest.Suite{Name: "bookworm-updates", Debs: updates},
		apttest.Suite{Archive: "debian-security", Name: "bookworm-security", Debs: security})
	o := &Options{Spec: Spec{Suite: "bookworm"},
		Sources: Sources{Mirror: a.URL("debian"), SecurityMirror: a.URL("debian-security"), Keyring: a.KeyringPath},
		Runtime: Runtime{CacheDir: t.TempDir(), Now: apttest.Epoch}}
	c, err := o.Client()
	if err != nil {
		t.Fatal(err)
	}
	plans, err := ResolveArchs(context.Background(), o, c, []string{"amd64", "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	inRelease := []string{"debian/dists/bookworm/InRelease", "debian/dists/bookworm-updates/InRelease",
		"debian-security/dists/bookworm-security/InRelease"}
	for _, path := range inRelease {
		if n := a.Requests(path); n != 1 {
			t.Errorf("%s: %d requests, want 1", path, n)
		}
	}
	keyring, err := os.ReadFile(a.KeyringPath)
	if err != nil {
		t.Fatal(err)
	}
	keyringSum := fmt.Sprintf("%x", sha256.Sum256(keyring))
	for _, p := range plans {
		var want []plan.Release
		for _, path := range inRelease {
			archive, dists, _ := strings.Cut(path, "/dists/")
			suite, _, _ := strings.Cut(dists, "/")
			sum := sha256.Sum256(a.Get(path))
			index := "main/binary-" + p.Arch + "/Packages.xz"
			data := a.Get(archive + "/dists/" + suite + "/" + index)
			indexSum := sha256.Sum256(data)
			want = append(want, plan.Release{URL: a.URL(archive), Suite: suite, Codename: "bookworm", Date: apttest.Epoch,
				SHA256: hex.EncodeToString(sum[:]), Keyring: keyringSum,
				Indexes: []plan.Index{{Path: index, Size: int64(len(data)), SHA256: hex.EncodeToString(indexSum[:])}}})
		}
		if !reflect.DeepEqual(p.Releases, want) {
			t.Errorf("%s: releases\n%+v\nwant\n%+v", p.Arch, p.Releases, want)
		}
		var got []string
		for _, d := range p.Packages {
			got = append(got, fmt.Sprintf("%s %s %s %v", d.Name, d.Version, d.Architecture, d.Required))
		}
		wantPkgs := []string{"apt 2.6.1+u1 " + p.Arch + " false", "base-files 12.4+deb12u1 " + p.Arch + " true", "usr-is-merged 37 all true"}
		if !slices.Equal(got, wantPkgs) {
			t.Errorf("%s: packages %q, want %q", p.Arch, got, wantPkgs)
		}
	}
}

func TestDowngrades(t *testing.T) {
	o, set := fingerprintInputs()
	old := o.Inputs(set)
	if got := Downgrades(old, old); len(got) != 0 {
		t.Errorf("same inputs: %q", got)
	}
	newer := *set
	newer.Epoch = set.Epoch.Add(time.Hour)
	newer.Packages = slices.Clone(set.Packages)
	newer.Packages[1].Version = "2.36-9+deb12u1"
	if got := Downgrades(old, o.Inputs(&newer)); len(got) != 0 {
		t.Errorf("newer epoch and package: %q", got)
	}
	if got, want := Downgrades(o.Inputs(&newer), old), []string{
		"epoch 2024-01-01T01:00:00Z -> 2024-01-01T00:00:00Z", "libc6 2.36-9+deb12u1 -> 2.36-9",
	}; !slices.Equal(got, want) {
		t.Errorf("older epoch and package: %q, want %q", got, want)
	}
	// Versions compare as dpkg's do, not as text; added or removed
	// packages are no downgrade.
	newer = *set
	newer.Packages = []plan.Package{set.Packages[0], {Name: "libc6", Version: "1:2.0", Architecture: "amd64", SHA256: "cc"}}
	if got := Downgrades(old, o.Inputs(&newer)); len(got) != 0 {
		t.Errorf("epoch 1: version: %q", got)
	}
	newer.Packages = newer.Packages[:1]
	if got := Downgrades(old, o.Inputs(&newer)); len(got) != 0 {
		t.Errorf("removed package: %q", got)
	}
}
