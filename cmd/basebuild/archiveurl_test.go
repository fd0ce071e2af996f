package main

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/basebuild/basebuild/internal/testenv"
)

// TestArchiveURLCredentials runs the binary with credentials in each
// archive URL it takes, and in the host's apt sources (through a mount
// namespace of the test's own): exit 2 before anything is fetched, one
// line naming the flag or file, and the password nowhere: not on stdout
// or stderr, not in the cache, report, SBOM or output.
func TestArchiveURLCredentials(t *testing.T) {
	const secret = "s3cret-archive-password"
	var requests atomic.Int32
	archive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	defer archive.Close()
	host := strings.TrimPrefix(archive.URL, "http://")
	withCreds := "http://ci:" + secret + "@" + host

	config := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(config, []byte("mirror: "+withCreds+"/debian\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	etcApt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(etcApt, "sources.list.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	const hostSources = "/etc/apt/sources.list.d/debian.sources"
	if err := os.WriteFile(filepath.Join(etcApt, "sources.list.d/debian.sources"),
		[]byte("Types: deb\nURIs: "+withCreds+"/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	bin := testenv.Binary(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mirror", withCreds + "/debian"}, "--mirror: URI " + archive.URL + "/debian: credentials in an archive URL are refused"},
		{[]string{"--mirror", archive.URL + "/debian", "--security-mirror", withCreds + "/debian-security"}, "--security-mirror: URI " + archive.URL + "/debian-security: credentials"},
		{[]string{"--snapshot", "20240101", "--snapshot-server", withCreds}, "--snapshot-server: URI " + archive.URL + ": credentials"},
		// Unused, but on the command line all the same.
		{[]string{"--mirror", archive.URL + "/debian", "--snapshot-server", withCreds}, "--snapshot-server: URI " + archive.URL + ": credentials"},
		{[]string{"--snapshot", "20240101", "--snapshot-server", archive.URL, "--mirror", "https://" + secret + "@" + host + "/debian"}, "--mirror: URI https://" + host + "/debian: credentials"},
		{[]string{"--mirror", "http://ci:" + secret + "%zz@" + host + "/debian"}, `--mirror: URI "` + archive.URL + `/debian": want an http:// or https:// URL`},
		// Without a scheme, url.Parse takes the user for one.
		{[]string{"--mirror", "ci:" + secret + "@" + host + "/debian"}, `--mirror: URI "` + host + `/debian": want an http:// or https:// URL`},
		{[]string{"--mirror", archive.URL + "/debian", "--repo", "deb [signed-by=/nonexistent.gpg] ci:" + secret + "@" + host + "/acme bookworm main"}, `--repo "deb [signed-by=/nonexistent.gpg] ` + host + `/acme bookworm main": URI "` + host + `/acme": want an http:// or https:// URL`},
		{[]string{"--mirror", archive.URL + "/debian", "--repo", "deb [signed-by=/nonexistent.gpg] " + withCreds + "/acme bookworm main"}, `--repo "deb [signed-by=/nonexistent.gpg] ` + archive.URL + `/acme bookworm main": URI ` + archive.URL + "/acme: credentials"},
		{[]string{"--config", config}, "--mirror: URI " + archive.URL + "/debian: credentials"},
		{[]string{"HOST"}, "host apt sources: " + hostSources + ": URI " + archive.URL + "/debian: credentials in an archive URL are refused: it is written into the image, its SBOM, the cache and the report; give the archive with --mirror or --security-mirror"},
	} {
		dir := t.TempDir()
		args := []string{"--suite", "bookworm", "--arch", "amd64", "--cache-dir", filepath.Join(dir, "cache"),
			"--report", filepath.Join(dir, "report.json"), "--sbom", filepath.Join(dir, "sbom.json"), "--output", "oci:" + filepath.Join(dir, "out")}
		var cmd *exec.Cmd
		if tc.args[0] == "HOST" {
			// The host's /etc/apt, in this mount namespace only.
			cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c",
				`mount --bind "$0" /etc/apt && exec "$@"`, etcApt, bin}, args...)...)
		} else {
			cmd = exec.Command(bin, append(args, tc.args...)...)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		msg := strings.TrimSpace(stderr.String())
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%q: %v, stderr %q; want exit 2 and one line containing %q", tc.args, err, msg, tc.want)
		}
		if strings.Contains(stdout.String()+msg, secret) {
			t.Errorf("%q: the password is in the output: %s%s", tc.args, stdout.String(), msg)
		}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
					t.Errorf("%q: %s holds the password", tc.args, p)
				}
			}
			return nil
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the archive", n)
	}
}
