package plan

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testPlan() *Plan {
	return &Plan{
		Suite: "bookworm", Arch: "amd64", Epoch: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Releases: []Release{{URL: "http://archive.example/debian", Suite: "bookworm", Codename: "bookworm",
			Date: time.Date(2023, 12, 9, 10, 0, 0, 0, time.UTC), SHA256: strings.Repeat("a", 64)}},
		Packages: []Package{
			{Name: "base-files", Version: "12.4+deb12u4", Architecture: "amd64", Source: "base-files", SourceVersion: "12.4+deb12u4",
				URL: "http://archive.example/debian/pool/main/b/base-files/base-files_12.4+deb12u4_amd64.deb", Size: 70000,
				SHA256: strings.Repeat("b", 64), Priority: "required", Essential: true, Required: true},
			{Name: "hello", Version: "2.10-3", Architecture: "amd64", Source: "hello", SourceVersion: "2.10-3",
				URL: "http://site.example/pool/hello_2.10-3_amd64.deb", Size: 50000, SHA256: strings.Repeat("c", 64),
				Priority: "optional", Origin: "site.example"},
		},
	}
}

// Write's text is stable: the lockfile and the resolved-set cache keep it.
func TestWriteRead(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, testPlan()); err != nil {
		t.Fatal(err)
	}
	want := `{
  "suite": "bookworm",
  "arch": "amd64",
  "epoch": "2024-01-01T00:00:00Z",
  "releases": [
    {
      "url": "http://archive.example/debian",
      "suite": "bookworm",
      "codename": "bookworm",
      "date": "2023-12-09T10:00:00Z",
      "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    }
  ],
  "packages": [
    {
      "name": "base-files",
      "version": "12.4+deb12u4",
      "architecture": "amd64",
      "source": "base-files",
      "sourceVersion": "12.4+deb12u4",
      "url": "http://archive.example/debian/pool/main/b/base-files/base-files_12.4+deb12u4_amd64.deb",
      "size": 70000,
      "sha256": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
      "priority": "required",
      "essential": true,
      "required": true
    },
    {
      "name": "hello",
      "version": "2.10-3",
      "architecture": "amd64",
      "source": "hello",
      "sourceVersion": "2.10-3",
      "url": "http://site.example/pool/hello_2.10-3_amd64.deb",
      "size": 50000,
      "sha256": "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
      "priority": "optional",
      "origin": "site.example"
    }
  ]
}
`
	if b.String() != want {
		t.Errorf("Write:\n%s\nwant\n%s", b.String(), want)
	}
	got, err := Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, testPlan()) {
		t.Errorf("Read(Write(p)) = %+v, want %+v", got, testPlan())
	}
}

func TestReadBad(t *testing.T) {
	_, err := Read(strings.NewReader(`{"suite": 1}`))
	if err == nil || !strings.HasPrefix(err.Error(), "plan: ") {
		t.Errorf("Read of a bad plan: %v, want an error naming the plan", err)
	}
}

func TestDiff(t *testing.T) {
	pkg := func(name, version, arch string) Package {
		return Package{Name: name, Version: version, Architecture: arch, Source: name}
	}
	a := &Plan{Packages: []Package{
		pkg("apt", "2.6.1", "amd64"),
		pkg("gone", "1", "amd64"),
		pkg("libc6", "2.36-9", "amd64"),
		pkg("libc6", "2.36-9", "i386"),
		pkg("tzdata", "2024a-0+deb12u1", "all"),
		pkg("moved", "1", "amd64"),
	}}
	b := &Plan{Packages: []Package{
		pkg("zlib1g", "1:1.2.13", "amd64"),
		pkg("apt", "2.6.1", "amd64"),
		pkg("libc6", "2.36-9+deb12u4", "amd64"),
		pkg("libc6", "2.36-9", "i386"),
		pkg("tzdata", "2024a-0+deb12u1", "all"),
		pkg("moved", "2", "all"),
	}}
	b.Packages[4].SHA256 = "rebuilt"
	got := Diff(a, b)
	want := &Changes{
		Added:   []Package{pkg("zlib1g", "1:1.2.13", "amd64")},
		Removed: []Package{pkg("gone", "1", "amd64")},
		Changed: []Change{
			{From: pkg("libc6", "2.36-9", "amd64"), To: pkg("libc6", "2.36-9+deb12u4", "amd64")},
			{From: pkg("moved", "1", "amd64"), To: pkg("moved", "2", "all")},
			{From: pkg("tzdata", "2024a-0+deb12u1", "all"), To: b.Packages[4]},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff:\n%+v\nwant\n%+v", got, want)
	}
	if d := Diff(a, a); len(d.Added)+len(d.Removed)+len(d.Changed) != 0 {
		t.Errorf("Diff of a plan with itself: %+v", d)
	}
}

// A package fetched from elsewhere (another snapshot's URL), or there for
// another reason, is the same package; another deb is not.
func TestDiffSamePackage(t *testing.T) {
	p := Package{Name: "bash", Version: "5.2", Architecture: "amd64", Source: "bash", SourceVersion: "5.2",
		URL: "http://snapshot.example/archive/debian/20240101T000000Z/pool/b/bash.deb", SHA256: "aa", Why: "required"}
	moved := p
	moved.URL, moved.Why = "http://snapshot.example/archive/debian/20240201T000000Z/pool/b/bash.deb", "depends dash"
	if c := Diff(&Plan{Packages: []Package{p}}, &Plan{Packages: []Package{moved}}); len(c.Changed)+len(c.Added)+len(c.Removed) != 0 {
		t.Errorf("a package at another URL is another package: %+v", c)
	}
	rebuilt := p
	rebuilt.SHA256 = "bb"
	if c := Diff(&Plan{Packages: []Package{p}}, &Plan{Packages: []Package{rebuilt}}); len(c.Changed) != 1 {
		t.Errorf("another deb of the same version is the same package: %+v", c)
	}
}
