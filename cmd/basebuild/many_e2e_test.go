package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/pipeline"
)

// TestManyImages builds bookworm and trixie, default and slim, in one run
// through the binary: one line per image on stdout (where it went, its
// digest), each image in its own layout and repository with its own
// audit artifacts, the slim images made from copies of the default
// images' configured trees and yet byte-identical to slim images built
// alone; each --sbom file its own; then --if-changed finds all four up to
// date and builds nothing.
func TestManyImages(t *testing.T) {
	server := testenv.SnapshotServer(t)
	registry := testenv.Registry(t)
	testenv.RequireRoot(t)
	work := t.TempDir()
	common := []string{"--snapshot", mirrorSnapshot, "--snapshot-server", server, "--arch", "amd64", "--cache-dir", sharedCache}
	repo := registry + "/many-" + strings.ToLower(rand.Text()[:8])
	report := filepath.Join(work, "report.json")
	if err := os.Mkdir(filepath.Join(work, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--suite", "bookworm,trixie", "--variant", "default,slim",
		"--output", "oci:" + filepath.Join(work, "out", "{tag}"), "--push", repo + ":{suite}-{variant}"}, common...)
	out, stderr, err := runBinary(t, append(args, "--report", report, "--sbom", filepath.Join(work, "{tag}.spdx.json"))...)
	if err != nil {
		t.Fatalf("basebuild %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	tags := []string{"bookworm", "bookworm-slim", "trixie", "trixie-slim"}
	pushed := []string{"bookworm-default", "bookworm-slim", "trixie-default", "trixie-slim"}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(tags) {
		t.Fatalf("stdout has %d lines, want one per image:\n%s", len(lines), out)
	}
	digests := map[string]string{}
	for i, tag := range tags {
		ref, digest, _ := strings.Cut(lines[i], " ")
		if ref != repo+":"+pushed[i] || !strings.HasPrefix(digest, "sha256:") {
			t.Errorf("line %d: %q, want %s:%s and its digest", i+1, lines[i], repo, pushed[i])
		}
		digests[tag] = digest
		if sbom, err := os.ReadFile(filepath.Join(work, tag+".spdx.json")); err != nil || !strings.Contains(string(sbom), `"debian:`+tag+`"`) {
			t.Errorf("%s: no SBOM of its own (%v)", tag, err)
		}
		// Written to its layout, tagged as a build of it alone tags it,
		// and pushed, each with its audit artifacts.
		for _, src := range []string{"oci:" + filepath.Join(work, "out", tag) + ":" + tag, ref} {
			s, err := oci.Open(t.Context(), src, false)
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			if d, _ := s.Image.Digest(); d.String() != digest {
				t.Errorf("%s: %s, want %s", src, d, digest)
			}
			arts, err := s.Artifacts()
			if err != nil || len(arts) < 3 {
				t.Errorf("%s: %d artifacts (%v), want the manifest and SBOMs", src, len(arts), err)
			}
		}
	}
	if strings.Count(stderr, "building ") != 2 || !strings.Contains(stderr, "building bookworm, bookworm-slim (amd64)") {
		t.Errorf("stderr does not say two trees were built, each for two images:\n%s", stderr)
	}
	var r pipeline.Report
	data, err := os.ReadFile(report)
	if err == nil {
		err = json.Unmarshal(data, &r)
	}
	if err != nil {
		t.Fatal(err)
	}
	var configured []string
	for _, p := range r.Phases {
		if p.Name == "configure" {
			configured = append(configured, p.Image)
		}
	}
	if len(r.Images) != 4 || !slices.Equal(configured, []string{"bookworm", "trixie"}) && !slices.Equal(configured, []string{"trixie", "bookworm"}) {
		t.Errorf("report: images %v, configured %v: want 4 images, 2 trees configured", r.Images, configured)
	}

	// Byte-identical to the slim images built alone.
	for _, suite := range []string{"bookworm", "trixie"} {
		alone := filepath.Join(work, suite+"-alone")
		out, stderr, err := runBinary(t, append([]string{"--suite", suite, "--variant", "slim", "--output", "oci:" + alone, "-q"}, common...)...)
		if err != nil {
			t.Fatalf("%s slim alone: %v\n%s", suite, err, stderr)
		}
		if got, want := strings.TrimSpace(out), digests[suite+"-slim"]; got != want {
			t.Errorf("%s slim built alone: %s, in a run of four: %s", suite, got, want)
		}
	}

	// Nothing changed: each image's line again, nothing built, and with
	// --quiet nothing else said.
	again, stderr, err := runBinary(t, append(args, "--if-changed")...)
	if err != nil {
		t.Fatalf("--if-changed: %v\n%s", err, stderr)
	}
	if again != out || strings.Contains(stderr, "building ") {
		t.Errorf("--if-changed printed\n%s(stderr %s), want the same lines and no build:\n%s", again, stderr, out)
	}
	again, stderr, err = runBinary(t, append(args, "--if-changed", "--quiet")...)
	if err != nil || again != out || stderr != "" {
		t.Errorf("--if-changed --quiet: %v, printed\n%s(stderr %q), want the same lines and nothing on stderr", err, again, stderr)
	}
}
