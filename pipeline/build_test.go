package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/snapshots"
)

func TestNoRecommends(t *testing.T) {
	for lines, want := range map[string]bool{
		``:                                 false,
		`APT::Install-Recommends "false";`: true,
		`apt::install-recommends "0";`:     true,
		`APT::Install-Recommends no`:       true,
		`APT::Install-Recommends "true";`:  false,
		`APT::Install-Suggests "false";`:   false,
		"APT::Install-Recommends \"false\";\nAPT::Install-Recommends \"1\";": false,
	} {
		o := &Options{}
		if lines != "" {
			o.AptConf = strings.Split(lines, "\n")
		}
		if got := o.noRecommends(); got != want {
			t.Errorf("%q: noRecommends %v, want %v", lines, got, want)
		}
	}
}

// Only the build's own suites are Debian's: an extra repository's
// packages are never recorded as Debian's, whatever its Release says.
func TestRepositoriesDebian(t *testing.T) {
	_, keyring := apttest.NewKey(t)
	repo, err := apt.ParseRepo("deb [signed-by=" + keyring + "] http://apt.acme.example/debian bookworm main")
	if err != nil {
		t.Fatal(err)
	}
	repos := []apt.Repo{repo}
	o := &Options{Spec: Spec{Suite: "bookworm", Arch: "amd64", Repos: repos}, Sources: Sources{Keyring: keyring}}
	list, err := o.repositories(snapshots.Mirror("http://mirror.example/debian"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range list {
		got = append(got, fmt.Sprintf("%s %v", r.Suite, r.Debian))
	}
	if want := "bookworm true, bookworm-updates true, bookworm-security true, bookworm false"; strings.Join(got, ", ") != want {
		t.Errorf("repositories: %s, want %s", strings.Join(got, ", "), want)
	}
}
