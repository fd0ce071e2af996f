package debian

import (
	"slices"
	"testing"
)

func TestSecuritySuite(t *testing.T) {
	for suite, want := range map[string]string{"bookworm": "bookworm-security", "bullseye": "bullseye-security", "buster": "buster/updates"} {
		if got := SecuritySuite(suite); got != want {
			t.Errorf("SecuritySuite(%q) = %q, want %q", suite, got, want)
		}
	}
}

func TestVersion(t *testing.T) {
	for suite, want := range map[string]string{"bookworm": "12", "trixie": "13", "buster": "10", "sid": "", "stable": ""} {
		if got := Version(suite); got != want {
			t.Errorf("Version(%q) = %q, want %q", suite, got, want)
		}
	}
}

func TestUpdateSuites(t *testing.T) {
	for suite, want := range map[string][]string{
		"bookworm":     {"bookworm-updates", "bookworm-security"},
		"buster":       {"buster-updates", "buster/updates"},
		"sid":          nil,
		"unstable":     nil,
		"experimental": nil,
		"rc-buggy":     nil,
	} {
		if got := UpdateSuites(suite); !slices.Equal(got, want) {
			t.Errorf("UpdateSuites(%q) = %q, want %q", suite, got, want)
		}
	}
}

func TestMergedUsr(t *testing.T) {
	for suite, want := range map[string]bool{"etch": false, "buster": false, "bullseye": false, "bookworm": true, "trixie": true, "sid": true, "unstable": true} {
		if got := MergedUsr(suite); got != want {
			t.Errorf("MergedUsr(%q) = %v, want %v", suite, got, want)
		}
	}
}

func TestDebootstrapExtras(t *testing.T) {
	for _, c := range []struct {
		codename         string
		required, banned []string
	}{
		{"bullseye", nil, nil},
		{"bookworm", []string{"usr-is-merged"}, []string{"usrmerge"}},
		{"trixie", nil, []string{"usrmerge"}},
		{"sid", nil, []string{"usrmerge"}},
	} {
		r, b := DebootstrapExtras(c.codename)
		if !slices.Equal(r, c.required) || !slices.Equal(b, c.banned) {
			t.Errorf("DebootstrapExtras(%q) = %q, %q; want %q, %q", c.codename, r, b, c.required, c.banned)
		}
	}
}

func TestSuggest(t *testing.T) {
	for suite, want := range map[string]string{
		"bookwrm": "bookworm", "trixe": "trixie", "bookworm-securty": "bookworm-security", "sdi": "sid",
		"bookworm": "", "acme-internal": "", "": "",
	} {
		if got := Suggest(suite); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", suite, got, want)
		}
	}
}
