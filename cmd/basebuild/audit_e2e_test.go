package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
)

// TestAuditBookworm builds bookworm once with --push, --output oci: and
// --sbom, and reads the attached package manifest back from the layout
// and the registry, and diffs the image with an edited package list.
func TestAuditBookworm(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	registry := testenv.Registry(t)
	work := t.TempDir()
	layout, sbomFile := filepath.Join(work, "layout"), filepath.Join(work, "sbom.json")
	ref := registry + "/audit/debian:bookworm"
	out, stderr, err := runBinary(t, "--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
		"--snapshot-server", server, "--cache-dir", sharedCache,
		"--output", "oci:"+layout, "--push", ref, "--sbom", sbomFile)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	digest := lines[len(lines)-1]

	// The SBOM names the image and meets the SPDX 2.3 constraints.
	raw, err := os.ReadFile(sbomFile)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	schema, err := c.Compile("../../audit/testdata/spdx-2.3-subset.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var inst any
	if err := json.Unmarshal(raw, &inst); err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("--sbom file is not valid SPDX 2.3: %v", err)
	}
	if !strings.Contains(string(raw), `"versionInfo": "`+digest+`"`) || !strings.Contains(string(raw), "pkg:deb/debian/bash@") {
		t.Errorf("--sbom file does not describe image %s with bash in it", digest)
	}

	// The CycloneDX SBOM attached beside it is valid CycloneDX 1.6 and
	// has the SPDX document's purls; --sbom-format cyclonedx writes it.
	src, err := oci.Open(t.Context(), "oci:"+layout, false)
	if err != nil {
		t.Fatal(err)
	}
	bom, err := src.Artifact(audit.CycloneDXType)
	if err != nil {
		t.Fatal(err)
	}
	var bomDoc any
	if err := json.Unmarshal(bom, &bomDoc); err != nil {
		t.Fatal(err)
	}
	if err := testenv.CycloneDXSchema(t).Validate(bomDoc); err != nil {
		t.Errorf("the attached CycloneDX SBOM is not valid CycloneDX 1.6: %v", err)
	}
	purls := regexp.MustCompile(`"(pkg:deb/[^"]+)"`)
	spdxPurls, bomPurls := map[string]bool{}, map[string]bool{}
	for _, m := range purls.FindAllStringSubmatch(string(raw), -1) {
		spdxPurls[m[1]] = true
	}
	for _, m := range purls.FindAllStringSubmatch(string(bom), -1) {
		bomPurls[m[1]] = true
	}
	if len(bomPurls) < 50 || !maps.Equal(spdxPurls, bomPurls) {
		t.Errorf("CycloneDX purls (%d) differ from SPDX's (%d)", len(bomPurls), len(spdxPurls))
	}
	// syft, as users run it on the image, finds the same packages.
	var bomDoc2 struct {
		Components []struct{ Name, Version string }
	}
	if err := json.Unmarshal(bom, &bomDoc2); err != nil {
		t.Fatal(err)
	}
	var ours, syfts []string
	for _, c := range bomDoc2.Components {
		ours = append(ours, c.Name+" "+c.Version)
	}
	found, _, _ := syftScan(t, testenv.Scanner(t, "syft"), "oci-dir:"+layout, "12")
	for _, s := range found {
		syfts = append(syfts, s.name+" "+s.version)
	}
	slices.Sort(ours)
	slices.Sort(syfts)
	if len(ours) < 50 || !slices.Equal(ours, syfts) {
		t.Errorf("syft finds other packages than the CycloneDX SBOM lists:\n%s", lineDiff(strings.Join(ours, "\n"), strings.Join(syfts, "\n")))
	}
	cdxFile := filepath.Join(work, "sbom.cdx.json")
	if _, stderr, err := runBinary(t, "--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot,
		"--snapshot-server", server, "--cache-dir", sharedCache,
		"--output", "oci:"+filepath.Join(work, "layout2"), "--sbom", cdxFile, "--sbom-format", "cyclonedx"); err != nil {
		t.Fatalf("build with --sbom-format cyclonedx: %v\n%s", err, stderr)
	}
	if data, err := os.ReadFile(cdxFile); err != nil || !bytes.Equal(data, bom) {
		t.Errorf("--sbom-format cyclonedx wrote other bytes than the attached SBOM (%v)", err)
	}

	// packages reads the same list from the layout and the registry.
	fromLayout, _, err := runBinary(t, "packages", "oci:"+layout)
	if err != nil {
		t.Fatal(err)
	}
	fromRegistry, _, err := runBinary(t, "packages", ref)
	if err != nil {
		t.Fatal(err)
	}
	if fromLayout != fromRegistry || !strings.Contains(fromLayout, "\nlibc6 ") || !strings.Contains(fromLayout, " glibc\n") {
		t.Errorf("packages: the layout says\n%s\nthe registry says\n%s", fromLayout, fromRegistry)
	}
	// Both the attached list and dpkg's status in the layer agree.
	img, err := oci.Open(t.Context(), "oci:"+layout, false)
	if err != nil {
		t.Fatal(err)
	}
	status, _, err := dpkgStatus(img)
	if err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	for _, p := range status.Packages {
		list.WriteString(p.Name + " " + p.Version + " " + p.Architecture + " " + p.Source + "\n")
	}
	if list.String() != fromLayout {
		t.Errorf("the attached manifest differs from dpkg's status:\n%s", lineDiff(list.String(), fromLayout))
	}

	// diff against the same packages, with hello added, bash upgraded
	// and libc6 dropped.
	var got []imagePackages
	j, _, err := runBinary(t, "packages", "--json", ref)
	if err != nil || json.Unmarshal([]byte(j), &got) != nil {
		t.Fatalf("packages --json: %v", err)
	}
	set := &plan.Plan{Suite: "bookworm", Arch: "amd64"}
	for _, p := range got[0].Packages {
		switch p.Name {
		case "libc6":
			continue
		case "bash":
			p.Version += "+1"
		}
		set.Packages = append(set.Packages, plan.Package{Name: p.Name, Version: p.Version, Architecture: p.Architecture, Source: p.Source, SourceVersion: p.SourceVersion})
	}
	set.Packages = append(set.Packages, plan.Package{Name: "hello", Version: "2.10-3", Architecture: "amd64", Source: "hello"})
	edited, arts := auditedImage(t)
	m, err := audit.NewManifest(set).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if arts[0], err = oci.NewArtifact(audit.ManifestType, m, edited, nil); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(work, "other")
	writeLayout(t, other, "bookworm", edited, arts[0])
	d, _, err := runBinary(t, "diff", ref, "oci:"+other)
	if err != nil {
		t.Fatal(err)
	}
	var bash string
	for _, line := range strings.Split(fromLayout, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "bash" {
			bash = f[1]
		}
	}
	libc := strings.Fields(strings.SplitAfter(fromLayout, "\nlibc6 ")[1])[0]
	want := "- libc6 " + libc + " amd64 glibc\n+ hello 2.10-3 amd64 hello\n~ bash " + bash + " -> " + bash + "+1 amd64 bash\n"
	if d != want {
		t.Errorf("diff =\n%s\nwant\n%s", d, want)
	}
}
