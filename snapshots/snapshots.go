// Package snapshots maps snapshot timestamps and mirrors to the archive URLs
// a build reads from, and to the image epoch.
package snapshots

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/basebuild/basebuild/debian/control"
)

// DefaultServer is snapshot.debian.org, the default --snapshot-server.
const DefaultServer = "http://snapshot.debian.org"

// DefaultMirror is used when the host's apt sources name none.
const DefaultMirror = "http://deb.debian.org/debian"

// layouts are the accepted timestamp spellings, most specific first.
var layouts = []string{"20060102T150405Z", time.RFC3339, "20060102"}

// Parse reads a snapshot timestamp: 20240101, 20240101T000000Z or RFC 3339.
// The result is in UTC.
func Parse(s string) (time.Time, error) {
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("snapshot %q: want YYYYMMDD, YYYYMMDDTHHMMSSZ or RFC 3339 (2024-01-01T00:00:00Z)", s)
}

// ID formats t the way snapshot.debian.org names its archives.
func ID(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// Archives are the roots of the two Debian archives a build reads.
type Archives struct {
	Debian   string // e.g. http://deb.debian.org/debian
	Security string // e.g. http://deb.debian.org/debian-security
}

// Snapshot returns the archives of server as they were at t.
func Snapshot(server string, t time.Time) Archives {
	server = strings.TrimSuffix(server, "/")
	return Archives{
		Debian:   server + "/archive/debian/" + ID(t),
		Security: server + "/archive/debian-security/" + ID(t),
	}
}

// Mirror returns mirror and its -security sibling, the layout of Debian's
// mirrors: http://host/debian → http://host/debian-security.
func Mirror(mirror string) Archives {
	mirror = strings.TrimSuffix(mirror, "/")
	return Archives{Debian: mirror, Security: mirror + "-security"}
}

// HostArchives reads the Debian archives configured in the host's apt
// sources under root ("/" on a real host): deb822 files in
// etc/apt/sources.list.d/*.sources first, then one-line etc/apt/sources.list.
// A stanza or line whose suite ends in -security or /updates names the
// security archive. Without a configured mirror it returns
// Mirror(DefaultMirror); without a security entry, the mirror's sibling.
// An archive URL it would use that is not http:// or https://, or that
// holds credentials, is an error naming the file (and no password).
func HostArchives(root string) (Archives, error) {
	var debian, security *entry
	choose := func(entries []entry) {
		for _, e := range entries {
			sec := slices.ContainsFunc(e.suites, func(s string) bool {
				return strings.HasSuffix(s, "-security") || strings.HasSuffix(s, "/updates")
			})
			switch {
			case sec && security == nil:
				security = &e
			case !sec && debian == nil:
				debian = &e
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "etc/apt/sources.list.d/*.sources"))
	for _, f := range files {
		choose(readDeb822(f))
	}
	choose(readOneLine(filepath.Join(root, "etc/apt/sources.list")))

	a := Mirror(DefaultMirror)
	for _, c := range []struct {
		e   *entry
		url *string
	}{{debian, &a.Debian}, {security, &a.Security}} {
		if c.e == nil {
			continue
		}
		if err := CheckURL(c.e.uri); err != nil {
			return Archives{}, fmt.Errorf("host apt sources: %s: %w; give the archive with --mirror or --security-mirror", c.e.file, err)
		}
		*c.url = strings.TrimSuffix(c.e.uri, "/")
	}
	if debian != nil && security == nil {
		a.Security = Mirror(a.Debian).Security
	}
	return a, nil
}

// entry is one apt source: a URI and its suites, from file.
type entry struct {
	uri    string
	suites []string
	file   string
}

// readDeb822 returns the deb entries of a deb822 .sources file, those
// before any line it cannot read.
func readDeb822(path string) []entry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	r := control.NewReader(f)
	r.Comments = true
	var entries []entry
	for {
		p, err := r.Next()
		if err != nil {
			return entries
		}
		if slices.Contains(strings.Fields(p.Get("types")), "deb") && p.Get("enabled") != "no" {
			for _, uri := range strings.Fields(p.Get("uris")) {
				entries = append(entries, entry{uri, strings.Fields(p.Get("suites")), path})
			}
		}
	}
}

// readOneLine returns the deb entries of a one-line sources.list.
func readOneLine(path string) []entry {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var entries []entry
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options: [signed-by=… arch=…]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 {
			entries = append(entries, entry{f[0], f[1:2], path})
		}
	}
	return entries
}
