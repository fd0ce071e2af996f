// Package apt turns signed Debian archives into a verified, resolved set of
// packages: InRelease (OpenPGP-verified) → Packages indexes (hash-verified)
// → resolved package set → verified .deb files in a content-addressed cache.
package apt

import (
	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// Package is one binary package stanza of a Packages index, with the
// fields the resolver and the downloader need.
type Package struct {
	Name          string
	Version       version.Version
	Architecture  string // "amd64", "all", …
	MultiArch     string // "", "same", "foreign", "allowed"
	Priority      string
	Essential     bool
	Source        string // source package name (Package when the index omits it)
	SourceVersion string // source version (Version when the index omits it)
	PreDepends    dependency.Dependency
	Depends       dependency.Dependency
	Provides      dependency.Dependency
	Recommends    dependency.Dependency
	Filename      string // pool path relative to the archive root
	Size          int64
	SHA256        string

	// Where the stanza came from.
	ArchiveURL string // archive root, e.g. "http://deb.debian.org/debian"
	Suite      string // e.g. "bookworm-security"
	Component  string // e.g. "main"
	Index      *IndexFile
}

// IndexFile is the Packages index a stanza came from, as apt's
// preferences see it: the fields of its Release, the index's component
// and architecture, and the host serving it. All stanzas of one index
// share one IndexFile.
type IndexFile struct {
	Origin, Label, Suite, Codename, Version string
	Component, Architecture                 string
	Site                                    string // the URL's host, without port, as apt's "Pin: origin" sees it
	NotAutomatic, ButAutomaticUpgrades      bool
	Debian                                  bool // served by Debian's own archive (see Repository.Debian)
}

// URL is the absolute URL of the package's .deb.
func (p *Package) URL() string { return p.ArchiveURL + "/" + p.Filename }
