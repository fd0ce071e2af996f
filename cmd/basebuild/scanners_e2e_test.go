package main

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/internal/testenv"
)

// A scanned package: the name and version its purl gives, and the purl.
type scanned struct{ name, version, purl string }

// debPurl parses a pkg:deb/debian purl into the package it names, and
// checks its distro is debian-MAJOR or debian-MAJOR.POINT. An epoch is in
// the version (syft) or the epoch qualifier (trivy, as for rpm).
func debPurl(t *testing.T, purl, major string) (scanned, bool) {
	t.Helper()
	rest, ok := strings.CutPrefix(purl, "pkg:deb/debian/")
	if !ok {
		t.Errorf("purl %s: not pkg:deb/debian/", purl)
		return scanned{}, false
	}
	nv, query, _ := strings.Cut(rest, "?")
	name, version, _ := strings.Cut(nv, "@")
	name, err1 := url.PathUnescape(name)
	version, err2 := url.PathUnescape(version)
	if err := errors.Join(err1, err2); err != nil {
		t.Errorf("purl %s: %v", purl, err)
	}
	q, _ := url.ParseQuery(query)
	if e := q.Get("epoch"); e != "" {
		version = e + ":" + version
	}
	if d := q.Get("distro"); d != "debian-"+major && !strings.HasPrefix(d, "debian-"+major+".") {
		t.Errorf("purl %s: distro %q, want debian-%s", purl, d, major)
	}
	return scanned{name, version, purl}, true
}

// checkScanned checks that a scanner found exactly the packages of b,
// by name and version.
func checkScanned(t *testing.T, scanner string, b distrolessBuild, found []scanned) {
	t.Helper()
	var got, want []string
	for _, s := range found {
		got = append(got, s.name+" "+s.version)
	}
	for _, p := range b.packages {
		f := strings.Fields(p)
		want = append(want, f[0]+" "+f[1])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s found\n%s\nthe image has\n%s", scanner, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// syftScan runs syft on source (oci-dir:DIR, dir:DIR) of Debian major
// and returns the deb packages it found and the distro it saw.
func syftScan(t *testing.T, syft, source, major string) (pkgs []scanned, distroID, versionID string) {
	t.Helper()
	cmd := exec.Command(syft, "scan", source, "-o", "syft-json", "-q")
	cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("syft scan %s: %v", source, stderrOf(err))
	}
	var doc struct {
		Artifacts []struct{ Type, Name, Version, Purl string }
		Distro    struct{ ID, VersionID string }
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("syft scan %s: %v", source, err)
	}
	for _, a := range doc.Artifacts {
		if a.Type != "deb" {
			continue // the Go program --copy put in static
		}
		s, ok := debPurl(t, a.Purl, major)
		if ok && (s.name != a.Name || s.version != a.Version) {
			t.Errorf("syft: %s %s has purl %s", a.Name, a.Version, a.Purl)
		}
		pkgs = append(pkgs, s)
	}
	return pkgs, doc.Distro.ID, doc.Distro.VersionID
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return err.Error() + ": " + string(ee.Stderr)
	}
	return err.Error()
}

// trivyScan runs trivy's command (image --input LAYOUT, or rootfs TREE)
// on an image of Debian major offline, for an SBOM and no vulnerability
// scan, and returns the deb packages it found.
func trivyScan(t *testing.T, trivy, major string, args ...string) []scanned {
	t.Helper()
	cmd := exec.Command(trivy, append(args, "--offline-scan", "--skip-db-update", "--format", "cyclonedx",
		"--cache-dir", t.TempDir(), "--quiet")...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("trivy %v: %v", args, stderrOf(err))
	}
	var doc struct {
		Components []struct{ Name, Version, Purl string }
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("trivy %v: %v", args, err)
	}
	var pkgs []scanned
	for _, c := range doc.Components {
		if !strings.HasPrefix(c.Purl, "pkg:deb/") {
			continue // the operating system, the Go program --copy put in static
		}
		s, ok := debPurl(t, c.Purl, major)
		if ok && (s.name != c.Name || s.version != c.Version) {
			t.Errorf("trivy: %s %s has purl %s", c.Name, c.Version, c.Purl)
		}
		pkgs = append(pkgs, s)
	}
	return pkgs
}

// checkScanners checks that syft and trivy, on each image of the release
// codename and on a tree, list exactly the image's packages with Debian
// purls of its release, and that syft sees that release.
func checkScanners(t *testing.T, codename string, builds map[string]distrolessBuild, tree distrolessBuild) {
	major := debian.Version(codename)
	syft := testenv.Scanner(t, "syft")
	for variant, b := range builds {
		pkgs, id, version := syftScan(t, syft, "oci-dir:"+b.layout, major)
		checkScanned(t, "syft on the "+variant+" image", b, pkgs)
		if id != "debian" || version != major && !strings.HasPrefix(version, major+".") {
			t.Errorf("syft on the %s image: distro %s %s, want debian %s", variant, id, version, major)
		}
	}
	pkgs, _, _ := syftScan(t, syft, "dir:"+tree.tree, major)
	checkScanned(t, "syft on the tree", tree, pkgs)

	trivy := testenv.Scanner(t, "trivy")
	for variant, b := range builds {
		checkScanned(t, "trivy on the "+variant+" image", b, trivyScan(t, trivy, major, "image", "--input", b.layout))
	}
	checkScanned(t, "trivy on the tree", tree, trivyScan(t, trivy, major, "rootfs", tree.tree))
}
