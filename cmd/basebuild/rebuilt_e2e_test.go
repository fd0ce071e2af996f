package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
)

// acmeSuite is an organisation's repository with acme-tool at version v,
// whose deb carries its changelog: the entries of versions, each naming
// cves[i].
func acmeSuite(v string, versions, cves []string) apttest.Suite {
	var b strings.Builder
	for i, ver := range versions {
		b.WriteString("acme-tool (" + ver + ") bookworm; urgency=high\n\n  * Fix a path traversal (" + cves[i] + ").\n\n" +
			" -- Acme Security <security@acme.example>  Mon, 01 Jan 2024 00:00:00 +0000\n\n")
	}
	return apttest.Suite{Archive: "acme", Name: "bookworm", Origin: "Acme", Debs: []apttest.Deb{
		{Name: "acme-tool", Version: v, Arch: "all", Fields: map[string]string{"Priority": "optional"},
			Files: []apttest.File{{Path: "usr/share/doc/acme-tool/changelog.Debian.gz", Body: apttest.Gzip(b.String())}}},
	}}
}

// TestWhyRebuilt builds bookworm with an organisation's acme-tool 1.0,
// publishes 1.1, whose changelog names a CVE, and rebuilds with
// --if-changed: stderr, --report and an artifact attached to the new image
// say which source package moved, 1.0 -> 1.1, and the CVE, not the older
// one.
func TestWhyRebuilt(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	work := t.TempDir()
	acme := apttest.New(t, acmeSuite("1.0", []string{"1.0"}, []string{"CVE-2023-0001"}))
	repo := "deb [signed-by=" + acme.KeyringPath + "] " + acme.URL("acme") + " bookworm main"
	layout := filepath.Join(work, "layout")
	common := []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot, "--snapshot-server", server,
		"--cache-dir", sharedCache, "--repo", repo, "--include", "acme-tool", "--output", "oci:" + layout}
	if _, stderr, err := runBinary(t, common...); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}

	acme.Update(acmeSuite("1.1", []string{"1.1", "1.0"}, []string{"CVE-2024-12345", "CVE-2023-0001"}))
	// The Release must be newer than the one the first build read.
	time.Sleep(time.Second)
	report := filepath.Join(work, "report.json")
	out, stderr, err := runBinary(t, append(common, "--if-changed", "--report", report)...)
	if err != nil {
		t.Fatalf("--if-changed after the update: %v\n%s", err, stderr)
	}
	for _, want := range []string{"why rebuilt: 1 source packages moved, 1 CVEs named\n", "  acme-tool 1.0 -> 1.1: CVE-2024-12345\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("--if-changed's stderr lacks %q:\n%s", want, stderr)
		}
	}
	var r struct {
		Rebuilt struct {
			Sources []struct {
				Source, From, To string
				CVEs             []string `json:"cves"`
			}
		}
	}
	data, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(data, &r) != nil || len(r.Rebuilt.Sources) != 1 ||
		strings.Join(r.Rebuilt.Sources[0].CVEs, " ") != "CVE-2024-12345" || r.Rebuilt.Sources[0].To != "1.1" {
		t.Errorf("--report's rebuilt record: %v\n%s", err, data)
	}
	src, err := oci.Open(t.Context(), "oci:"+layout+":bookworm", false)
	if err != nil {
		t.Fatal(err)
	}
	if src.Digest.String() != lastLine(out) {
		t.Errorf("the layout holds %s, the rebuild printed %s", src.Digest, lastLine(out))
	}
	art, err := src.Artifact(audit.RebuildType)
	if err != nil || !strings.Contains(string(art), `"CVE-2024-12345"`) || strings.Contains(string(art), "CVE-2023-0001") {
		t.Errorf("the attached why-rebuilt record: %v\n%s", err, art)
	}
}
