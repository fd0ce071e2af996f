package snapshots

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	want := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, in := range []string{"20240101", "20240101T000000Z", "2024-01-01T00:00:00Z", "2024-01-01T02:00:00+02:00"} {
		got, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Parse(%q) = %v, want %v", in, got, want)
		}
	}
	got, err := Parse("20240315T123456Z")
	if err != nil || ID(got) != "20240315T123456Z" {
		t.Errorf("round trip: %v, %v", ID(got), err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{"", "yesterday", "2024-01-01", "20240132", "20240101T000000", "202401011", "2024-01-01 00:00:00", "20240101T250000Z"} {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), `"`+in+`"`) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) error %q: want one line quoting the input", in, err)
		}
	}
}

func TestSnapshot(t *testing.T) {
	ts, _ := Parse("20240101")
	a := Snapshot("http://127.0.0.1:8080/", ts)
	if a.Debian != "http://127.0.0.1:8080/archive/debian/20240101T000000Z" ||
		a.Security != "http://127.0.0.1:8080/archive/debian-security/20240101T000000Z" {
		t.Errorf("Snapshot = %+v", a)
	}
}

func write(t *testing.T, root, name, body string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHostArchivesDeb822(t *testing.T) {
	root := t.TempDir()
	write(t, root, "etc/apt/sources.list.d/debian.sources", `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.test/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.test/debian-security
Suites: bookworm-security
Components: main
`)
	got, err := HostArchives(root)
	want := Archives{"http://mirror.test/debian", "http://security.test/debian-security"}
	if err != nil || got != want {
		t.Errorf("HostArchives = %+v, %v; want %+v", got, err, want)
	}
}

func TestHostArchivesOneLine(t *testing.T) {
	root := t.TempDir()
	write(t, root, "etc/apt/sources.list", `# comment
deb-src http://src.test/debian bookworm main
deb [signed-by=/k.gpg arch=amd64] http://mirror.test/debian bookworm main
`)
	got, err := HostArchives(root)
	want := Archives{"http://mirror.test/debian", "http://mirror.test/debian-security"}
	if err != nil || got != want {
		t.Errorf("HostArchives = %+v, %v; want %+v", got, err, want)
	}
}

func TestHostArchivesDefault(t *testing.T) {
	got, err := HostArchives(t.TempDir())
	if err != nil || got != Mirror(DefaultMirror) || got.Security != "http://deb.debian.org/debian-security" {
		t.Errorf("HostArchives = %+v, %v", got, err)
	}
}

// TestHostArchivesCredentials: credentials in the host's Debian or
// security entry are an error naming the file, without the password; in
// an entry basebuild does not use they do not matter.
func TestHostArchivesCredentials(t *testing.T) {
	for _, tc := range []struct{ file, body string }{
		{"etc/apt/sources.list.d/debian.sources", "Types: deb\nURIs: http://ci:s3cret@mirror.test/debian\nSuites: bookworm\nComponents: main\n"},
		{"etc/apt/sources.list.d/debian.sources", "Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm\n\nTypes: deb\nURIs: https://s3cret@security.test/debian-security\nSuites: bookworm-security\n"},
		{"etc/apt/sources.list", "deb [arch=amd64] http://ci:s3cret@mirror.test/debian bookworm main\n"},
		{"etc/apt/sources.list", "deb ftp://mirror.test/debian bookworm main\n"},
	} {
		root := t.TempDir()
		write(t, root, tc.file, tc.body)
		a, err := HostArchives(root)
		if err == nil {
			t.Errorf("%s %q: HostArchives = %+v, want an error", tc.file, tc.body, a)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "host apt sources: "+filepath.Join(root, tc.file)+": URI ") ||
			!strings.HasSuffix(msg, "; give the archive with --mirror or --security-mirror") || strings.Contains(msg, "s3cret") {
			t.Errorf("%s %q: %v", tc.file, tc.body, err)
		}
	}

	root := t.TempDir()
	write(t, root, "etc/apt/sources.list", "deb http://mirror.test/debian bookworm main\ndeb http://ci:s3cret@other.test/debian bookworm main\n")
	if a, err := HostArchives(root); err != nil || a.Debian != "http://mirror.test/debian" {
		t.Errorf("HostArchives = %+v, %v; want the first entry", a, err)
	}
}
