package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/rootfs"
)

// mirrorSnapshot is the --snapshot of the tests that build through the
// snapshot server, which serves the mirror's current state for any time.
// A snapshot's Release may not be dated after the snapshot time, so it is
// the time the tests started: one for all, as builds compared with one
// another must share it. mirrorDate is what {date} makes of it.
var (
	mirrorSnapshot = time.Now().UTC().Format("20060102T150405Z")
	mirrorDate     = mirrorSnapshot[:8]
)

// runBinary runs the basebuild binary with args as a user does: as root,
// a build (and verify) runs again in a mount namespace of its own and
// builds in a tmpfs there (namespace.go), which run, called in-process by
// runCLI, never does. When it exits non-zero, err is an *exec.ExitError
// (see exitCode) with what it printed from its last "basebuild: " line on,
// the error main wrote.
func runBinary(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := errOut.String()
		if i := strings.LastIndex("\n"+msg, "\nbasebuild: "); i >= 0 {
			msg = msg[i:]
		}
		return out.String(), errOut.String(), fmt.Errorf("%w: %s", err, strings.TrimSuffix(msg, "\n"))
	}
	return out.String(), errOut.String(), nil
}

// TestDryRunMatchesDebuerreotype checks the acceptance criterion of the
// resolver: basebuild's package set is exactly the one of a debuerreotype
// image built from the same mirror (init, minimizing-config, sources with
// -updates and -security, apt-get dist-upgrade).
func TestDryRunMatchesDebuerreotype(t *testing.T) {
	server := testenv.SnapshotServer(t)
	for _, suite := range []string{"bookworm", "trixie", "bullseye", "sid"} {
		t.Run(suite, func(t *testing.T) {
			dir := testenv.Reference(t, suite)
			want, err := os.ReadFile(filepath.Join(dir, "dpkg-query.txt"))
			if err != nil {
				t.Fatal(err)
			}
			// bookworm and sid go through the snapshot server, the others
			// read the host's mirror from its apt sources, as users do.
			// sid's InRelease on the mirror is past its Valid-Until, so it
			// is read as it was at the reference's epoch, when it was
			// valid (as TestRootfsSid does).
			args := []string{"--suite", suite, "--arch", "amd64", "--cache-dir", filepath.Join(t.TempDir(), "cache"), "--dry-run"}
			switch suite {
			case "bookworm":
				args = append(args, "--snapshot", mirrorSnapshot, "--snapshot-server", server)
			case "sid":
				epoch := readEpoch(t, dir).UTC().Format("20060102T150405Z")
				args = append(args, "--snapshot", epoch, "--snapshot-server", server)
			}
			got, stderr, err := runCLI(t, args...)
			if err != nil {
				t.Fatalf("basebuild %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
			}
			if got != string(want) {
				t.Errorf("basebuild --dry-run differs from debuerreotype's dpkg-query -W:\n%s", lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if count[l] < 0 {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// chrootRunner enters a chroot of dir until the test ends and returns a
// function that runs a command there and returns its output, failing t
// (but going on) when the command fails. The chroot has the host's
// network, as a container run from the image would, for apt-get update.
func chrootRunner(t *testing.T, dir string) func(name string, args ...string) string {
	t.Helper()
	ch, err := rootfs.EnterChroot(context.Background(), dir, rootfs.ChrootOptions{Network: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return func(name string, args ...string) string {
		t.Helper()
		var log bytes.Buffer
		if err := ch.Run(context.Background(), &log, name, args...); err != nil {
			t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, log.String())
		}
		return log.String()
	}
}
