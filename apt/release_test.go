package apt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/cache"
)

const snapshotStamp = "20240101T000000Z"

// testClient returns a Client with a fresh cache and quick retries, and a
// function returning what it logged.
func testClient(t *testing.T) (*Client, func() string) {
	t.Helper()
	cc, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log strings.Builder
	c := &Client{
		Cache:   cc,
		Retries: 2,
		Backoff: time.Millisecond,
		Log: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(&log, format+"\n", args...)
		},
	}
	return c, func() string {
		mu.Lock()
		defer mu.Unlock()
		return log.String()
	}
}

func keyring(t *testing.T, path string) openpgp.EntityList {
	t.Helper()
	kr, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// testRepo is the repository of suite in a's "debian" archive.
func testRepo(t *testing.T, a *apttest.Archive, suite string) Repository {
	return Repository{URL: a.URL("debian"), Suite: suite, Keyring: keyring(t, a.KeyringPath)}
}

// snapshotRepo is the same through a's snapshot URL.
func snapshotRepo(t *testing.T, a *apttest.Archive, suite string) Repository {
	r := testRepo(t, a, suite)
	r.URL = a.SnapshotURL() + "/archive/debian/" + snapshotStamp
	r.Snapshot = true
	return r
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// wantErr fails unless err is non-nil and mentions each of parts.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

var now = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func TestRelease(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Components: []string{"main", "contrib"},
		Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	c, _ := testClient(t)
	rel, err := c.Release(context.Background(), testRepo(t, a, "bookworm"), now)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Suite != "bookworm" || rel.Codename != "bookworm" || !rel.Date.Equal(apttest.Epoch) || !rel.ValidUntil.IsZero() {
		t.Errorf("got Suite %q Codename %q Date %v ValidUntil %v", rel.Suite, rel.Codename, rel.Date, rel.ValidUntil)
	}
	if fmt.Sprint(rel.Architectures, rel.Components) != "[amd64] [main contrib]" {
		t.Errorf("got Architectures %v Components %v", rel.Architectures, rel.Components)
	}
	for _, name := range []string{"main/binary-amd64/Packages.xz", "contrib/binary-amd64/Packages.gz", "main/binary-amd64/Packages"} {
		data := a.Get("debian/dists/bookworm/" + name)
		if got, want := rel.Files[name], (FileHash{int64(len(data)), sha256hex(data)}); got != want {
			t.Errorf("Files[%s] = %v, want %v", name, got, want)
		}
	}
	if len(rel.Files) != 6 {
		t.Errorf("got %d files, want 6", len(rel.Files))
	}
	if want := sha256hex(a.Get("debian/dists/bookworm/InRelease")); rel.SHA256 != want {
		t.Errorf("SHA256 %s, want the InRelease's, %s", rel.SHA256, want)
	}
}

func TestReleaseTampered(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	path := "debian/dists/bookworm/InRelease"
	signed := a.Get(path)
	// Swap one listed hash for another: still a well-formed Release.
	evil := sha256hex([]byte("evil"))
	tampered := bytes.Replace(signed, []byte(sha256hex(a.Get("debian/dists/bookworm/main/binary-amd64/Packages.xz"))), []byte(evil), 1)
	if bytes.Equal(tampered, signed) {
		t.Fatal("test setup: nothing replaced")
	}
	a.Set(path, tampered)
	c, _ := testClient(t)
	repo := testRepo(t, a, "bookworm")
	got, err := c.Release(context.Background(), repo, now)
	wantErr(t, err, `"bookworm"`, a.URL("debian")+"/dists/bookworm/InRelease", "bad signature")
	if got != nil {
		t.Errorf("got a Release from a tampered file")
	}
}

func TestReleaseUnknownKey(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	other, _ := apttest.NewKey(t)
	resigned, err := apttest.ClearSign(other, a.Get("debian/dists/bookworm/Release"), apttest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	a.Set("debian/dists/bookworm/InRelease", resigned)
	c, _ := testClient(t)
	_, err = c.Release(context.Background(), testRepo(t, a, "bookworm"), now)
	wantErr(t, err, `"bookworm"`, a.URL("debian")+"/dists/bookworm/InRelease",
		"no signature by a key in the keyring", fmt.Sprintf("%016X", other.PrimaryKey.KeyId))
}

// Debian signs InRelease with several keys; one that verifies is enough,
// whatever comes before it: a signature by a key not in the keyring, or
// by one that has expired.
func TestReleaseSeveralSignatures(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	unknown, _ := apttest.NewKey(t)
	expired := expiringKey(t)
	kr := filepath.Join(t.TempDir(), "keyring.gpg")
	if err := apttest.WriteKeyring(kr, expired, a.Key); err != nil {
		t.Fatal(err)
	}
	release := a.Get("debian/dists/bookworm/Release")
	var buf bytes.Buffer
	w, err := clearsign.EncodeMulti(&buf, []*packet.PrivateKey{unknown.PrivateKey, expired.PrivateKey, a.Key.PrivateKey},
		&packet.Config{DefaultHash: crypto.SHA256, Time: func() time.Time { return apttest.Epoch }})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.TrimSuffix(release, []byte("\n")))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	a.Set("debian/dists/bookworm/InRelease", buf.Bytes())
	c, _ := testClient(t)
	repo := testRepo(t, a, "bookworm")
	repo.Keyring = keyring(t, kr)
	rel, err := c.Release(context.Background(), repo, now)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Codename != "bookworm" {
		t.Errorf("got codename %q", rel.Codename)
	}

	// Without the good key, the expired one's failure is reported.
	repo.Keyring = keyring(t, kr)[:1]
	_, err = c.Release(context.Background(), repo, now)
	wantErr(t, err, "bad signature", "key expired")
}

// expiringKey returns a key created in 2000 that expired in 2005.
func expiringKey(t *testing.T) *openpgp.Entity {
	t.Helper()
	created := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	key, err := openpgp.NewEntity("Old Archive Key", "", "ftpmaster@example.org", &packet.Config{
		Algorithm:       packet.PubKeyAlgoEdDSA,
		KeyLifetimeSecs: uint32((5 * 365 * 24 * time.Hour).Seconds()),
		Time:            func() time.Time { return created },
	})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestReleaseMissing(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	c, log := testClient(t)
	url := a.URL("debian") + "/dists/bookworm-updates/InRelease"

	_, err := c.Release(context.Background(), testRepo(t, a, "bookworm-updates"), now)
	wantErr(t, err, `"bookworm-updates"`, url, "404")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("error %v is not ErrNotFound", err)
	}

	opt := testRepo(t, a, "bookworm-updates")
	opt.Optional = true
	rel, err := c.Release(context.Background(), opt, now)
	if err != nil || rel != nil {
		t.Fatalf("optional missing suite: got %v, %v; want nil, nil", rel, err)
	}
	if !strings.Contains(log(), "skipping it") || !strings.Contains(log(), url) {
		t.Errorf("log %q does not note the skipped suite", log())
	}
	if n := a.Requests("debian/dists/bookworm-updates/InRelease"); n != 2 {
		t.Errorf("got %d requests for the missing InRelease, want 2 (no retries)", n)
	}
}

// A snapshot's missing suite is asked for again each time, never cached
// as missing: a 404 from a server having a bad moment must not drop the
// security updates of every later build.
func TestReleaseSnapshotMissingNotCached(t *testing.T) {
	a := apttest.New(t,
		apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}},
		apttest.Suite{Name: "bookworm-updates", Debs: []apttest.Deb{{Name: "foo", Version: "1.1"}}})
	c, _ := testClient(t)
	path := "archive/debian/" + snapshotStamp + "/dists/bookworm-updates/InRelease"
	repo := snapshotRepo(t, a, "bookworm-updates")
	repo.Optional = true
	a.Fail(path, 404)
	if rel, err := c.Release(context.Background(), repo, now); rel != nil || err != nil {
		t.Fatalf("optional, 404: got %v, %v", rel, err)
	}
	a.Fail(path, 0)
	rel, err := c.Release(context.Background(), repo, now)
	if err != nil || rel == nil {
		t.Fatalf("after the 404: got %v, %v; want the suite", rel, err)
	}
	if n := a.Requests(path); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestReleaseValidUntil(t *testing.T) {
	until := time.Date(2024, 1, 8, 0, 0, 0, 0, time.UTC)
	a := apttest.New(t, apttest.Suite{Name: "bookworm-security", Archive: "debian", ValidUntil: until,
		Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	c, _ := testClient(t)

	rel, err := c.Release(context.Background(), testRepo(t, a, "bookworm-security"), until.Add(-time.Hour))
	if err != nil {
		t.Fatalf("before Valid-Until: %v", err)
	}
	if !rel.ValidUntil.Equal(until) {
		t.Errorf("ValidUntil = %v, want %v", rel.ValidUntil, until)
	}

	_, err = c.Release(context.Background(), testRepo(t, a, "bookworm-security"), now)
	wantErr(t, err, `"bookworm-security"`, a.URL("debian")+"/dists/bookworm-security/InRelease", "Valid-Until", "08 Jan 2024")

	// A snapshot is read as of its time: valid then, it verifies years
	// later; expired then, it does not.
	snap := snapshotRepo(t, a, "bookworm-security")
	if _, err := c.Release(context.Background(), snap, until.Add(-time.Hour)); err != nil {
		t.Errorf("snapshot before Valid-Until: %v", err)
	}
	_, err = c.Release(context.Background(), snap, until.Add(time.Hour))
	wantErr(t, err, `"bookworm-security"`, "expired before the snapshot time Mon, 08 Jan 2024 01:00:00 UTC", "Valid-Until Mon, 08 Jan 2024 00:00:00 UTC")
}

// A snapshot's Release dated after the snapshot time is not the
// snapshot's: an archive replaying Releases out of order is refused, and
// so is what the cache holds for the same URL.
func TestReleaseSnapshotDate(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	c, _ := testClient(t)
	repo := snapshotRepo(t, a, "bookworm")
	if _, err := c.Release(context.Background(), repo, apttest.Epoch); err != nil {
		t.Fatalf("Date at the snapshot time: %v", err)
	}
	early := apttest.Epoch.Add(-time.Second)
	rel, err := c.Release(context.Background(), repo, early)
	wantErr(t, err, `suite "bookworm"`, "dated Mon, 01 Jan 2024 00:00:00 UTC, after the snapshot time Sun, 31 Dec 2023 23:59:59 UTC")
	if rel != nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("got %v, %q: want no Release and a one-line error", rel, err)
	}
}

// A snapshot's InRelease is checked as of its Date: the key that signed
// it may have expired since.
func TestReleaseSnapshotExpiredKey(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	key := expiringKey(t)
	kr := filepath.Join(t.TempDir(), "old.gpg")
	if err := apttest.WriteKeyring(kr, key); err != nil {
		t.Fatal(err)
	}
	// The Release as of 2002, signed moments after its Date, as dak does.
	date := time.Date(2002, 3, 4, 5, 6, 7, 0, time.UTC)
	release := bytes.Replace(a.Get("debian/dists/bookworm/Release"),
		[]byte("Date: Mon, 01 Jan 2024 00:00:00 UTC"), []byte("Date: Mon, 04 Mar 2002 05:06:07 UTC"), 1)
	signed, err := apttest.ClearSign(key, release, date.Add(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	a.Set("debian/dists/bookworm/InRelease", signed)

	c, _ := testClient(t)
	snap := snapshotRepo(t, a, "bookworm")
	snap.Keyring = keyring(t, kr)
	rel, err := c.Release(context.Background(), snap, now)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if !rel.Date.Equal(date) {
		t.Errorf("Date = %v, want %v", rel.Date, date)
	}

	live := testRepo(t, a, "bookworm")
	live.Keyring = snap.Keyring
	_, err = c.Release(context.Background(), live, now)
	wantErr(t, err, `"bookworm"`, "key expired")
}

func TestReleaseWrongSuite(t *testing.T) {
	a := apttest.New(t,
		apttest.Suite{Name: "bullseye", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}},
		apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "2.0"}}})
	a.Set("debian/dists/bookworm/InRelease", a.Get("debian/dists/bullseye/InRelease"))
	c, _ := testClient(t)
	_, err := c.Release(context.Background(), testRepo(t, a, "bookworm"), now)
	wantErr(t, err, `"bookworm"`, `for suite "bullseye"`)
}

func TestReleaseSnapshotCached(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	c, _ := testClient(t)
	repo := snapshotRepo(t, a, "bookworm")
	path := "archive/debian/" + snapshotStamp + "/dists/bookworm/InRelease"
	for i := range 2 {
		if _, err := c.Release(context.Background(), repo, now); err != nil {
			t.Fatal(err)
		}
		if n := a.Requests(path); n != 1 {
			t.Fatalf("after Release %d: %d requests, want 1", i+1, n)
		}
	}
	// Not for a live archive, whose InRelease changes.
	live := testRepo(t, a, "bookworm")
	for range 2 {
		if _, err := c.Release(context.Background(), live, now); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.Requests("debian/dists/bookworm/InRelease"); n != 2 {
		t.Errorf("live: %d requests, want 2", n)
	}
}

// A lock pins a live suite's InRelease by its SHA-256: Release reads it
// from the cache with no request, checks its signature as of its Date
// (the lock may outlive its Valid-Until and its key), and fetches it as
// usual when the cache lacks it or it no longer verifies.
func TestReleasePinned(t *testing.T) {
	until := time.Date(2024, 1, 8, 0, 0, 0, 0, time.UTC)
	a := apttest.New(t, apttest.Suite{Name: "bookworm", ValidUntil: until, Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	c, _ := testClient(t)
	repo := testRepo(t, a, "bookworm")
	rel, err := c.Release(context.Background(), repo, until.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Every verified InRelease is cached by content.
	if _, ok := c.Cache.Lookup(rel.SHA256, -1); !ok {
		t.Fatalf("the verified InRelease is not cached as sha256/%s", rel.SHA256)
	}

	offline, logged := testClient(t)
	offline.Cache, offline.Offline = c.Cache, true
	_, err = offline.Release(context.Background(), repo, now)
	if !errors.Is(err, ErrOffline) {
		t.Errorf("offline, unpinned: %v, want ErrOffline", err)
	}
	pinned := repo
	pinned.Pin = rel.SHA256
	got, err := offline.Release(context.Background(), pinned, now)
	if err != nil {
		t.Fatalf("offline, pinned, past Valid-Until: %v", err)
	}
	if got.SHA256 != rel.SHA256 || got.Codename != "bookworm" {
		t.Errorf("pinned: got %s %q, want %s", got.SHA256, got.Codename, rel.SHA256)
	}
	if n := a.Requests("debian/dists/bookworm/InRelease"); n != 1 {
		t.Errorf("%d requests, want 1: the pinned file is read from the cache", n)
	}

	// Signed by a key the keyring lacks: fetched, and offline refused.
	other := pinned
	_, otherKeyring := apttest.NewKey(t)
	other.Keyring = keyring(t, otherKeyring)
	_, err = offline.Release(context.Background(), other, now)
	if log := logged(); !errors.Is(err, ErrOffline) || !strings.Contains(log, "the pinned InRelease sha256:"+rel.SHA256+": suite \"bookworm\"") ||
		!strings.Contains(log, "no signature by a key in the keyring") {
		t.Errorf("pinned, other keyring: %v\n%s", err, logged())
	}

	// A damaged entry is not the pinned file: removed, and fetched.
	p := filepath.Join(c.Cache.Dir, "sha256", rel.SHA256)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Replace(data, []byte("bookworm"), []byte("bookwork"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := offline.Release(context.Background(), pinned, now); !errors.Is(err, ErrOffline) {
		t.Errorf("pinned, damaged entry: %v, want ErrOffline", err)
	}
	if _, err := c.Release(context.Background(), pinned, until.Add(-time.Hour)); err != nil {
		t.Errorf("pinned, damaged entry, online: %v", err)
	}
	if n := a.Requests("debian/dists/bookworm/InRelease"); n != 2 {
		t.Errorf("%d requests, want 2: the damaged entry fetched again", n)
	}
}

// A cached snapshot InRelease is verified again when read.
func TestReleaseSnapshotCacheVerified(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	c, _ := testClient(t)
	repo := snapshotRepo(t, a, "bookworm")
	if _, err := c.Release(context.Background(), repo, now); err != nil {
		t.Fatal(err)
	}
	// The cache's one url/ entry (see cache.Cache) is the InRelease.
	entries, err := filepath.Glob(filepath.Join(c.Cache.Dir, "url", "*"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("url entries %q, %v", entries, err)
	}
	p := entries[0]
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, bytes.Replace(data, []byte("Codename: bookworm"), []byte("Codename: bookwork"), 1), 0o644)
	rel, err := c.Release(context.Background(), repo, now)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Codename != "bookworm" {
		t.Errorf("got codename %q from a tampered cache entry", rel.Codename)
	}
	if n := a.Requests("archive/debian/" + snapshotStamp + "/dists/bookworm/InRelease"); n != 2 {
		t.Errorf("got %d requests, want 2: the bad entry refetched", n)
	}
}

func TestVerifyInReleaseMalformed(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	signed := a.Get("debian/dists/bookworm/InRelease")
	kr := keyring(t, a.KeyringPath)
	at := func(*packet.Signature) time.Time { return now }
	if _, err := verifyInRelease(signed, kr, at); err != nil {
		t.Fatalf("untouched: %v", err)
	}
	for name, data := range map[string][]byte{
		"unsigned":       a.Get("debian/dists/bookworm/Release"),
		"text before":    append([]byte("Suite: evil\n\n"), signed...),
		"text after":     append(append([]byte{}, signed...), "Suite: evil\n"...),
		"two messages":   append(append([]byte{}, signed...), signed...),
		"no signature":   signed[:bytes.Index(signed, []byte("-----BEGIN PGP SIGNATURE"))],
		"empty":          nil,
		"signature only": signed[bytes.Index(signed, []byte("-----BEGIN PGP SIGNATURE")):],
	} {
		if _, err := verifyInRelease(data, kr, at); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// Debian's own InRelease files: several signatures by RSA subkeys of
// different release keys.
func TestVerifyDebianInRelease(t *testing.T) {
	data, err := os.ReadFile("testdata/inrelease/bookworm-updates.InRelease")
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2026, 11, 24, 2, 12, 15, 0, time.UTC)
	repo := func(keys string, snapshot bool) Repository {
		return Repository{URL: "http://archive.invalid/debian", Suite: "bookworm-updates",
			Keyring: keyring(t, "testdata/inrelease/"+keys+"-automatic.gpg"), Snapshot: snapshot}
	}
	// The first signature is by the bookworm key, the second by trixie's.
	for _, keys := range []string{"bookworm", "trixie"} {
		rel, err := readRelease(data, repo(keys, false), date.Add(time.Hour), false)
		if err != nil {
			t.Fatalf("%s key: %v", keys, err)
		}
		if rel.Suite != "oldstable-updates" || !rel.Date.Equal(date) || rel.Files["main/binary-amd64/Packages.xz"].Size != 6924 {
			t.Errorf("%s key: got %+v", keys, rel)
		}
	}
	_, err = readRelease(data, repo("bullseye", false), date.Add(time.Hour), false)
	wantErr(t, err, "no signature by a key in the keyring", "6ED0E7B82643E131", "78DBA3BC47EF2265")

	// Dak signs after writing Date: checked as of the Date alone, the
	// signatures would be from the future.
	if _, err := readRelease(data, repo("bookworm", true), date.Add(time.Hour), false); err != nil {
		t.Errorf("snapshot: %v", err)
	}
	// The bookworm keys expire in 2031.
	later := time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = readRelease(data, repo("bookworm", false), later, false)
	wantErr(t, err, "key expired")
	if _, err := readRelease(data, repo("bookworm", true), later, false); err != nil {
		t.Errorf("snapshot in 2032: %v", err)
	}

	tampered := bytes.Replace(data, []byte("Version: 12-updates"), []byte("Version: 13-updates"), 1)
	_, err = readRelease(tampered, repo("bookworm", false), date.Add(time.Hour), false)
	wantErr(t, err, "bad signature")
}

func TestParseRelease(t *testing.T) {
	body := `Origin: Debian
Label: Debian
Suite: stable
Version: 13.1
Codename: trixie
NotAutomatic: no
ButAutomaticUpgrades: yes
Date: Sat, 1 Mar 2025 10:00:00 +0000
Valid-Until: Sat, 08 Mar 2025 10:00:00 UTC
Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib
Description: Debian 13
MD5Sum:
 0123456789abcdef0123456789abcdef 10 main/binary-amd64/Packages
SHA256:
 ` + strings.Repeat("AB", 32) + `       10 main/binary-amd64/Packages
 ` + strings.Repeat("cd", 32) + ` 7 main/binary-amd64/Packages.xz
`
	rel, err := parseRelease([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := Release{
		Suite: "stable", Codename: "trixie",
		Origin: "Debian", Label: "Debian", Version: "13.1", ButAutomaticUpgrades: true,
		Date:          time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
		ValidUntil:    time.Date(2025, 3, 8, 10, 0, 0, 0, time.UTC),
		Architectures: []string{"all", "amd64", "arm64"},
		Components:    []string{"main", "contrib"},
		AcquireByHash: true,
		Files: map[string]FileHash{
			"main/binary-amd64/Packages":    {10, strings.Repeat("ab", 32)},
			"main/binary-amd64/Packages.xz": {7, strings.Repeat("cd", 32)},
		},
	}
	if fmt.Sprint(*rel) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", *rel, want)
	}

	for name, bad := range map[string]string{
		"no date":    "Suite: x\nSHA256:\n " + strings.Repeat("ab", 32) + " 1 f\n",
		"bad date":   "Date: yesterday\nSHA256:\n " + strings.Repeat("ab", 32) + " 1 f\n",
		"no files":   "Date: Sat, 01 Mar 2025 10:00:00 UTC\n",
		"bad hash":   "Date: Sat, 01 Mar 2025 10:00:00 UTC\nSHA256:\n abc 1 f\n",
		"bad size":   "Date: Sat, 01 Mar 2025 10:00:00 UTC\nSHA256:\n " + strings.Repeat("ab", 32) + " -1 f\n",
		"bad until":  "Date: Sat, 01 Mar 2025 10:00:00 UTC\nValid-Until: soon\nSHA256:\n " + strings.Repeat("ab", 32) + " 1 f\n",
		"empty":      "",
		"not fields": "hello\n",
	} {
		if _, err := parseRelease([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A signature made with SHA-1 (or weaker) is refused, as apt 2.6 does,
// even by a key in the keyring.
func TestReleaseWeakDigest(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	a.Set("debian/dists/bookworm/InRelease", clearSignWith(t, a.Key, a.Get("debian/dists/bookworm/Release"), crypto.SHA1))
	c, _ := testClient(t)
	rel, err := c.Release(context.Background(), testRepo(t, a, "bookworm"), now)
	wantErr(t, err, `suite "bookworm"`, "SHA-1 digest, too weak")
	if rel != nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("got %v, %q: want no Release and a one-line error", rel, err)
	}

	// The same by SHA-256 verifies: the refusal is the digest's.
	a.Set("debian/dists/bookworm/InRelease", clearSignWith(t, a.Key, a.Get("debian/dists/bookworm/Release"), crypto.SHA256))
	if _, err := c.Release(context.Background(), testRepo(t, a, "bookworm"), now); err != nil {
		t.Fatal(err)
	}
}

// A weak signature is not let through by a strong one from the same key
// that does not verify: the signature checked for its digest is the one
// verified.
func TestReleaseWeakDigestBesideBogus(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	text := a.Get("debian/dists/bookworm/Release")
	weak := signWith(t, a.Key, text, crypto.SHA1)
	bogus := signWith(t, a.Key, []byte("another text\n"), crypto.SHA256)
	a.Set("debian/dists/bookworm/InRelease", clearSigned(t, text, "SHA1", weak, bogus))
	c, _ := testClient(t)
	rel, err := c.Release(context.Background(), testRepo(t, a, "bookworm"), now)
	wantErr(t, err, `suite "bookworm"`, "SHA-1 digest, too weak", "invalid signature")
	if rel != nil {
		t.Errorf("got %v: want no Release", rel)
	}

	// The other way round: a bogus weak one does not hide a good strong
	// one.
	good := signWith(t, a.Key, text, crypto.SHA256)
	a.Set("debian/dists/bookworm/InRelease", clearSigned(t, text, "SHA1", weak, good))
	if _, err := c.Release(context.Background(), testRepo(t, a, "bookworm"), now); err != nil {
		t.Fatal(err)
	}
}

// clearSignWith clearsigns text with key using digest h, which go-crypto's
// clearsign.Encode would not write for SHA-1.
func clearSignWith(t *testing.T, key *openpgp.Entity, text []byte, h crypto.Hash) []byte {
	t.Helper()
	name := map[crypto.Hash]string{crypto.SHA1: "SHA1", crypto.SHA256: "SHA256"}[h]
	return clearSigned(t, text, name, signWith(t, key, text, h))
}

// signWith returns key's signature of text, as clearsigned, by digest h.
func signWith(t *testing.T, key *openpgp.Entity, text []byte, h crypto.Hash) *packet.Signature {
	t.Helper()
	text = bytes.TrimSuffix(text, []byte("\n"))
	id := key.PrimaryKey.KeyId
	sig := &packet.Signature{Version: 4, SigType: packet.SigTypeText, PubKeyAlgo: key.PrimaryKey.PubKeyAlgo,
		Hash: h, CreationTime: apttest.Epoch, IssuerKeyId: &id}
	hasher, err := sig.PrepareSign(nil)
	if err != nil {
		t.Fatal(err)
	}
	hasher.Write(bytes.ReplaceAll(text, []byte("\n"), []byte("\r\n")))
	// No salt notation: go-crypto has no salt size for SHA-1.
	noSalt := false
	config := &packet.Config{Time: func() time.Time { return apttest.Epoch }, NonDeterministicSignaturesViaNotation: &noSalt}
	if err := sig.Sign(hasher, key.PrivateKey, config); err != nil {
		t.Fatal(err)
	}
	return sig
}

// clearSigned writes text clearsigned with sigs, its Hash header hash.
func clearSigned(t *testing.T, text []byte, hash string, sigs ...*packet.Signature) []byte {
	t.Helper()
	var out bytes.Buffer
	fmt.Fprintf(&out, "-----BEGIN PGP SIGNED MESSAGE-----\nHash: %s\n\n%s\n", hash, bytes.TrimSuffix(text, []byte("\n")))
	w, err := armor.Encode(&out, "PGP SIGNATURE", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range sigs {
		if err := sig.Serialize(w); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	out.WriteByte('\n')
	return out.Bytes()
}
