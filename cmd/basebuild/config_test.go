package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/apttest"
)

func TestConfigFile(t *testing.T) {
	a := tinyArchive(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("site.yaml", `# site settings
suite: trixie
mirror: `+a.URL("debian")+`
security-mirror: `+a.URL("debian-security")+`
keyring: `+a.KeyringPath+`
arch: amd64
cache-dir: `+filepath.Join(dir, "cache")+`
include:
  - unrelated
apt-conf:
  - APT::Install-Recommends "false";
dry-run: true
jobs: 3
`)
	// The command line wins: another suite with the same site settings.
	out, stderr, err := runCLI(t, "--config", cfg, "--suite", "bookworm")
	if err != nil || !strings.Contains(out, "unrelated 1.0 amd64\n") {
		t.Fatalf("--config: %v\n%s%s", err, out, stderr)
	}
	// A repeatable flag on the command line replaces the file's list.
	out, stderr, err = runCLI(t, "--config", cfg, "--suite", "bookworm", "--exclude", "apt", "--include", "base-files")
	if want := "base-files 12.4 amd64\nusr-is-merged 37 all\n"; err != nil || out != want {
		t.Errorf("--config with --include: %v\n%s, want\n%s%s", err, out, want, stderr)
	}

	out, _, err = runCLI(t, "--config", cfg, "--suite", "bookworm", "--print-config")
	want := `apt-conf:
  - APT::Install-Recommends "false";
arch: amd64
cache-dir: ` + filepath.Join(dir, "cache") + `
dry-run: true
include:
  - unrelated
jobs: 3
keyring: ` + a.KeyringPath + `
mirror: ` + a.URL("debian") + `
security-mirror: ` + a.URL("debian-security") + `
suite: bookworm
`
	if err != nil || out != want {
		t.Errorf("--print-config: %v\n%s\nwant\n%s", err, out, want)
	}
	// What --print-config prints is a config file that says the same.
	again, _, err := runCLI(t, "--config", write("printed.yaml", out), "--print-config")
	if err != nil || again != out {
		t.Errorf("--print-config of --print-config's output: %v\n%s", err, again)
	}

	// --suite, --variant and --arch take a list, as on the command line
	// they take one comma-separated: an image each.
	out, stderr, err = runCLI(t, "--config", write("matrix.yaml", "suite: [bookworm]\nvariant:\n  - default\n  - slim\n"),
		"--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"), "--keyring", a.KeyringPath,
		"--arch", "amd64", "--cache-dir", filepath.Join(dir, "cache"), "--include", "unrelated", "--dry-run")
	if err != nil || !strings.Contains(out, "\nbookworm unrelated 1.0 amd64\n") || !strings.Contains(out, "\nbookworm-slim unrelated 1.0 amd64\n") {
		t.Errorf("--config with a list of variants: %v\n%s%s", err, out, stderr)
	}

	for text, msg := range map[string]string{
		"suite: bookworm\nfrobnicate: yes\n":     `site.yaml:2: unknown key "frobnicate"`,
		"suite: bookworm\njobs: many\n":          `site.yaml:2: jobs: "many" is not a int`,
		"suite: bookworm\nmerged-usr: perhaps\n": `site.yaml:2: merged-usr: "perhaps" is not a bool`,
		"suite: bookworm\nkeyring: [a, b]\n":     "site.yaml:2: keyring takes one value, not a list",
		"suite: [bookworm, [trixie]]\n":          "site.yaml:1: suite: want a list of values",
		"suite: bookworm\ninclude:\n  a: b\n":    "site.yaml:2: include: want a value or a list",
		"suite:\n":                               "site.yaml:1: suite: no value",
		"- suite\n":                              "site.yaml:1: want a mapping of flag names to values",
		"config: other.yaml\n":                   `site.yaml:1: unknown key "config"`,
		"suite: bookworm\n\tbad\n":               "site.yaml",
	} {
		_, _, err := runCLI(t, "--config", write("site.yaml", text), "--dry-run")
		oneLineError(t, "config "+text, err, msg)
		if !errors.Is(err, errUsage) {
			t.Errorf("config %q: %v is not a usage error", text, err)
		}
	}
	_, _, err = runCLI(t, "--config", filepath.Join(dir, "missing.yaml"))
	oneLineError(t, "missing config", err, "missing.yaml: no such file")
}

// TestREADMESiteConfig checks that the README's site config file, with
// its files made in a temporary directory, is a config basebuild takes.
func TestREADMESiteConfig(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n# /etc/basebuild/site.yaml\n")
	cfg, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README has no site.yaml example")
	}
	dir := t.TempDir()
	_, key := apttest.NewKey(t)
	data, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"acme-archive-keyring.gpg": string(data),
		"acme.pref":                "Package: *\nPin: origin apt.acme.example\nPin-Priority: 1001\n",
		"ca/acme-root.crt":         "-----BEGIN CERTIFICATE-----\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(cfg, "/etc/basebuild/", dir+"/")), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify takes the same file, where images go and all.
	_, _, err = runCLI(t, "verify", "--config", path, "oci:"+filepath.Join(dir, "missing"))
	if err == nil || strings.Contains(err.Error(), "--config") {
		t.Errorf("verify --config with the README's site.yaml: %v", err)
	}
	out, _, err := runCLI(t, "--config", path, "--suite", "trixie", "--print-config")
	for _, want := range []string{"suite: trixie\n", "variant: slim\n", "  - update-ca-certificates\n",
		"  - registry.acme.example/base/{suite}:{date}\n", "apt-preferences: " + dir + "/acme.pref:acme\n"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("--print-config of the README's site.yaml: %v, no %q in\n%s", err, want, out)
		}
	}
}
