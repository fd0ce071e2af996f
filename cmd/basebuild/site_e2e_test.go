package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/testenv"
)

// TestSiteBookworm builds bookworm with an organisation's signed
// repository pinned above Debian, as the site base images of issue 11 do,
// and checks the resolution against real apt and the image's apt against
// both repositories.
func TestSiteBookworm(t *testing.T) {
	testenv.RequireRoot(t)
	server := testenv.SnapshotServer(t)
	ref := testenv.Reference(t, "bookworm")
	ts := time.Now().UTC().Format("20060102T150405Z")
	dir := t.TempDir()

	// Acme's repository: an older hello than bookworm's (2.10-3) and a
	// package of its own that needs it and recommends Debian's netbase,
	// which apt-get install brings.
	acme := apttest.NewAt(t, "127.0.0.2:0", apttest.Suite{Archive: "acme", Name: "bookworm", Origin: "Acme", Label: "Acme",
		Debs: []apttest.Deb{
			{Name: "hello", Version: "2.10-2+acme1", Fields: map[string]string{"Depends": "libc6", "Priority": "optional"},
				Files: []apttest.File{{Path: "usr/bin/hello", Mode: 0o755, Body: "#!/bin/sh\necho 'Hello from Acme'\n"}}},
			{Name: "acme-tools", Version: "1.0", Arch: "all", Fields: map[string]string{"Depends": "hello (>= 2.10-2~)", "Recommends": "acme-nosuch | netbase"},
				Files: []apttest.File{{Path: "usr/share/acme-tools/README", Body: "Acme's tools\n"}}},
		}})
	key, err := os.ReadFile(acme.KeyringPath)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "acme-archive-keyring.gpg")
	prefsPath := filepath.Join(dir, "acme.pref")
	const prefs = "Package: *\nPin: origin 127.0.0.2\nPin-Priority: 1001\n"
	for name, data := range map[string][]byte{keyPath: key, prefsPath: []byte(prefs)} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := "deb [signed-by=" + keyPath + "] " + acme.URL("acme") + " bookworm main"
	common := []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", ts, "--snapshot-server", server,
		"--cache-dir", sharedCache, "--repo", repo, "--include", "hello,acme-tools"}

	t.Run("resolution", func(t *testing.T) {
		// Without the preferences, Debian's newer hello.
		out, stderr, err := runCLI(t, append(common, "--dry-run")...)
		if err != nil || !strings.Contains(out, "\nhello 2.10-3 amd64\n") || !strings.Contains(out, "acme-tools 1.0 all\n") {
			t.Errorf("without preferences: %v\n%s%s", err, out, stderr)
		}

		// Another repository, on 127.0.0.3, whose packages only the
		// resolution sees: an older sed pinned to downgrade, a newer tar
		// pinned to upgrade, a newer gzip held below Debian.
		other := apttest.NewAt(t, "127.0.0.3:0", apttest.Suite{Archive: "other", Name: "bookworm", Origin: "Other",
			Debs: []apttest.Deb{{Name: "sed", Version: "4.8-1+other1"}, {Name: "tar", Version: "1.35+other1"}, {Name: "gzip", Version: "1.13-1+other1"}}})
		const otherPrefs = "Package: sed\nPin: origin 127.0.0.3\nPin-Priority: 1001\n\n" +
			"Package: tar\nPin: release o=Other\nPin-Priority: 990\n\n" +
			"Package: *\nPin: release o=Other\nPin-Priority: 100\n\n" + prefs
		p := filepath.Join(t.TempDir(), "prefs")
		if err := os.WriteFile(p, []byte(otherPrefs), 0o644); err != nil {
			t.Fatal(err)
		}
		otherRepo := "deb [signed-by=" + other.KeyringPath + "] " + other.URL("other") + " bookworm main"
		args := append(common, "--repo", otherRepo, "--apt-preferences", p, "--dry-run")
		got, stderr, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		// apt-get dist-upgrade in debuerreotype's rootfs, given the same
		// sources and preferences, and asked to install the same packages.
		snap := server + "/archive/debian/" + ts
		keyring := "/usr/share/keyrings/debian-archive-keyring.gpg"
		sources := fmt.Sprintf("deb [signed-by=%[1]s] %[2]s bookworm main\ndeb [signed-by=%[1]s] %[2]s bookworm-updates main\n"+
			"deb [signed-by=%[1]s] %[3]s bookworm-security main\n%[4]s\n%[5]s\n",
			keyring, snap, server+"/archive/debian-security/"+ts, repo, otherRepo)
		status, err := os.ReadFile(filepath.Join(ref, "rootfs/var/lib/dpkg/status"))
		if err != nil {
			t.Fatal(err)
		}
		sim := apttest.NewApt(t, sources, otherPrefs, string(status)).Run("apt-get", "-s", "dist-upgrade", "hello", "acme-tools")
		want := applySimulation(t, filepath.Join(ref, "dpkg-query.txt"), sim)
		if got != want {
			t.Errorf("basebuild --dry-run differs from apt-get dist-upgrade:\n%s", lineDiff(want, got))
		}
		for _, w := range []string{"sed 4.8-1+other1 amd64", "tar 1.35+other1 amd64", "gzip 1.12-1 amd64", "hello 2.10-2+acme1 amd64"} {
			if !strings.Contains(got, w+"\n") {
				t.Errorf("--dry-run has no %q:\n%s", w, got)
			}
		}
		if !strings.Contains(got, "\nnetbase ") {
			t.Errorf("--dry-run has no netbase, which acme-tools recommends:\n%s", got)
		}
		// Told not to, apt-get install brings no Recommends.
		got, stderr, err = runCLI(t, append(args, "--apt-conf", `APT::Install-Recommends "false";`)...)
		if err != nil || strings.Contains(got, "\nnetbase ") || !strings.Contains(got, "acme-tools 1.0 all\n") {
			t.Errorf("with APT::Install-Recommends false: %v\n%s%s", err, got, stderr)
		}
	})

	t.Run("rootfs", func(t *testing.T) {
		work := t.TempDir()
		root, sbom, report := filepath.Join(work, "rootfs"), filepath.Join(work, "sbom.json"), filepath.Join(work, "report.json")
		out, stderr, err := runBinary(t, append(common, "--apt-preferences", prefsPath+":acme", "--rootfs", root,
			"--output", "oci:"+filepath.Join(work, "layout"), "--sbom", sbom, "--report", report)...)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, stderr)
		}
		// Without -v the maintainer scripts keep quiet; the report has
		// every phase.
		if strings.Contains(stderr, "Setting up") {
			t.Errorf("maintainer scripts' output on stderr without -v:\n%s", stderr)
		}
		var r struct {
			Digest string
			Phases []struct{ Name string }
		}
		if data, err := os.ReadFile(report); err != nil || json.Unmarshal(data, &r) != nil {
			t.Fatalf("report: %v", err)
		}
		// The download overlaps merged-usr and unpack: it ends before
		// configure, wherever among them.
		var phases []string
		fetched := -1
		for i, p := range r.Phases {
			if p.Name == "fetch" && fetched < 0 {
				fetched = i
				continue
			}
			phases = append(phases, p.Name)
		}
		want := "resolve merged-usr unpack configure minimizing-config apt config finish layer write oci:" + filepath.Join(work, "layout")
		if got := strings.Join(phases, " "); got != want || fetched < 1 || fetched > slices.Index(phases, "configure") || !strings.Contains(out, r.Digest) || r.Digest == "" {
			t.Errorf("report phases %q (fetch at %d), digest %s; want %q, fetch before configure, and the digest printed", got, fetched, r.Digest, want)
		}
		// The audit trail says whose hello it is.
		if data, err := os.ReadFile(sbom); err != nil || !strings.Contains(string(data), "pkg:deb/acme/hello@2.10-2%2Bacme1?arch=amd64") ||
			!strings.Contains(string(data), "Organization: Acme") {
			t.Errorf("the SBOM has no Acme hello: %v", err)
		}
		const name = "acme-archive-keyring"
		for p, want := range map[string]string{
			"etc/apt/sources.list.d/" + name + ".sources": "Types: deb\nURIs: " + acme.URL("acme") + "\nSuites: bookworm\nComponents: main\n" +
				"Signed-By: /etc/apt/keyrings/" + name + ".gpg\n",
			"etc/apt/keyrings/" + name + ".gpg": string(key),
			"etc/apt/preferences.d/acme":        prefs,
		} {
			got, err := os.ReadFile(filepath.Join(root, p))
			if err != nil || string(got) != want {
				t.Errorf("%s: %q, %v; want %q", p, got, err, want)
				continue
			}
			fi, _ := os.Stat(filepath.Join(root, p))
			if st := fi.Sys().(*syscall.Stat_t); fi.Mode() != 0o644 || st.Uid != 0 || st.Gid != 0 {
				t.Errorf("%s: mode %v owner %d:%d, want 0644 root", p, fi.Mode(), st.Uid, st.Gid)
			}
		}

		run := chrootRunner(t, root)
		if got := run("dpkg-query", "-W", "-f", "${Package} ${Version}\n", "hello", "acme-tools"); got != "acme-tools 1.0\nhello 2.10-2+acme1\n" {
			t.Errorf("installed hello, acme-tools: %q", got)
		}
		if got := run("hello"); got != "Hello from Acme\n" {
			t.Errorf("hello printed %q", got)
		}
		// apt in the image trusts both repositories: Debian's sources
		// pointed at the local snapshot server, Acme's as written.
		debian := fmt.Sprintf("Types: deb\nURIs: %s/archive/debian/%s\nSuites: bookworm bookworm-updates\nComponents: main\n"+
			"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n", server, ts)
		if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/debian.sources"), []byte(debian), 0o644); err != nil {
			t.Fatal(err)
		}
		if out := run("apt-get", "update"); strings.Contains(out, "W:") || strings.Contains(out, "E:") ||
			!strings.Contains(out, acme.URL("acme")+" bookworm InRelease") {
			t.Errorf("apt-get update in the image:\n%s", out)
		}
		policy := run("apt-cache", "policy", "hello")
		for _, w := range []string{"Candidate: 2.10-2+acme1", "1001 " + acme.URL("acme") + " bookworm/main amd64 Packages"} {
			if !strings.Contains(policy, w) {
				t.Errorf("apt-cache policy hello has no %q:\n%s", w, policy)
			}
		}
	})
}

// applySimulation applies the Inst and Remv lines of apt-get -s output to
// the packages of a dpkg-query.txt ("name version arch" lines) and returns
// the result in the same form, sorted.
func applySimulation(t *testing.T, dpkgQuery string, sim []byte) string {
	t.Helper()
	data, err := os.ReadFile(dpkgQuery)
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]string{}
	for l := range strings.Lines(string(data)) {
		if name, rest, ok := strings.Cut(strings.TrimSpace(l), " "); ok {
			pkgs[name] = rest
		}
	}
	inst := regexp.MustCompile(`^Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)`)
	sc := bufio.NewScanner(strings.NewReader(string(sim)))
	for sc.Scan() {
		line := sc.Text()
		if m := inst.FindStringSubmatch(line); m != nil {
			pkgs[strings.TrimSuffix(m[1], ":amd64")] = m[2] + " " + m[3]
		} else if f := strings.Fields(line); len(f) > 1 && f[0] == "Remv" {
			delete(pkgs, strings.TrimSuffix(f[1], ":amd64"))
		}
	}
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(pkgs)) {
		fmt.Fprintf(&b, "%s %s\n", name, pkgs[name])
	}
	return b.String()
}

// TestSiteConfigNightly runs the README's nightly job through the binary: one config file
// with an extra repository, its pin, apt settings and two placeholder
// tags, pushed with --if-changed; the second run finds both tags up to
// date and builds nothing.
func TestSiteConfigNightly(t *testing.T) {
	testenv.RequireRoot(t)
	server := testenv.SnapshotServer(t)
	registry := testenv.Registry(t)
	dir := t.TempDir()
	acme := apttest.NewAt(t, "127.0.0.2:0", apttest.Suite{Archive: "acme", Name: "bookworm", Origin: "Acme",
		Debs: []apttest.Deb{{Name: "acme-motd", Version: "1.0", Arch: "all",
			Files: []apttest.File{{Path: "etc/acme-motd", Body: "Acme base image\n"}}}}})
	key := filepath.Join(dir, "acme-archive-keyring.gpg")
	data, err := os.ReadFile(acme.KeyringPath)
	if err != nil {
		t.Fatal(err)
	}
	repo := fmt.Sprintf("nightly%d", time.Now().UnixNano())
	files := map[string]string{
		key:                             string(data),
		filepath.Join(dir, "acme.pref"): "Package: *\nPin: origin 127.0.0.2\nPin-Priority: 1001\n",
		filepath.Join(dir, "site.yaml"): `suite: bookworm
arch: amd64
snapshot: ` + mirrorSnapshot + `
snapshot-server: ` + server + `
cache-dir: ` + sharedCache + `
variant: slim
repo:
  - deb [signed-by=` + key + `] ` + acme.URL("acme") + ` bookworm main
apt-preferences: ` + filepath.Join(dir, "acme.pref") + `:acme
include: [acme-motd]
apt-conf:
  - APT::Install-Recommends "false";
push:
  - ` + registry + `/` + repo + `/{suite}:{date}
  - ` + registry + `/` + repo + `/{suite}:latest
`,
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "site.yaml")
	out, stderr, err := runBinary(t, "--config", cfg, "--if-changed")
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, stderr)
	}
	digest := lastLine(out)
	for _, tag := range []string{mirrorDate, "latest"} {
		if got := skopeoDigest(t, "docker://"+registry+"/"+repo+"/bookworm:"+tag, "--tls-verify=false"); got != digest {
			t.Errorf("tag %s: %s, want %s", tag, got, digest)
		}
	}
	out, stderr, err = runBinary(t, "--config", cfg, "--if-changed")
	if err != nil || lastLine(out) != digest || !strings.Contains(stderr, "up to date") {
		t.Errorf("second run: %v, digest %s (want %s)\n%s", err, lastLine(out), digest, stderr)
	}
	// The image is Acme's slim bookworm.
	pkgs, _, err := runBinary(t, "packages", "--json", registry+"/"+repo+"/bookworm:latest")
	if err != nil || !strings.Contains(pkgs, `"acme-motd"`) {
		t.Errorf("packages of the pushed image: %v\n%s", err, pkgs)
	}
}
