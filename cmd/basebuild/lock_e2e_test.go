package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/testenv"
)

// TestLock takes a lock of bookworm through the binary and builds it with
// --lock: the image is the direct build's, byte for byte. A lock edited by
// hand (a version, a package's SHA-256) is refused with one line naming
// the package and nothing written; flags that disagree with the lock, a
// lock of another format and a malformed one are usage errors. lock
// --check says the lock is up to date (exit 0), and that one edited to an
// older version is stale (exit 1), with the change. With the cache the
// builds filled, --lock --offline builds the same image with no network.
func TestLock(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	work := t.TempDir()
	common := []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot, "--snapshot-server", server,
		"--cache-dir", sharedCache}
	lock := filepath.Join(work, "bookworm.lock")
	if _, stderr, err := runBinary(t, append([]string{"lock", "-o", lock}, common...)...); err != nil {
		t.Fatalf("lock: %v\n%s", err, stderr)
	}
	text, err := os.ReadFile(lock)
	if err != nil {
		t.Fatal(err)
	}
	// The same bytes again, on stdout.
	again, stderr, err := runBinary(t, append([]string{"lock"}, common...)...)
	if err != nil {
		t.Fatalf("lock to stdout: %v\n%s", err, stderr)
	}
	if again != string(text) {
		t.Errorf("two locks of the same archive differ:\n%s\n---\n%s", text, again)
	}
	// One line per package, the --dry-run's packages.
	dry, stderr, err := runBinary(t, append(common, "--dry-run")...)
	if err != nil {
		t.Fatalf("--dry-run: %v\n%s", err, stderr)
	}
	pkgLine := regexp.MustCompile(`(?m)^package \{"name":"([^"]+)","version":"([^"]+)","architecture":"([^"]+)",.*"sha256":"[0-9a-f]{64}".*\}$`)
	var locked []string
	for _, m := range pkgLine.FindAllStringSubmatch(string(text), -1) {
		locked = append(locked, m[1]+" "+m[2]+" "+m[3])
	}
	if got, want := strings.Join(locked, "\n"), strings.TrimSpace(dry); got != want {
		t.Errorf("the lock's packages differ from --dry-run's:\n%s", lineDiff(want, got))
	}
	for _, want := range []string{"\nformat 1\n", "\ninput suite bookworm\n", "\ninput snapshot " + mirrorSnapshot + "\n", "\nrelease {\"url\":"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the lock lacks %q", want)
		}
	}

	out, stderr, err := runBinary(t, append(common, "--output", "oci:"+filepath.Join(work, "direct"))...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	direct := lastLine(out)
	out, stderr, err = runBinary(t, append(common, "--lock", lock, "--output", "oci:"+filepath.Join(work, "locked"))...)
	if err != nil {
		t.Fatalf("--lock build: %v\n%s", err, stderr)
	}
	if got := lastLine(out); got != direct {
		t.Errorf("--lock built %s, the direct build %s", got, direct)
	}

	// With the lock and the cache those builds filled, no network at
	// all: --offline refuses any request, and the image is the same.
	out, stderr, err = runBinary(t, append(common, "--lock", lock, "--offline", "--output", "oci:"+filepath.Join(work, "offline"))...)
	if err != nil {
		t.Fatalf("--lock --offline build: %v\n%s", err, stderr)
	}
	if got := lastLine(out); got != direct {
		t.Errorf("--lock --offline built %s, the direct build %s", got, direct)
	}
	// Without the cache it fails at once, with one line.
	empty := append(slices.Clone(common[:len(common)-1]), filepath.Join(work, "empty-cache"))
	_, _, err = runBinary(t, append(empty, "--lock", lock, "--offline", "--output", "oci:"+filepath.Join(work, "offline-empty"))...)
	oneLineError(t, "--offline with an empty cache", err, "offline: not in the cache")
	if _, err := os.Stat(filepath.Join(work, "offline-empty")); err == nil {
		t.Error("--offline with an empty cache wrote its output")
	}

	edit := func(name string, re, repl string) string {
		t.Helper()
		p := regexp.MustCompile(re)
		edited := p.ReplaceAllString(string(text), repl)
		if edited == string(text) {
			t.Fatalf("%s: the edit %s changed nothing", name, re)
		}
		path := filepath.Join(work, name)
		if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		lock string
		args []string
		code int
		want string
	}{
		{edit("version.lock", `(?m)^(package \{"name":"bash","version":")[^"]+`, "${1}5.0-1"), nil, 1, `package bash 5.0-1 (amd64): not in the archive's signed indexes`},
		{edit("sha.lock", `(?m)^(package \{"name":"dash",.*"sha256":")[0-9a-f]{64}`, "${1}"+strings.Repeat("0", 64)), nil, 1, `package dash `},
		{lock, []string{"--include", "hello"}, 2, `--lock ` + lock + `: --include: the lock has "", the command line "hello"`},
		{lock, []string{"--variant", "slim"}, 2, `--variant: the lock has "", the command line "slim"`},
		{edit("format.lock", `(?m)^format 1$`, "format 2"), nil, 2, `format "2": this basebuild reads format 1`},
		{edit("malformed.lock", `(?m)^(package \{"name":"apt",)`, "${1}\"colour\":\"blue\","), nil, 2, `unknown field "colour"`},
		{edit("arm64.lock", `(?m)^input arch amd64$`, "input arch arm64"), nil, 2, `--arch: the lock has "arm64", the command line "amd64"`},
		{edit("notalock.lock", `(?s)^.*$`, "suite bookworm\n"), nil, 2, `want the format line first`},
	} {
		dest := filepath.Join(work, "refused")
		_, _, err := runBinary(t, append(common, append(tc.args, "--lock", tc.lock, "--output", "oci:"+dest)...)...)
		what := filepath.Base(tc.lock) + " " + strings.Join(tc.args, " ")
		oneLineError(t, what, err, tc.want)
		if code := exitCode(err); code != tc.code {
			t.Errorf("%s: exit %d, want %d", what, code, tc.code)
		}
		if _, err := os.Stat(dest); err == nil {
			t.Errorf("%s: %s written", what, dest)
		}
	}

	out, stderr, err = runBinary(t, append([]string{"lock", "--check", lock}, common...)...)
	if err != nil || !strings.Contains(out, "up to date") {
		t.Errorf("lock --check of a fresh lock: %v\n%s%s", err, out, stderr)
	}
	// A later --snapshot is how a nightly job moves a snapshot lock on:
	// --check compares (the mirror is the same, the epoch is not).
	time.Sleep(time.Second)
	later := time.Now().UTC().Format("20060102T150405Z")
	laterArgs := slices.Clone(common)
	laterArgs[slices.Index(laterArgs, mirrorSnapshot)] = later
	out, _, err = runBinary(t, append([]string{"lock", "--check", lock}, laterArgs...)...)
	if code := exitCode(err); code != 1 || !strings.HasPrefix(out, "epoch ") || strings.Contains(out, "\n~ ") {
		t.Errorf("lock --check with a later --snapshot: exit %d (%v), stdout %q; want exit 1 and the epoch moved alone", code, err, out)
	}
	bash := regexp.MustCompile(`(?m)^package \{"name":"bash","version":"([^"]+)"`).FindStringSubmatch(string(text))
	out, _, err = runBinary(t, append([]string{"lock", "--check", filepath.Join(work, "version.lock")}, common...)...)
	if code := exitCode(err); code != 1 || bash == nil || strings.TrimSpace(out) != "~ bash 5.0-1 -> "+bash[1] {
		t.Errorf("lock --check of a stale lock: exit %d (%v), stdout %q; want exit 1 and ~ bash 5.0-1 -> %v", code, err, out, bash)
	}
}
