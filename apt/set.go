package apt

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Set is the resolver's result: a plain value that can be written out and
// read back. The image fingerprint, --if-changed and lockfiles build on it.
type Set struct {
	Suite    string    `json:"suite"`
	Arch     string    `json:"arch"`
	Epoch    time.Time `json:"epoch"`
	Packages []Deb     `json:"packages"` // sorted by name
}

// Deb is one resolved package.
type Deb struct {
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
	// is (an organisation's own, say): see NewSet. Empty for Debian's.
	Origin    string `json:"origin,omitempty"`
	Essential bool   `json:"essential,omitempty"`
}

// WriteSet writes s as indented JSON.
func WriteSet(w io.Writer, s *Set) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// ReadSet reads a Set written by WriteSet.
func ReadSet(r io.Reader) (*Set, error) {
	var s Set
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("package set: %w", err)
	}
	return &s, nil
}
