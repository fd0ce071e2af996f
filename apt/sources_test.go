package apt

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseSourceLine(t *testing.T) {
	src, err := ParseSourceLine("deb [ signed-by=/etc/acme.gpg arch=amd64,arm64 ] https://apt.acme.example/debian bookworm main contrib")
	if err != nil {
		t.Fatal(err)
	}
	want := Source{URIs: []string{"https://apt.acme.example/debian"}, Suites: []string{"bookworm"},
		Components: []string{"main", "contrib"}, Architectures: []string{"amd64", "arm64"}, SignedBy: "/etc/acme.gpg"}
	if fmt.Sprint(src) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", src, want)
	}
	src, err = ParseSourceLine("deb [signed-by=/k.gpg] http://h/x bookworm main")
	if err != nil || fmt.Sprint(src.Repositories()) != fmt.Sprint([]Repository{{URL: "http://h/x", Suite: "bookworm", Components: []string{"main"}}}) {
		t.Errorf("got %+v, %v", src.Repositories(), err)
	}

	for line, want := range map[string]string{
		"": "empty",
		"deb-src [signed-by=/k] http://h/ bookworm main":        `type "deb-src": source packages are not installed; want deb`,
		"rpm [signed-by=/k] http://h/ bookworm main":            `type "rpm": want deb`,
		"deb [trusted=yes] http://h/ bookworm main":             "trusted=yes: unsigned repositories are refused; give signed-by",
		"deb http://h/ bookworm main":                           "no signed-by: every repository must be verified with its own keyring",
		"deb [signed-by=/k] http://h/ ./":                       `suite "./": flat repositories are not supported; want SUITE COMPONENT…`,
		"deb [signed-by=/k] http://h/ bookworm":                 "no component",
		"deb [signed-by=/k] ftp://h/ bookworm main":             `URI "ftp://h/": want an http:// or https:// URL`,
		"deb [signed-by=/k lang=de] http://h/ bookworm main":    "option lang: not supported (signed-by= and arch= are)",
		"deb [signed-by=/k http://h/ bookworm main":             "options: no closing ]",
		"deb [signed-by] http://h/ bookworm main":               `option "signed-by": want NAME=VALUE`,
		"deb [signed-by=/k]":                                    "want TYPE [OPTIONS] URI SUITE COMPONENT…",
		"deb [signed-by=/k] https://ci:s3cret@h/ bookworm main": "URI https://h/: credentials in an archive URL are refused: it is written into the image, its SBOM, the cache and the report",
	} {
		if _, err := ParseSourceLine(line); err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %s", line, err, want)
		}
	}
}

func TestParseSources(t *testing.T) {
	text := `# the organisation's repository
Types: deb
URIs: https://apt.acme.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZ...
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
URIs: http://h/x
Suites: stable
Components: main
Signed-By: /etc/k.gpg
Enabled: no
`
	srcs, err := ParseSources(strings.NewReader(text), "acme.sources")
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || len(srcs[0].Repositories()) != 2 || srcs[0].Suites[1] != "bookworm-updates" ||
		srcs[0].SignedBy != "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n-----END PGP PUBLIC KEY BLOCK-----" {
		t.Errorf("got %+v", srcs)
	}
	for text, want := range map[string]string{
		"Types: deb\nURIs: http://h/\nSuites: s\nComponents: main\n":                              "a.sources:1: no signed-by: every repository must be verified with its own keyring",
		"\nTypes: deb\nURIs: http://h/\nSuites: s\nComponents: main\nSigned-By: /k\nPDiffs: no\n": "a.sources:7: field PDiffs: not supported (Types, URIs, Suites, Components, Architectures, Signed-By and Enabled are)",
		"Types: deb\nURIs: http://h/\nSuites: s\nComponents: main\nSigned-By: /k\nEnabled: no\n":  "a.sources: no enabled source",
	} {
		if _, err := ParseSources(strings.NewReader(text), "a.sources"); err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %s", text, err, want)
		}
	}
}
