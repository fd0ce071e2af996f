package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/testenv"
)

// TestProgressOnTerminal builds bookworm as a person at a terminal does,
// on a pseudo-terminal, and checks what they see: one line redrawn in
// place for each phase (packages downloaded with their bytes, unpacked,
// the one being configured, the layer's size), never wider than the
// terminal, that gives way to the summary and the digest; the same
// build without a terminal prints the plain lines, no carriage return or
// escape sequence; --quiet on a terminal prints the digest alone. Two
// packages of a repository made for the test, new each run, are the
// downloads; the rest comes from the cache the other tests share.
func TestProgressOnTerminal(t *testing.T) {
	testenv.RequireRoot(t)
	server := testenv.SnapshotServer(t)
	seed := uint64(time.Now().UnixNano())
	random := func(n int) string {
		r := rand.New(rand.NewPCG(seed, uint64(n)))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return string(b)
	}
	repo := apttest.New(t, apttest.Suite{Archive: "extra", Name: "bookworm", Origin: "Extra", Debs: []apttest.Deb{
		{Name: "progress-one", Version: "1.0", Arch: "all", Compression: "gz",
			Files: []apttest.File{{Path: "usr/share/progress/one", Body: random(300_000)}}},
		{Name: "progress-two", Version: "1.0", Arch: "all", Compression: "gz",
			Files: []apttest.File{{Path: "usr/share/progress/two", Body: random(400_000)}}},
	}})
	work := t.TempDir()
	args := func(out string, more ...string) []string {
		return append([]string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot, "--snapshot-server", server,
			"--cache-dir", sharedCache, "--repo", "deb [signed-by=" + repo.KeyringPath + "] " + repo.URL("extra") + " bookworm main",
			"--include", "progress-one,progress-two", "--output", "oci:" + filepath.Join(work, out)}, more...)
	}

	// 30 columns: "configuring debian-archive-keyring (7/88)" does not
	// fit.
	const cols = 30
	raw, err := runTerminal(t, cols, args("tty")...)
	if err != nil {
		t.Fatalf("on a terminal: %v\n%q", err, raw)
	}
	// The terminal turns each newline into a carriage return and one.
	out := strings.ReplaceAll(raw, "\r\n", "\n")
	for _, re := range []string{
		`\rresolving the packages[^\r\x1b]*\x1b\[K`,
		`\rdownloaded \d+/\d+ packages, [^\r\x1b]*\x1b\[K`,
		`\runpacked \d+/\d+ packages\x1b\[K`,
		`\rconfiguring [a-z0-9.+-]+ \(\d+/\d+\)\x1b\[K`,
		`\rlayer \d+\.\d MB\x1b\[K`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("on a terminal: no %q in\n%q", re, out)
		}
	}
	cut := false
	for _, m := range regexp.MustCompile("\r([^\r\n\x1b]*)\x1b\\[K").FindAllStringSubmatch(out, -1) {
		if len(m[1]) >= cols {
			t.Errorf("a progress line of %d columns on a terminal of %d: %q", len(m[1]), cols, m[1])
		}
		cut = cut || len(m[1]) == cols-1
	}
	if !cut {
		t.Errorf("no progress line cut to the terminal's %d columns:\n%q", cols, out)
	}
	// What stays on the screen: the notes, the summary, the digest.
	lines := screen(out)
	if lines[len(lines)-1] != "" {
		t.Errorf("the screen's last line is %q, not empty", lines[len(lines)-1])
	}
	lines = lines[:len(lines)-1]
	digest := lines[len(lines)-1]
	summary := regexp.MustCompile(`^built in [\dhms.]+: (\d+) packages, layer \d+\.\d MB$`)
	if len(lines) < 2 || !isDigest(digest) || !summary.MatchString(lines[len(lines)-2]) {
		t.Fatalf("the screen does not end with the summary and the digest:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines[:len(lines)-2] {
		if !regexp.MustCompile(`^(downloading \d+ of \d+ packages|fetched \d+ packages|wrote oci:.*)$`).MatchString(l) {
			t.Errorf("on the screen: %q, not a note", l)
		}
	}

	// Without a terminal: the plain lines, as before.
	stdout, stderr, err := runBinary(t, args("plain")...)
	if err != nil {
		t.Fatalf("without a terminal: %v\n%s", err, stderr)
	}
	if strings.ContainsAny(stdout+stderr, "\r\x1b") {
		t.Errorf("without a terminal, a carriage return or an escape sequence:\n%q\n%q", stderr, stdout)
	}
	want := fmt.Sprintf("fetched %s packages\nwrote oci:%s\n", summary.FindStringSubmatch(lines[len(lines)-2])[1], filepath.Join(work, "plain"))
	if stderr != want || stdout != digest+"\n" {
		t.Errorf("without a terminal:\nstderr %q, want %q\nstdout %q, want the digest %s", stderr, want, stdout, digest)
	}

	// --quiet on a terminal: the digest alone.
	raw, err = runTerminal(t, cols, args("quiet", "--quiet")...)
	if err != nil {
		t.Fatalf("--quiet on a terminal: %v\n%q", err, raw)
	}
	if raw != digest+"\r\n" {
		t.Errorf("--quiet on a terminal printed %q, want the digest %s alone", raw, digest)
	}
}

// isDigest reports whether s is a sha256 digest as basebuild prints it.
func isDigest(s string) bool {
	return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(s)
}

// runTerminal runs the basebuild binary with args on a new pseudo-terminal
// of cols columns, its standard input, output and error and controlling
// terminal, and returns all the terminal received.
func runTerminal(t *testing.T, cols int, args ...string) (string, error) {
	t.Helper()
	ptmx, pts := openPTY(t)
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: uint16(cols)}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		// Until every copy of pts is closed: then a read fails (EIO).
		io.Copy(&out, ptmx)
		close(read)
	}()
	err := cmd.Start()
	pts.Close()
	if err == nil {
		err = cmd.Wait()
	}
	select {
	case <-read:
	case <-time.After(time.Minute):
		t.Fatal("the terminal stayed open a minute after basebuild exited")
	}
	return out.String(), err
}

// openPTY opens a new pseudo-terminal pair, closed when the test ends
// (pts at once by runTerminal).
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ptmx, pts
}
