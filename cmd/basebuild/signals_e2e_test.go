package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/faultproxy"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
)

// TestSignals interrupts a build with SIGINT or SIGTERM in each phase: it
// must exit non-zero with a one-line error that names the signal, leave
// no mount and no temporary directory, leave the destination untouched,
// and a rerun must succeed.
func TestSignals(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	bin := testenv.Binary(t)
	phases := []struct {
		name string
		when string // the stderr line that starts the phase
		sig  syscall.Signal
		cold bool // a cold cache, so that debs are downloaded
		// Where the image goes: --rootfs is complete, and renamed into
		// place, before the layer is made; outputs are written before
		// pushes.
		rootfs, output, push bool
	}{
		{name: "download", when: "downloading ", sig: syscall.SIGINT, cold: true, rootfs: true, output: true},
		{name: "unpack", when: "fetched ", sig: syscall.SIGTERM, rootfs: true, output: true},
		{name: "configure", when: "Setting up ", sig: syscall.SIGINT, rootfs: true, output: true},
		{name: "layer", when: "finish: ", sig: syscall.SIGTERM, output: true},
		{name: "push", when: "layer: ", sig: syscall.SIGINT, push: true},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			work, tmp := t.TempDir(), t.TempDir()
			cache := sharedCache
			if ph.cold {
				cache = filepath.Join(work, "cache")
			}
			// -v: the phases' lines say when to send the signal.
			args := []string{"-v", "--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
				"--snapshot-server", server, "--cache-dir", cache}
			if ph.rootfs {
				args = append(args, "--rootfs", filepath.Join(work, "rootfs"))
			}
			if ph.output {
				args = append(args, "--output", "oci:"+filepath.Join(work, "layout"))
			}
			var ref string
			if ph.push {
				registry := testenv.Registry(t)
				// Slow answers keep the push going until the signal lands.
				p := faultProxy(t, registry, func(*http.Request, int, int) faultproxy.Fault { return faultproxy.Slow })
				ref = fmt.Sprintf("%s/signals-%d/debian:bookworm", p.Host, time.Now().UnixNano())
				args = append(args, "--push", ref)
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			sent := false
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				line := sc.Text()
				log.WriteString(line + "\n")
				if !sent && strings.Contains(line, ph.when) {
					cmd.Process.Signal(ph.sig)
					sent = true
				}
			}
			io.Copy(io.Discard, stderr)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatalf("still running a minute after %v:\n%s", ph.sig, lastLines(log.String(), 20))
			}
			if !sent {
				t.Fatalf("no line %q on stderr:\n%s", ph.when, lastLines(log.String(), 20))
			}
			if err == nil {
				t.Fatalf("exit 0 after %v in %s", ph.sig, ph.name)
			}
			last := lastLine(log.String())
			if !strings.HasPrefix(last, "basebuild: ") {
				t.Errorf("last line of stderr %q is not basebuild's one-line error:\n%s", last, lastLines(log.String(), 10))
			}
			// Every phase names the signal, as signal.NotifyContext's
			// cause words it, not "context canceled".
			if want := ph.sig.String() + " signal received"; !strings.Contains(last, want) || strings.Contains(last, "context canceled") {
				t.Errorf("error %q after %v in %s: want it to name %q", last, ph.sig, ph.name, want)
			}
			mounts, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			for _, dir := range []string{work, tmp} {
				if strings.Contains(string(mounts), " "+dir) {
					t.Errorf("mounts left under %s", dir)
				}
			}
			checkNoLeftovers(t, tmp)
			if ph.cold {
				checkNoLeftovers(t, work, "cache")
				checkCache(t, cache)
			} else {
				checkNoLeftovers(t, work)
			}
			if ph.push {
				if _, err := oci.Open(t.Context(), ref, true); err == nil {
					t.Errorf("%s was pushed despite %v", ref, ph.sig)
				}
			}
			t.Logf("%v in %s: %s", ph.sig, ph.name, last)
		})
	}

	// The next run succeeds.
	work := t.TempDir()
	cmd := exec.Command(bin, "--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
		"--snapshot-server", server, "--cache-dir", sharedCache, "--output", "oci:"+filepath.Join(work, "layout"))
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("rerun: %v\n%s", err, lastLines(string(out), 20))
	}
}
