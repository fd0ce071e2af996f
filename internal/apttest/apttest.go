// Package apttest builds small, signed Debian archives in Go and serves
// them over HTTP for hermetic tests, as net/http/httptest does for servers.
//
// The layout is that of a Debian mirror:
//
//	<archive>/dists/<suite>/InRelease            clearsigned Release
//	<archive>/dists/<suite>/Release              and Release.gpg
//	<archive>/dists/<suite>/<comp>/binary-<arch>/Packages{,.gz,.xz}
//	<archive>/pool/<comp>/<prefix>/<source>/<name>_<version>_<arch>.deb
//
// and, as on snapshot.debian.org, /archive/<archive>/<YYYYMMDDTHHMMSSZ>/…
// serves the same content for any timestamp.
package apttest

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"hash"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Suite is one suite of one archive.
type Suite struct {
	Archive    string    // "debian" (default) or "debian-security"
	Name       string    // e.g. "bookworm", "bookworm-updates", "bookworm-security"
	Codename   string    // default: Name up to the first '-'
	Components []string  // default ["main"]; debs go in the first unless Fields["Component"] names another
	Date       time.Time // default Epoch; InRelease is signed at this time
	ValidUntil time.Time // zero: no Valid-Until field
	Debs       []Deb

	// Release fields apt's pins match; Origin defaults to "Debian" and
	// Label to "Debian" (Debian-Security for debian-security).
	Origin, Label, Version             string
	NotAutomatic, ButAutomaticUpgrades bool
}

// Archive is a running signed archive. Close it, or let the test's
// cleanup do so.
type Archive struct {
	*httptest.Server
	Key         *openpgp.Entity // the signing key
	KeyringPath string          // binary public keyring holding Key

	t        testing.TB
	debs     []builtDeb
	mu       sync.Mutex
	files    map[string][]byte // served path (no leading slash) → content
	fail     map[string]int
	requests map[string]int
}

type builtDeb struct {
	archive, suite, name, arch string
	path                       string // served path
	data                       []byte
}

// New builds the suites, signs them with a fresh key and starts serving
// them. The server is closed when the test ends.
func New(t testing.TB, suites ...Suite) *Archive {
	t.Helper()
	return NewAt(t, "127.0.0.1:0", suites...)
}

// NewAt is New serving at addr ("127.0.0.2:0", say, for an archive whose
// host differs from another's, as apt's "Pin: origin" tells them apart).
func NewAt(t testing.TB, addr string, suites ...Suite) *Archive {
	t.Helper()
	key, keyring := NewKey(t)
	a := &Archive{
		Key:         key,
		KeyringPath: keyring,
		t:           t,
		files:       map[string][]byte{},
		fail:        map[string]int{},
		requests:    map[string]int{},
	}
	for _, s := range suites {
		if err := a.addSuite(s); err != nil {
			t.Fatalf("apttest: suite %s: %v", s.Name, err)
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("apttest: %v", err)
	}
	a.Server = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(a.serve)}}
	a.Server.Start()
	t.Cleanup(a.Server.Close)
	return a
}

func (a *Archive) addSuite(s Suite) error {
	if s.Name == "" {
		return fmt.Errorf("no Name")
	}
	if s.Archive == "" {
		s.Archive = "debian"
	}
	if s.Codename == "" {
		s.Codename, _, _ = strings.Cut(s.Name, "-")
	}
	if len(s.Components) == 0 {
		s.Components = []string{"main"}
	}
	if s.Date.IsZero() {
		s.Date = Epoch
	}

	// Build the debs and the Packages stanzas of each component and arch.
	stanzas := map[string][]string{} // "<comp>/<arch>" → stanzas
	archSet := map[string]bool{}
	for _, d := range s.Debs {
		if a := debArch(d); a != "all" {
			archSet[a] = true
		}
	}
	if len(archSet) == 0 {
		archSet["amd64"] = true
	}
	var arches []string
	for a := range archSet {
		arches = append(arches, a)
	}
	sort.Strings(arches)

	for _, d := range s.Debs {
		comp := s.Components[0]
		if c := d.Fields["Component"]; c != "" {
			comp = c
		}
		if !contains(s.Components, comp) {
			return fmt.Errorf("%s: component %q is not in Components", d.Name, comp)
		}
		data, f, err := buildDeb(d)
		if err != nil {
			return err
		}
		arch := debArch(d)
		pool := poolPath(comp, d, arch)
		served := s.Archive + "/" + pool
		if old, ok := a.files[served]; ok && !bytes.Equal(old, data) {
			return fmt.Errorf("two different debs at %s", served)
		}
		a.files[served] = data
		a.debs = append(a.debs, builtDeb{archive: s.Archive, suite: s.Name, name: d.Name, arch: arch, path: served, data: data})

		f["Filename"] = pool
		f["Size"] = fmt.Sprint(len(data))
		f["MD5sum"] = fmt.Sprintf("%x", md5.Sum(data))
		f["SHA256"] = fmt.Sprintf("%x", sha256.Sum256(data))
		stanza := formatStanza(f, packagesOrder, packagesTail)
		if arch == "all" {
			// Debian lists arch-all packages in every binary-<arch> index.
			for _, a := range arches {
				stanzas[comp+"/"+a] = append(stanzas[comp+"/"+a], stanza)
			}
		} else {
			stanzas[comp+"/"+arch] = append(stanzas[comp+"/"+arch], stanza)
		}
	}

	// Write the indexes; every component and arch has one, even if empty.
	dists := s.Archive + "/dists/" + s.Name + "/"
	var indexes []string // relative to dists
	for _, comp := range s.Components {
		for _, arch := range arches {
			text := []byte(strings.Join(stanzas[comp+"/"+arch], "\n"))
			base := comp + "/binary-" + arch + "/Packages"
			for _, kind := range []string{"none", "gz", "xz"} {
				data, ext, err := compress(kind, text)
				if err != nil {
					return err
				}
				a.files[dists+base+ext] = data
				indexes = append(indexes, base+ext)
			}
		}
	}
	sort.Strings(indexes)

	origin, label := s.Origin, s.Label
	if origin == "" {
		origin = "Debian"
	}
	if label == "" {
		label = "Debian"
		if s.Archive == "debian-security" {
			label = "Debian-Security"
		}
	}
	var r strings.Builder
	fmt.Fprintf(&r, "Origin: %s\nLabel: %s\nSuite: %s\n", origin, label, s.Name)
	if s.Version != "" {
		fmt.Fprintf(&r, "Version: %s\n", s.Version)
	}
	fmt.Fprintf(&r, "Codename: %s\n", s.Codename)
	if s.NotAutomatic {
		fmt.Fprintf(&r, "NotAutomatic: yes\n")
	}
	if s.ButAutomaticUpgrades {
		fmt.Fprintf(&r, "ButAutomaticUpgrades: yes\n")
	}
	fmt.Fprintf(&r, "Date: %s\n", releaseDate(s.Date))
	if !s.ValidUntil.IsZero() {
		fmt.Fprintf(&r, "Valid-Until: %s\n", releaseDate(s.ValidUntil))
	}
	fmt.Fprintf(&r, "Acquire-By-Hash: no\nArchitectures: %s\nComponents: %s\n", strings.Join(arches, " "), strings.Join(s.Components, " "))
	fmt.Fprintf(&r, "Description: Debian %s test archive\n", s.Codename)
	for _, h := range []struct {
		name string
		new  func() hash.Hash
	}{{"MD5Sum", md5.New}, {"SHA256", sha256.New}} {
		fmt.Fprintf(&r, "%s:\n", h.name)
		for _, idx := range indexes {
			data := a.files[dists+idx]
			hh := h.new()
			hh.Write(data)
			fmt.Fprintf(&r, " %x %8d %s\n", hh.Sum(nil), len(data), idx)
		}
	}
	release := []byte(r.String())
	inRelease, err := ClearSign(a.Key, release, s.Date)
	if err != nil {
		return err
	}
	sig, err := DetachSign(a.Key, release, s.Date)
	if err != nil {
		return err
	}
	a.files[dists+"Release"] = release
	a.files[dists+"Release.gpg"] = sig
	a.files[dists+"InRelease"] = inRelease
	return nil
}

// releaseDate formats t as Debian's Release files do:
// "Mon, 01 Jan 2024 00:00:00 UTC".
func releaseDate(t time.Time) string {
	return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 UTC")
}

// poolPath is where the Debian archive keeps a deb, relative to the
// archive root: pool/<comp>/<prefix>/<source>/<name>_<version>_<arch>.deb,
// the version without its epoch.
func poolPath(comp string, d Deb, arch string) string {
	src := d.Name
	if s := d.Fields["Source"]; s != "" {
		src, _, _ = strings.Cut(s, " ") // "glibc (2.36-9)" → "glibc"
	}
	prefix := src[:1]
	if strings.HasPrefix(src, "lib") && len(src) > 3 {
		prefix = src[:4]
	}
	v := d.Version
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	return fmt.Sprintf("pool/%s/%s/%s/%s_%s_%s.deb", comp, prefix, src, d.Name, v, arch)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// URL returns the URL of an archive's root, e.g. "http://127.0.0.1:1234/debian".
func (a *Archive) URL(archive string) string { return a.Server.URL + "/" + archive }

// SnapshotURL returns the root under which /archive/<archive>/<timestamp>/…
// serves the same content as /<archive>/… for any timestamp of the form
// YYYYMMDDTHHMMSSZ, as snapshot.debian.org does.
func (a *Archive) SnapshotURL() string { return a.Server.URL }

// Set replaces the bytes served at path (e.g.
// "debian/dists/bookworm/InRelease"), to tamper with it after signing.
// A nil body makes the path 404.
func (a *Archive) Set(path string, body []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	path = strings.TrimPrefix(path, "/")
	if body == nil {
		delete(a.files, path)
		return
	}
	a.files[path] = body
}

// Update publishes s anew, signed with the archive's key, as the next
// state of the suite of its name: its indexes and Release replace the
// old ones, and Deb and Path find its debs. The old debs stay in the
// pool.
func (a *Archive) Update(s Suite) {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	archive := cmp.Or(s.Archive, "debian")
	a.debs = slices.DeleteFunc(a.debs, func(d builtDeb) bool { return d.archive == archive && d.suite == s.Name })
	if err := a.addSuite(s); err != nil {
		a.t.Fatalf("apttest: suite %s: %v", s.Name, err)
	}
}

// Get returns the bytes served at path, or nil.
func (a *Archive) Get(path string) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.files[strings.TrimPrefix(path, "/")]
}

// Fail makes path answer with status instead of its content; status 0
// serves the content again. Failing a canonical path also fails it under
// the snapshot URL; failing a snapshot path fails only that one.
func (a *Archive) Fail(path string, status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	path = strings.TrimPrefix(path, "/")
	if status == 0 {
		delete(a.fail, path)
		return
	}
	a.fail[path] = status
}

// Requests returns how many requests path has received, counted under the
// path as requested: a snapshot request counts under its
// "archive/<archive>/<timestamp>/…" path only.
func (a *Archive) Requests(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests[strings.TrimPrefix(path, "/")]
}

// Deb returns the bytes of a built deb by package name, or "name:arch"
// when several arches share a name. If several suites of the archive hold
// the name, the first suite given to New wins.
func (a *Archive) Deb(archive, name string) []byte {
	a.t.Helper()
	return a.find(archive, "", name).data
}

// Path returns the served path of a deb, e.g.
// "debian/pool/main/f/foo/foo_1.0_amd64.deb"; name may be "name:arch".
func (a *Archive) Path(archive, suite, name string) string {
	a.t.Helper()
	return a.find(archive, suite, name).path
}

func (a *Archive) find(archive, suite, name string) builtDeb {
	a.t.Helper()
	name, arch, _ := strings.Cut(name, ":")
	for _, d := range a.debs {
		if d.archive == archive && (suite == "" || d.suite == suite) && d.name == name && (arch == "" || d.arch == arch) {
			return d
		}
	}
	a.t.Fatalf("apttest: no deb %s in %s %s", name, archive, suite)
	return builtDeb{}
}

func (a *Archive) serve(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	a.mu.Lock()
	a.requests[p]++
	status, body, ok := a.lookup(p)
	if !ok && status == 0 {
		if canon, isSnap := snapshotPath(p); isSnap {
			status, body, ok = a.lookup(canon)
		}
	}
	a.mu.Unlock()
	switch {
	case status != 0:
		http.Error(w, http.StatusText(status), status)
	case !ok:
		http.NotFound(w, r)
	default:
		// ServeContent gives HEAD and Range requests, as mirrors do.
		http.ServeContent(w, r, path.Base(p), time.Time{}, bytes.NewReader(body))
	}
}

// lookup must be called with a.mu held.
func (a *Archive) lookup(p string) (status int, body []byte, ok bool) {
	if s, failed := a.fail[p]; failed {
		return s, nil, false
	}
	body, ok = a.files[p]
	return 0, body, ok
}

// snapshotPath maps "archive/<archive>/<YYYYMMDDTHHMMSSZ>/<rest>" to
// "<archive>/<rest>".
func snapshotPath(p string) (string, bool) {
	parts := strings.SplitN(p, "/", 4)
	if len(parts) != 4 || parts[0] != "archive" {
		return "", false
	}
	if _, err := time.Parse("20060102T150405Z", parts[2]); err != nil {
		return "", false
	}
	return parts[1] + "/" + parts[3], true
}
