// Package testenv gives tests what they need from the machine: root, the
// loopback snapshot server and registries make test starts, debuerreotype's
// reference builds, host tools and a basebuild binary.
//
// Outside make test a missing requirement skips the test. make test runs as
// root, exports BASEBUILD_TEST_DIR and starts the servers, so there a
// missing requirement fails the test: under make test nothing skips.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// underMakeTest reports whether the tests run under make test, which
// exports BASEBUILD_TEST_DIR (and the servers' addresses with it).
func underMakeTest() bool {
	return os.Getenv("BASEBUILD_TEST_DIR") != ""
}

// Missing skips t, which lacks what format and args describe, or fails it
// under make test, which provides everything the tests need.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if underMakeTest() {
		t.Fatalf("%s: make test provides it (see the Makefile's test target)", why)
	}
	t.Skip(why)
}

// RequireRoot skips t, or fails it under make test, unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root")
	}
}

// LookPath returns the path of the host tool name, which
// scripts/install-deps.sh installs.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "no %s (scripts/install-deps.sh installs it)", name)
	}
	return path
}

// Scanner returns the path of the SBOM scanner name (syft, trivy), which
// scripts/install-scanners.sh builds into $SCANNER_DIR or its default.
func Scanner(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("SCANNER_DIR")
	if dir == "" {
		dir = "/var/cache/basebuild-test/bin"
	}
	path := filepath.Join(dir, name)
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		Missing(t, "no %s in %s (scripts/install-scanners.sh builds it)", name, dir)
	}
	return path
}

// env returns the value of the variable make test sets for tests.
func env(t testing.TB, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, "%s unset: make test starts %s", name, what)
	}
	return v
}

// SnapshotServer returns the URL of the snapshot-shaped server in front of
// the host's mirror (scripts/snapshot-server.sh).
func SnapshotServer(t testing.TB) string {
	t.Helper()
	return env(t, "BASEBUILD_SNAPSHOT_SERVER", "the snapshot server (scripts/snapshot-server.sh)")
}

// Registry returns the host:port of the loopback registry without auth
// (scripts/registry.sh).
func Registry(t testing.TB) string {
	t.Helper()
	return env(t, "BASEBUILD_REGISTRY", "the registries (scripts/registry.sh)")
}

// RegistryAuth returns the host:port of the loopback registry with
// htpasswd auth and the DOCKER_CONFIG directory holding its credentials.
func RegistryAuth(t testing.TB) (registry, dockerConfig string) {
	t.Helper()
	registry = env(t, "BASEBUILD_REGISTRY_AUTH", "the registries (scripts/registry.sh)")
	dockerConfig = env(t, "BASEBUILD_REGISTRY_AUTH_CONFIG", "the registries (scripts/registry.sh)")
	return registry, dockerConfig
}

// ReferenceDir is where scripts/reference-rootfs.sh and reference-slim.sh
// keep debuerreotype's builds between runs; each takes a minute or more.
const ReferenceDir = "/var/cache/basebuild-test/reference"

// Reference builds (or reuses) debuerreotype's rootfs of suite from the
// host's mirror (scripts/reference-rootfs.sh) and returns its directory.
// It needs root; callers check what else they need first.
func Reference(t testing.TB, suite string) string {
	t.Helper()
	return reference(t, "reference-rootfs.sh", suite, filepath.Join(ReferenceDir, suite))
}

// ReferenceSlim builds (or reuses) debuerreotype's slim rootfs of suite,
// made from the one Reference builds (scripts/reference-slim.sh), and
// returns its directory.
func ReferenceSlim(t testing.TB, suite string) string {
	t.Helper()
	Reference(t, suite)
	return reference(t, "reference-slim.sh", suite, filepath.Join(ReferenceDir, suite+"-slim"))
}

func reference(t testing.TB, script, suite, dir string) string {
	t.Helper()
	RequireRoot(t)
	cmd := exec.Command(filepath.Join(moduleRoot(t), "scripts", script), suite, dir)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v", script, suite, err)
	}
	t.Logf("%s %s: ready in %s", script, suite, time.Since(start).Round(time.Second))
	return dir
}

// moduleRoot returns the directory of go.mod, above the test's package
// directory (go test runs tests there).
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// The binary Binary built, once per test process, and removed by Main.
var binary struct {
	sync.Mutex
	main bool   // Main runs the tests
	dir  string // the temporary directory holding it
	path string
	err  error
}

// Main runs the tests of m and then removes the binary Binary built:
// TestMain calls it in packages that use Binary.
func Main(m *testing.M) {
	binary.Lock()
	binary.main = true
	binary.Unlock()
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// Binary returns the path of a basebuild binary built from this source
// tree, for tests that run it as users do. It is built once per test
// process.
func Binary(t testing.TB) string {
	t.Helper()
	binary.Lock()
	defer binary.Unlock()
	if !binary.main {
		t.Fatal("testenv.Binary: TestMain must call testenv.Main, which removes the binary")
	}
	if binary.path == "" && binary.err == nil {
		binary.path, binary.err = build(moduleRoot(t))
	}
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

func build(root string) (string, error) {
	dir, err := os.MkdirTemp("", "basebuild-test-bin-")
	if err != nil {
		return "", err
	}
	binary.dir = dir
	path := filepath.Join(dir, "basebuild")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/basebuild")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/basebuild: %w\n%s", err, out)
	}
	return path, nil
}
