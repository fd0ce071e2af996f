// Package plan holds the resolved set of an image as a plain value: the
// suites it was resolved from and the packages it installs. The resolver
// makes it, every later stage reads it, and it can be written out and read
// back.
package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Plan is what a build installs: the packages the resolver picked for
// Suite and Arch, from the Releases it read.
type Plan struct {
	Suite string    `json:"suite"`
	Arch  string    `json:"arch"`
	Epoch time.Time `json:"epoch"`
	// Releases are the suites' Release files the packages were resolved
	// from, in the order the build reads them; a missing suite the build
	// may go without has none.
	Releases []Release `json:"releases,omitempty"`
	Packages []Package `json:"packages"` // sorted by name
}

// Release identifies one suite's Release file, as verified.
type Release struct {
	URL      string    `json:"url"` // the archive root
	Suite    string    `json:"suite"`
	Codename string    `json:"codename"`
	Date     time.Time `json:"date"`
	SHA256   string    `json:"sha256"` // of the InRelease file, signature included
	// Keyring is the SHA-256 of the keys the InRelease was verified
	// with, as a binary keyring (their public parts, in order).
	Keyring string `json:"keyring,omitempty"`
	// Indexes are the Packages indexes the packages were resolved from,
	// as the Release lists and the build fetched them.
	Indexes []Index `json:"indexes,omitempty"`
}

// Index is one Packages index of a Release.
type Index struct {
	Path   string `json:"path"` // under dists/<suite>/, e.g. "main/binary-amd64/Packages.xz"
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Package is one resolved package.
type Package struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Architecture  string `json:"architecture"`
	Source        string `json:"source"`
	SourceVersion string `json:"sourceVersion"`
	URL           string `json:"url"`
	Size          int64  `json:"size"`
	SHA256        string `json:"sha256"`
	Priority      string `json:"priority,omitempty"`
	// Origin is whose a package from a repository other than Debian's
	// is (an organisation's own, say). Empty for Debian's.
	Origin    string `json:"origin,omitempty"`
	Essential bool   `json:"essential,omitempty"`
	// Required says the package is in debootstrap's $required, which
	// its first stage extracts and its second installs before the
	// others.
	Required bool `json:"required,omitempty"`
	// Why says why the package is in the image: "required" (Priority:
	// required), "important" (debootstrap's base, such as apt),
	// "essential", "include", "distroless" (a distroless variant's own
	// package), or "depends NAME", "pre-depends NAME",
	// "recommends NAME" for the first package, reached from those,
	// that pulls it in.
	Why string `json:"why,omitempty"`
}

// Write writes p as indented JSON.
func Write(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// Read reads a Plan written by Write.
func Read(r io.Reader) (*Plan, error) {
	var p Plan
	if err := json.NewDecoder(r).Decode(&p); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return &p, nil
}
