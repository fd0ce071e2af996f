package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/testenv"
)

// lastLine is the last line of out, where basebuild prints the digest.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// exitCode is the exit status main gives err, from runCLI, or the
// binary's, from runBinary.
func exitCode(err error) int {
	var exit *exitError
	var binary *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &binary):
		return binary.ExitCode()
	case errors.As(err, &exit):
		return exit.code
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

// TestIfChangedAndVerify builds bookworm once through the binary, then checks that
// --if-changed skips the build for an oci: output and a registry that hold
// that image and rebuilds when an input changes, saying what changed, and
// that verify tells the same image (exit 0) from a different one (exit 1,
// with the files and packages that differ) and fails on a registry it
// cannot read (exit 2).
func TestIfChangedAndVerify(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	registry := testenv.Registry(t)
	work := t.TempDir()
	layout := filepath.Join(work, "layout")
	common := []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot, "--snapshot-server", server,
		"--cache-dir", sharedCache}
	out, stderr, err := runBinary(t, append(common, "--output", "oci:"+layout)...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	digest := lastLine(out)

	// Unchanged: no build, the destination's digest, quickly.
	start := time.Now()
	out, stderr, err = runBinary(t, append(common, "--output", "oci:"+layout, "--if-changed")...)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("--if-changed: %v\n%s", err, stderr)
	}
	if got := lastLine(out); got != digest {
		t.Errorf("--if-changed printed %s, the layout has %s", got, digest)
	}
	if strings.Contains(stderr, "configure:") || !strings.Contains(stderr, "up to date") {
		t.Errorf("--if-changed on an unchanged image built it, or did not say why not:\n%s", stderr)
	}
	t.Logf("--if-changed, unchanged, oci: %s", took)
	if took > 2*time.Second {
		t.Errorf("--if-changed took %s to find nothing changed, want under 2s", took)
	}

	// The same through a registry, the image copied there by skopeo.
	ref := registry + "/ifchanged/debian:bookworm"
	if msg, err := exec.Command("skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":bookworm", "docker://"+ref).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, msg)
	}
	start = time.Now()
	out, stderr, err = runBinary(t, append(common, "--push", ref, "--if-changed")...)
	if err != nil || lastLine(out) != digest || !strings.Contains(stderr, "up to date") {
		t.Errorf("--if-changed --push %s: %v, printed %q, want %s\n%s", ref, err, lastLine(out), digest, stderr)
	}
	t.Logf("--if-changed, unchanged, registry: %s", time.Since(start))

	// verify: the rebuild is the pushed image.
	out, stderr, err = runBinary(t, append(append([]string{"verify"}, common...), ref)...)
	if err != nil || out != ref+": same image, "+digest+"\n" {
		t.Errorf("verify %s: %v (exit %d)\nstdout: %s\nstderr: %s", ref, err, exitCode(err), out, lastLines(stderr, 5))
	}

	// Changed: hello added; it builds, says so, and writes the new image.
	changed := filepath.Join(work, "changed")
	if msg, err := exec.Command("cp", "-a", layout, changed).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, msg)
	}
	out, stderr, err = runBinary(t, append(common, "--include", "hello", "--output", "oci:"+changed, "--if-changed")...)
	if err != nil {
		t.Fatalf("--if-changed --include hello: %v\n%s", err, stderr)
	}
	helloDigest := lastLine(out)
	if helloDigest == digest || !strings.Contains(stderr, "is out of date") || !strings.Contains(stderr, "  added hello ") ||
		!strings.Contains(stderr, "  include (none) -> hello\n") {
		t.Errorf("--if-changed --include hello: digest %s (was %s), stderr does not say hello was added:\n%s",
			helloDigest, digest, lastLines(stderr, 0))
	}

	// verify without hello against the image with it: different.
	out, stderr, err = runBinary(t, append(append([]string{"verify"}, common...), "oci:"+changed+":bookworm")...)
	if exitCode(err) != 1 {
		t.Fatalf("verify of a different image: %v, exit %d, want 1\n%s", err, exitCode(err), stderr)
	}
	for _, want := range []string{
		"is " + helloDigest + ", the rebuild is " + digest,
		"  ./usr/bin/hello: only in A\n",
		"  removed hello ",
		"  include hello -> (none)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify's report has no %q:\n%s", want, out)
		}
	}

	// A registry that cannot be reached: exit 2, one line, before any build.
	out, stderr, err = runBinary(t, append(append([]string{"verify"}, common...), "127.0.0.1:1/debian:bookworm")...)
	if exitCode(err) != 2 || out != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("verify against an unreachable registry: %v, want exit 2 and one line:\n%s%s", err, out, stderr)
	}
}

// lastLines is the last n lines of s, all of them for n 0.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
