package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/pipeline"
	"github.com/basebuild/basebuild/plan"
)

// tinyArchive serves bookworm, an empty bookworm-updates and
// bookworm-security with a required package whose dependency was upgraded
// by a security update.
func tinyArchive(t *testing.T) *apttest.Archive {
	return apttest.New(t,
		apttest.Suite{Name: "bookworm-updates"},
		apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{
			{Name: "base-files", Version: "12.4", Fields: map[string]string{"Priority": "required", "Essential": "yes"}},
			{Name: "libc6", Version: "2.36-9", Fields: map[string]string{"Priority": "optional"}},
			{Name: "apt", Version: "2.6.1", Fields: map[string]string{"Priority": "important", "Depends": "libc6 (>= 2.34)"}},
			{Name: "usr-is-merged", Version: "37", Arch: "all", Fields: map[string]string{"Priority": "optional"}},
			{Name: "unrelated", Version: "1.0", Fields: map[string]string{"Priority": "optional"}},
		}},
		apttest.Suite{Archive: "debian-security", Name: "bookworm-security", Debs: []apttest.Deb{
			{Name: "libc6", Version: "2.36-9+deb12u1", Fields: map[string]string{"Priority": "optional"}},
		}},
	)
}

const tinyWant = `apt 2.6.1 amd64
base-files 12.4 amd64
libc6 2.36-9+deb12u1 amd64
usr-is-merged 37 all
`

func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestDryRunMirror(t *testing.T) {
	a := tinyArchive(t)
	cache := t.TempDir()
	out, stderr, err := runCLI(t, "--suite", "bookworm", "--mirror", a.URL("debian"),
		"--security-mirror", a.URL("debian-security"), "--keyring", a.KeyringPath,
		"--arch", "amd64", "--cache-dir", cache, "--dry-run")
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr)
	}
	if out != tinyWant {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, tinyWant)
	}
	if n := a.Requests(a.Path("debian", "bookworm", "apt")); n != 0 {
		t.Errorf("--dry-run fetched apt's deb %d times", n)
	}
}

// A missing update suite is an error naming it, with and without
// --snapshot, unless --allow-missing-suite names it; then it is noted,
// and asked for again the next time.
func TestMissingUpdateSuite(t *testing.T) {
	a := tinyArchive(t)
	a.Fail("debian-security/dists/bookworm-security/InRelease", 404)
	cache := t.TempDir()
	mirror := []string{"--suite", "bookworm", "--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"),
		"--keyring", a.KeyringPath, "--arch", "amd64", "--cache-dir", cache, "--dry-run"}
	snapshot := []string{"--suite", "bookworm", "--snapshot", "20240101", "--snapshot-server", a.SnapshotURL(),
		"--keyring", a.KeyringPath, "--arch", "amd64", "--cache-dir", cache, "--dry-run"}
	for _, args := range [][]string{mirror, snapshot} {
		_, _, err := runCLI(t, args...)
		for _, want := range []string{`suite "bookworm-security"`, "404", "--allow-missing-suite bookworm-security"} {
			oneLineError(t, "missing bookworm-security", err, want)
		}
		if errors.Is(err, errUsage) {
			t.Errorf("missing suite: a usage error: %v", err)
		}
		out, stderr, err := runCLI(t, append(args, "--allow-missing-suite", "bookworm-security")...)
		// Said once: a build reads each Release once.
		if err != nil || !strings.Contains(out, "libc6 2.36-9 amd64") || strings.Count(stderr, `suite "bookworm-security": no InRelease`) != 1 {
			t.Errorf("--allow-missing-suite bookworm-security: %v\nstdout: %s\nstderr: %s", err, out, stderr)
		}
	}
	// Never cached as missing: once back, the updates are used.
	a.Fail("debian-security/dists/bookworm-security/InRelease", 0)
	if out, stderr, err := runCLI(t, append(snapshot, "--allow-missing-suite", "bookworm-security")...); err != nil || out != tinyWant {
		t.Errorf("after the suite came back: %v\nstdout: %s\nstderr: %s", err, out, stderr)
	}

	_, _, err := runCLI(t, append(mirror, "--allow-missing-suite", "bookworm")...)
	oneLineError(t, "--allow-missing-suite bookworm", err, `--allow-missing-suite "bookworm": not an update suite of bookworm (bookworm-updates, bookworm-security)`)
	if !errors.Is(err, errUsage) {
		t.Errorf("--allow-missing-suite bookworm: not a usage error: %v", err)
	}
}

func TestSnapshotWarmCacheNeedsNoNetwork(t *testing.T) {
	a := tinyArchive(t)
	cache := t.TempDir()
	args := []string{"--suite", "bookworm", "--snapshot", "20240101", "--snapshot-server", a.SnapshotURL(),
		"--keyring", a.KeyringPath, "--arch", "amd64", "--cache-dir", cache, "--dry-run"}
	out, stderr, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr)
	}
	if out != tinyWant {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, tinyWant)
	}
	// A snapshot never changes: its InRelease files and indexes are
	// cached.
	a.Close()
	if out2, stderr, err := runCLI(t, args...); err != nil || out2 != out {
		t.Errorf("warm rerun with the server gone: %v\nstdout: %s\nstderr: %s", err, out2, stderr)
	}
}

func TestMissingSuite(t *testing.T) {
	a := tinyArchive(t)
	_, _, err := runCLI(t, "--suite", "trixie", "--mirror", a.URL("debian"), "--keyring", a.KeyringPath,
		"--arch", "amd64", "--cache-dir", t.TempDir(), "--dry-run")
	if err == nil || !strings.Contains(err.Error(), a.URL("debian")+"/dists/trixie/InRelease") {
		t.Errorf("missing suite: err = %v, want it to name the InRelease URL", err)
	}
}

func TestUnknownSigner(t *testing.T) {
	a := tinyArchive(t)
	_, otherKeyring := apttest.NewKey(t)
	_, _, err := runCLI(t, "--suite", "bookworm", "--mirror", a.URL("debian"), "--keyring", otherKeyring,
		"--arch", "amd64", "--cache-dir", t.TempDir(), "--dry-run")
	if err == nil || !strings.Contains(err.Error(), "bookworm") {
		t.Errorf("unknown signer: err = %v, want an error naming the suite", err)
	}
}

func TestBadCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dry-run"}, "--suite is required"},
		{[]string{"--suite", "bookworm", "--snapshot", "2024-01-01"}, `"2024-01-01"`},
		{[]string{"--suite", "bookworm", "--snapshot", "yesterday"}, `"yesterday"`},
		{[]string{"--suite", "bookworm", "extra"}, `unexpected argument "extra"`},
		{[]string{"--suite", "bookworm", "--jobs", "0"}, "--jobs 0"},
		{[]string{"--suite", "../etc"}, "not a suite name"},
		{[]string{"--suite", "bookworm", "--frobnicate"}, "frobnicate"},
		{[]string{"--suite", "bookworm", "--push", "reg.example/debian:{os}"}, "unknown placeholder {os}"},
		{[]string{"--suite", "bookworm", "--arch", "amd64,arm64", "--push", "reg.example/debian:{arch}"}, "several architectures make one index"},
		{[]string{"--suite", "bookworm,bookworm"}, "bookworm given twice"},
		{[]string{"--suite", "bookworm,", "--dry-run"}, `--suite "bookworm,": "" is not a suite name`},
		{[]string{"--suite", "bookworm", "--variant", "slim,bogus"}, `--variant "bogus"`},
		{[]string{"--suite", "bookworm,trixie", "--push", "reg.example/debian:latest"}, "both bookworm and trixie would go there"},
		{[]string{"--suite", "bookworm", "--variant", "default,slim", "--output", "oci:out/{suite}"}, "both bookworm and bookworm-slim would go there"},
		{[]string{"--suite", "bookworm", "--variant", "default,slim", "--rootfs", "dir"}, "--rootfs keeps one tree"},
		{[]string{"--suite", "bookworm,trixie", "--sbom", "sbom.json", "--push", "reg.example/debian:{suite}"}, "--sbom sbom.json: both bookworm and trixie would go there"},
		{[]string{"--suite", "bookworm,trixie", "--lock", "lock.txt"}, "--lock holds one image's packages"},
		{[]string{"--suite", "bookworm,sid", "--variant", "distroless-static"}, `no distroless package set for suite "sid"`},
		{[]string{"verify", "--suite", "bookworm,trixie", "oci:out/bookworm"}, `--suite "bookworm,trixie": one only here`},
		{[]string{"lock", "--suite", "bookworm", "--variant", "default,slim"}, `--variant "default,slim": one only here`},
		{[]string{"--suite", "bookworm", "--output", "oci:out/{snapshot}"}, "{snapshot} needs --snapshot"},
	} {
		_, _, err := runCLI(t, tc.args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: err = %v, want a one-line usage error containing %s", tc.args, err, tc.want)
		}
	}
}

func TestHelp(t *testing.T) {
	out, _, err := runCLI(t, "--help")
	if err == nil || !strings.Contains(out, "--dry-run") || !strings.Contains(out, "--snapshot-server") {
		t.Errorf("--help: err %v, output:\n%s", err, out)
	}
}

func TestSnapshotNotFound(t *testing.T) {
	a := tinyArchive(t)
	path := "archive/debian/20240101T000000Z/dists/bookworm/InRelease"
	a.Fail(path, 404)
	_, _, err := runCLI(t, "--suite", "bookworm", "--snapshot", "20240101", "--snapshot-server", a.SnapshotURL(),
		"--keyring", a.KeyringPath, "--arch", "amd64", "--cache-dir", t.TempDir(), "--dry-run")
	if err == nil || !strings.Contains(err.Error(), a.SnapshotURL()+"/"+path) {
		t.Errorf("snapshot 404: err = %v, want it to name %s", err, path)
	}
}

func TestIncludeExclude(t *testing.T) {
	a := tinyArchive(t)
	args := []string{"--suite", "bookworm", "--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"),
		"--keyring", a.KeyringPath, "--arch", "amd64", "--cache-dir", t.TempDir(), "--dry-run"}
	out, stderr, err := runCLI(t, append(args, "--include", "unrelated")...)
	if err != nil || !strings.Contains(out, "unrelated 1.0 amd64\n") {
		t.Errorf("--include unrelated: %v\n%s%s", err, out, stderr)
	}
	out, stderr, err = runCLI(t, append(args, "--exclude", "apt")...)
	if want := "base-files 12.4 amd64\nusr-is-merged 37 all\n"; err != nil || out != want {
		t.Errorf("--exclude apt: %v\n%s, want\n%s%s", err, out, want, stderr)
	}
	_, _, err = runCLI(t, append(args, "--include", "nosuchpackage")...)
	if err == nil || !strings.Contains(err.Error(), `"nosuchpackage"`) {
		t.Errorf("--include nosuchpackage: err = %v", err)
	}
}

func TestReport(t *testing.T) {
	a := tinyArchive(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "report.json")
	args := []string{"--suite", "bookworm", "--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"),
		"--keyring", a.KeyringPath, "--arch", "amd64", "--cache-dir", filepath.Join(dir, "cache"), "--dry-run", "--report", path}
	read := func() *pipeline.Report {
		t.Helper()
		r := &pipeline.Report{}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, r); err != nil {
			t.Fatalf("report: %v\n%s", err, data)
		}
		return r
	}
	if _, stderr, err := runCLI(t, args...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	r := read()
	if r.Version != pipeline.Version || r.Suite != "bookworm" || r.Arch != "amd64" || r.Packages != 4 || r.Error != "" ||
		len(r.Phases) != 1 || r.Phases[0].Name != "resolve" || r.Phases[0].Seconds <= 0 || r.Seconds < r.Phases[0].Seconds ||
		r.MaxRSSBytes < 1<<20 {
		t.Errorf("report of a dry run: %s %s %s, %d packages, phases %+v, %.3fs, %d bytes, error %q", r.Version, r.Suite, r.Arch, r.Packages, r.Phases, r.Seconds, r.MaxRSSBytes, r.Error)
	}
	// A failed build's report says why.
	if _, _, err := runCLI(t, append(args, "--include", "nosuchpackage")...); err == nil {
		t.Fatal("--include nosuchpackage: no error")
	}
	if r := read(); !strings.Contains(r.Error, `"nosuchpackage"`) || r.Packages != 0 {
		t.Errorf("report of a failed build: %s, %d packages", r.Error, r.Packages)
	}
	_, _, err := runCLI(t, append(args, "--report", filepath.Join(dir, "missing", "r.json"))...)
	oneLineError(t, "--report in a missing directory", err, "no directory")
	checkNoLeftovers(t, dir, "cache", "report.json")
}

// TestInNamespace: only a child of basebuild in a mount namespace of its
// own takes the tmpfs; the variable alone, set by hand, does not make one.
func TestInNamespace(t *testing.T) {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "1", self, "mnt:[1]"} {
		t.Setenv(namespaceEnv, v)
		if inNamespace() {
			t.Errorf("%s=%q: in basebuild's own namespace", namespaceEnv, v)
		}
	}
}

// A destination whose image is newer than the build (an older snapshot,
// or an archive replayed to roll back updates) is not replaced without
// --allow-downgrade: exit 1, the destination untouched.
func TestNoDowngrade(t *testing.T) {
	a := tinyArchive(t)
	dir := filepath.Join(t.TempDir(), "out")
	// An image built when libc6 had a later security update.
	newer := mutate.Annotations(empty.Image, map[string]string{
		pipeline.AnnotationInputs: "epoch 2024-01-01T00:00:00Z\npackage libc6 2.36-9+deb12u2 amd64 " + strings.Repeat("0", 64) + "\n",
	})
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(newer.(v1.Image), layout.WithAnnotations(map[string]string{oci.AnnotationRefName: "bookworm"})); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--suite", "bookworm", "--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"),
		"--keyring", a.KeyringPath, "--arch", "amd64", "--cache-dir", t.TempDir(), "--output", "oci:" + dir}
	for _, extra := range [][]string{nil, {"--if-changed"}} {
		_, _, err := runCLI(t, append(args, extra...)...)
		oneLineError(t, fmt.Sprint("downgrade ", extra), err, "image oci:"+dir+":bookworm is newer than this build (libc6 2.36-9+deb12u2 -> 2.36-9+deb12u1): not replacing it without --allow-downgrade")
		if errors.Is(err, errUsage) {
			t.Errorf("a usage error: %v", err)
		}
		if after, _ := os.ReadFile(filepath.Join(dir, "index.json")); !bytes.Equal(after, before) {
			t.Errorf("%v: the destination changed", extra)
		}
	}
	// The same epoch and packages, or later ones, are no downgrade.
	o := &pipeline.Options{Spec: pipeline.Spec{Suite: "bookworm"}, Destinations: pipeline.Destinations{Outputs: []oci.Output{{Type: oci.OCILayout, Path: dir}}}}
	set := &plan.Plan{Epoch: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Packages: []plan.Package{{Name: "libc6", Version: "2.36-9+deb12u2"}}}
	if err := pipeline.NoDowngrade(context.Background(), o, set); err != nil {
		t.Errorf("same versions: %v", err)
	}
	set.Epoch = set.Epoch.Add(-time.Second)
	if err := pipeline.NoDowngrade(context.Background(), o, set); err == nil || !strings.Contains(err.Error(), "epoch 2024-01-01T00:00:00Z -> 2023-12-31T23:59:59Z") {
		t.Errorf("earlier epoch: %v", err)
	}

	// A multi-architecture index at the destination: each architecture's
	// build is compared with the index's image for that architecture.
	multi := filepath.Join(t.TempDir(), "multi")
	ii, err := oci.NewIndex([]string{"amd64"}, []v1.Image{newer.(v1.Image)})
	if err != nil {
		t.Fatal(err)
	}
	if err := (oci.Output{Type: oci.OCILayout, Path: multi}).WriteIndex(ii, "debian:bookworm"); err != nil {
		t.Fatal(err)
	}
	o.Outputs = []oci.Output{{Type: oci.OCILayout, Path: multi}}
	set.Arch = "amd64"
	if err := pipeline.NoDowngrade(context.Background(), o, set); err == nil || !strings.Contains(err.Error(), "image oci:"+multi+":bookworm is newer than this build") {
		t.Errorf("index, amd64, earlier epoch: %v", err)
	}
	set.Arch = "arm64" // the index has no arm64 image: nothing to lose
	if err := pipeline.NoDowngrade(context.Background(), o, set); err != nil {
		t.Errorf("index without the architecture: %v", err)
	}
}

// A mistyped suite says which one was meant; --version says basebuild's.
func TestSuiteTypoAndVersion(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "base-files", Version: "12.4", Fields: map[string]string{"Priority": "required"}}}})
	_, _, err := runBinary(t, "--suite", "bookwrm", "--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"),
		"--keyring", a.KeyringPath, "--cache-dir", t.TempDir(), "--dry-run")
	oneLineError(t, "--suite bookwrm", err, `suite "bookwrm"`)
	oneLineError(t, "--suite bookwrm", err, "(did you mean bookworm?)")
	if code := exitCode(err); code != 1 {
		t.Errorf("--suite bookwrm: exit %d, want 1", code)
	}
	out, _, err := runBinary(t, "--version")
	if err != nil || out != "basebuild "+pipeline.Version+"\n" {
		t.Errorf("--version: %v, %q", err, out)
	}
}
