package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/sentinel"
	"github.com/basebuild/basebuild/internal/testenv"
)

// TestBadCommandLineBeforeFetch runs the binary as users do with command
// lines that are wrong in ways only the combination of flags shows: each
// is refused with exit 2 and one line, at once, before a single
// connection to the archive (a listener counting them stands in for the
// mirror), and nothing is written.
func TestBadCommandLineBeforeFetch(t *testing.T) {
	bin := testenv.Binary(t)
	mirror := sentinel.Listen(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--if-changed", "--output", "docker-archive:OUT/x.tar"}, "--if-changed cannot read what docker-archive:OUT/x.tar was built from"},
		{[]string{"--if-changed", "--output", "rootfs-tar:OUT/{suite}.tar"}, "--if-changed cannot read what rootfs-tar:OUT/{suite}.tar was built from"},
		{[]string{"--if-changed", "--rootfs", "OUT/tree"}, "--if-changed skips a build"},
		{[]string{"--output", "oci:OUT/{nope}"}, `--output "oci:OUT/{nope}": unknown placeholder {nope}`},
		{[]string{"--output", "tar:OUT/{date}"}, `--output: output "tar:OUT/00010101": unknown type "tar"`},
		{[]string{"--output", "oci:OUT/{snapshot}"}, "{snapshot} needs --snapshot"},
		{[]string{"--push", "127.0.0.1:5000/Debian:{suite}"}, `--push "127.0.0.1:5000/Debian:{suite}"`},
		{[]string{"--arch", "amd64,arm64", "--output", "docker-archive:OUT/{date}.tar"}, "holds one image: several --arch make an index"},
		{[]string{"--sbom", "OUT/sbom.json", "--rootfs", "OUT/tree"}, "--sbom describes an image"},
		{[]string{"--offline", "--push", "127.0.0.1:5000/debian:bookworm"}, "--offline and --push contradict each other"},
		{[]string{"--sbom", "OUT/sbom.xml", "--sbom-format", "xml"}, `--sbom-format "xml": want spdx or cyclonedx`},
		{[]string{"--quiet", "--verbose"}, "--quiet and --verbose contradict each other"},
		{[]string{"--variant", "distroless-static", "--customize", "true"}, "--customize with --variant distroless-static: a distroless image has no shell"},
		{[]string{"--variant", "distroless-base", "--apt-conf", `APT::Install-Recommends "false";`}, "a distroless image has no apt"},
		{[]string{"--nonroot"}, "--nonroot: only with a distroless --variant"},
		{[]string{"--variant", "distroless-cc", "--suite", "bullseye"}, `no distroless package set for suite "bullseye"`},
		{[]string{"--variant", "distroless"}, `--variant "distroless": want default, slim, distroless-static`},
	} {
		out := t.TempDir()
		args := []string{"--suite", "bookworm", "--mirror", "http://127.0.0.1:" + mirror.Port + "/debian",
			"--security-mirror", "http://127.0.0.1:" + mirror.Port + "/debian-security", "--cache-dir", filepath.Join(out, "cache")}
		for _, a := range tc.args {
			args = append(args, strings.ReplaceAll(a, "OUT", out))
		}
		want := strings.ReplaceAll(tc.want, "OUT", out)
		cmd := exec.Command(bin, args...)
		cmd.Dir = out
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		msg := strings.TrimSpace(stderr.String())
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
			t.Errorf("%q: %v, stderr %q; want exit 2 and one line containing %q", tc.args, err, msg, want)
		}
		if took > 5*time.Second {
			t.Errorf("%q: took %v to refuse the command line", tc.args, took)
		}
		if stdout.Len() > 0 {
			t.Errorf("%q: stdout %q", tc.args, stdout.String())
		}
		if entries, _ := os.ReadDir(out); len(entries) > 0 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%q: wrote %v", tc.args, names)
		}
	}
	if n := mirror.Accepted(); n != 0 {
		t.Errorf("the mirror got %d connections: a bad command line was fetched for", n)
	}
}
