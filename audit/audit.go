// Package audit describes what is in an image: a package manifest and an
// SPDX 2.3 SBOM made from the resolved package set, attached to the image
// as OCI artifacts, and read back from images.
package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/basebuild/basebuild/debian/control"
	"github.com/basebuild/basebuild/plan"
)

// The artifact types of what basebuild attaches to its images.
const (
	ManifestType = "application/vnd.basebuild.packages+json"
	SBOMType     = "application/spdx+json"
	// RebuildType is why --if-changed rebuilt an image: a Review of its
	// packages' move from the image it replaced.
	RebuildType = "application/vnd.basebuild.rebuild+json"
)

// Manifest is the list of packages in an image.
type Manifest struct {
	Suite    string    `json:"suite,omitempty"`
	Arch     string    `json:"arch,omitempty"`
	Epoch    time.Time `json:"epoch,omitzero"`
	Packages []Package `json:"packages"` // sorted by name, then architecture
}

// Package is one installed binary package.
type Package struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Architecture  string `json:"architecture"`
	Source        string `json:"source"`
	SourceVersion string `json:"sourceVersion"`
	SHA256        string `json:"sha256,omitempty"` // of the .deb; unknown when read from dpkg's status
	Origin        string `json:"origin,omitempty"` // whose it is when not from Debian's archive (plan.Package.Origin)
}

// NewManifest returns the manifest of set.
func NewManifest(set *plan.Plan) *Manifest {
	m := &Manifest{Suite: set.Suite, Arch: set.Arch, Epoch: set.Epoch.UTC()}
	for _, d := range set.Packages {
		m.Packages = append(m.Packages, Package{
			Name:          d.Name,
			Version:       d.Version,
			Architecture:  d.Architecture,
			Source:        cmp.Or(d.Source, d.Name),
			SourceVersion: cmp.Or(d.SourceVersion, d.Version),
			SHA256:        d.SHA256,
			Origin:        d.Origin,
		})
	}
	sortPackages(m.Packages)
	return m
}

func sortPackages(pkgs []Package) {
	slices.SortFunc(pkgs, func(a, b Package) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Architecture, b.Architecture))
	})
}

// Marshal returns m as indented JSON.
func (m *Manifest) Marshal() ([]byte, error) {
	return json.MarshalIndent(m, "", "  ")
}

// ParseManifest reads a manifest written by Marshal.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("package manifest: %w", err)
	}
	for i, p := range m.Packages {
		if p.Name == "" || p.Version == "" {
			return nil, fmt.Errorf("package manifest: package %d has no name or version", i+1)
		}
	}
	return &m, nil
}

// ParseStatus reads the installed packages from dpkg's status file, for
// images that carry no manifest.
func ParseStatus(r io.Reader) (*Manifest, error) {
	return parseStatus(r, true)
}

// ParseStatusD reads the packages of a distroless image's
// /var/lib/dpkg/status.d: the control files of its packages, read one
// after another from r, each an installed package (they have no Status).
func ParseStatusD(r io.Reader) (*Manifest, error) {
	return parseStatus(r, false)
}

func parseStatus(r io.Reader, hasStatus bool) (*Manifest, error) {
	entries, err := control.ReadStatus(r)
	if err != nil {
		return nil, err
	}
	m := &Manifest{}
	for _, e := range entries {
		if !hasStatus || strings.HasSuffix(e.Status, " installed") {
			m.Packages = append(m.Packages, Package{Name: e.Package, Version: e.Version, Architecture: e.Architecture,
				Source: e.Source, SourceVersion: e.SourceVersion})
		}
	}
	sortPackages(m.Packages)
	return m, nil
}
