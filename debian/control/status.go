package control

import (
	"fmt"
	"io"
)

// A StatusEntry is a package in dpkg's status file.
type StatusEntry struct {
	Package, Version, Architecture, MultiArch string
	// Source and SourceVersion are its source package's, from its
	// Source field or its own.
	Source, SourceVersion string
	Status                string // "install ok installed"
}

// ReadStatus reads the packages of dpkg's status file
// (var/lib/dpkg/status); a paragraph without a Package field is left out.
func ReadStatus(r io.Reader) ([]StatusEntry, error) {
	cr := NewReader(r)
	var entries []StatusEntry
	for {
		p, err := cr.Next()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dpkg status: %w", err)
		}
		var e StatusEntry
		var source string
		for i := range p.Len() {
			switch p.Key(i) {
			case "package":
				e.Package = p.Value(i)
			case "version":
				e.Version = p.Value(i)
			case "architecture":
				e.Architecture = p.Value(i)
			case "multi-arch":
				e.MultiArch = p.Value(i)
			case "source":
				source = p.Value(i)
			case "status":
				e.Status = p.Value(i)
			}
		}
		if e.Package == "" {
			continue
		}
		e.Source, e.SourceVersion = Source(source, e.Package, e.Version)
		entries = append(entries, e)
	}
}
