package apt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/plan"
)

// debArchive serves three debs and returns them as resolved Debs.
func debArchive(t *testing.T) (*apttest.Archive, []plan.Package) {
	t.Helper()
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{
		{Name: "aa", Version: "1.0", Files: []apttest.File{{Path: "usr/share/aa", Body: "aa"}}},
		{Name: "bb", Version: "2.0", Files: []apttest.File{{Path: "usr/share/bb", Body: "bb"}}},
		{Name: "cc", Version: "3.0", Arch: "all", Files: []apttest.File{{Path: "usr/share/cc", Body: "cc"}}},
	}})
	c, _ := testClient(t)
	repo := testRepo(t, a, "bookworm")
	rel, err := c.Release(context.Background(), repo, now)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := c.Packages(context.Background(), repo, rel, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	var debs []plan.Package
	for _, p := range pkgs {
		debs = append(debs, plan.Package{Name: p.Name, Version: p.Version.String(), Architecture: p.Architecture,
			URL: p.URL(), Size: p.Size, SHA256: p.SHA256})
	}
	if len(debs) != 3 {
		t.Fatalf("got %d debs", len(debs))
	}
	return a, debs
}

func debPath(a *apttest.Archive, d plan.Package) string {
	return strings.TrimPrefix(d.URL, a.URL(""))
}

func checkDownloaded(t *testing.T, a *apttest.Archive, c *cache.Cache, debs []plan.Package, paths map[string]string) {
	t.Helper()
	if len(paths) != len(debs) {
		t.Errorf("got %d paths for %d debs", len(paths), len(debs))
	}
	for _, d := range debs {
		p := paths[d.SHA256]
		if p != filepath.Join(c.Dir, "sha256", d.SHA256) {
			t.Errorf("%s: path %q", d.Name, p)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, a.Deb("debian", d.Name)) {
			t.Errorf("%s: cached file differs from the deb (%v)", d.Name, err)
		}
	}
}

func TestDownload(t *testing.T) {
	a, debs := debArchive(t)
	c, _ := testClient(t)
	paths, err := c.Download(context.Background(), append(debs, debs[0]), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkDownloaded(t, a, c.Cache, debs, paths)

	// Cached debs are never fetched again, by this client or another.
	c2 := &Client{Cache: c.Cache}
	paths2, err := c2.Download(context.Background(), debs, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkDownloaded(t, a, c.Cache, debs, paths2)
	for _, d := range debs {
		if n := a.Requests(debPath(a, d)); n != 1 {
			t.Errorf("%s fetched %d times, want 1", d.Name, n)
		}
	}
}

func TestDownloadMismatch(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		tamper    func([]byte) []byte
	}{
		{"hash", "sha256 mismatch", func(b []byte) []byte {
			b = bytes.Clone(b)
			b[len(b)-1] ^= 0xff
			return b
		}},
		{"size", "size mismatch", func(b []byte) []byte { return append(bytes.Clone(b), '\n') }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, debs := debArchive(t)
			bad := debs[1]
			a.Set(debPath(a, bad), tc.tamper(a.Deb("debian", bad.Name)))
			c, _ := testClient(t)
			paths, err := c.Download(context.Background(), debs, 1, nil)
			wantErr(t, err, bad.Name, bad.URL, tc.msg)
			if paths != nil {
				t.Errorf("got paths %v with an error", paths)
			}
			if _, err := os.Stat(filepath.Join(c.Cache.Dir, "sha256", bad.SHA256)); !os.IsNotExist(err) {
				t.Errorf("bad deb is in the cache (%v)", err)
			}
			// Nothing half-written either.
			entries, _ := os.ReadDir(filepath.Join(c.Cache.Dir, "sha256"))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".tmp") {
					t.Errorf("left %s", e.Name())
				}
			}
		})
	}
}

func TestDownloadNotFound(t *testing.T) {
	a, debs := debArchive(t)
	missing := debs[0]
	a.Fail(debPath(a, missing), http.StatusNotFound)
	c, _ := testClient(t)
	_, err := c.Download(context.Background(), debs, 1, nil)
	wantErr(t, err, missing.Name, missing.URL, "404")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("%v is not ErrNotFound", err)
	}
	if n := a.Requests(debPath(a, missing)); n != 1 {
		t.Errorf("%d requests for the missing deb, want 1", n)
	}
	// With one worker, the first failure stops the rest.
	for _, d := range debs[1:] {
		if n := a.Requests(debPath(a, d)); n != 0 {
			t.Errorf("%s fetched %d times after the failure", d.Name, n)
		}
	}
	assertNoEntries(t, c.Cache)
}

// Two processes sharing a cache at once both succeed.
func TestDownloadSharedCache(t *testing.T) {
	a, debs := debArchive(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	results := make([]map[string]string, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Go(func() {
			cc, err := cache.Open(dir)
			if err != nil {
				errs[i] = err
				return
			}
			c := &Client{Cache: cc}
			results[i], errs[i] = c.Download(context.Background(), debs, 3, nil)
		})
	}
	wg.Wait()
	cc := &cache.Cache{Dir: dir}
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		checkDownloaded(t, a, cc, debs, results[i])
	}
}

func TestDownloadRefusesUnverifiable(t *testing.T) {
	c, _ := testClient(t)
	for _, d := range []plan.Package{
		{Name: "nohash", URL: "http://archive.invalid/x.deb", Size: 10},
		{Name: "nosize", URL: "http://archive.invalid/x.deb", SHA256: strings.Repeat("a", 64)},
		{Name: "badhash", URL: "http://archive.invalid/x.deb", Size: 10, SHA256: "../../etc/passwd"},
	} {
		_, err := c.Download(context.Background(), []plan.Package{d}, 1, nil)
		wantErr(t, err, d.Name, d.URL)
	}
	if _, err := (&Client{}).Download(context.Background(), nil, 1, nil); err == nil {
		t.Error("no error without a cache")
	}
}

// progressLog collects Download's reports, from its several goroutines.
type progressLog struct {
	mu   sync.Mutex
	seen []DownloadProgress
}

func (l *progressLog) add(p DownloadProgress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, p)
}

// TestDownloadProgress checks what Download reports: the debs to fetch
// and their bytes, each deb as it arrives, the bytes of an attempt that
// failed taken back; and the debs the cache held.
func TestDownloadProgress(t *testing.T) {
	_, debs := debArchive(t)
	c, _ := testClient(t)
	var total int64
	for _, d := range debs {
		total += d.Size
	}
	var log progressLog
	if _, err := c.Download(context.Background(), debs, 2, log.add); err != nil {
		t.Fatal(err)
	}
	if want := (DownloadProgress{Total: 3, TotalBytes: total}); log.seen[0] != want {
		t.Errorf("first report %+v, want %+v", log.seen[0], want)
	}
	var done []int
	for _, p := range log.seen[1:] {
		done = append(done, p.Done)
	}
	slices.Sort(done)
	if !slices.Equal(done, []int{1, 2, 3}) {
		t.Errorf("reports of %v debs fetched, want one each: %+v", done, log.seen)
	}
	if last := slices.MaxFunc(log.seen, func(a, b DownloadProgress) int { return a.Done - b.Done }); last.Bytes != total {
		t.Errorf("all fetched: %d of %d bytes", last.Bytes, total)
	}

	// All cached: one report.
	log = progressLog{}
	if _, err := c.Download(context.Background(), debs, 2, log.add); err != nil {
		t.Fatal(err)
	}
	if want := []DownloadProgress{{Cached: 3}}; !slices.Equal(log.seen, want) {
		t.Errorf("all cached: reports %+v, want %+v", log.seen, want)
	}

	// A truncated body is fetched again: its bytes count once.
	body := strings.Repeat("0123456789", 100_000)
	srv, n := flaky(t, 1, func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write([]byte(body[:len(body)/2]))
	}, body)
	sum := sha256.Sum256([]byte(body))
	d := plan.Package{Name: "big", URL: srv.URL + "/big.deb", Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}
	log = progressLog{}
	if _, err := c.Download(context.Background(), []plan.Package{d}, 1, log.add); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("%d requests, want 2", n.Load())
	}
	for _, p := range log.seen {
		if p.Bytes > d.Size || p.Bytes < 0 {
			t.Errorf("reported %d of %d bytes", p.Bytes, d.Size)
		}
	}
	if last := log.seen[len(log.seen)-1]; last != (DownloadProgress{Done: 1, Total: 1, Bytes: d.Size, TotalBytes: d.Size}) {
		t.Errorf("last report %+v", last)
	}
	if len(log.seen) < 4 {
		t.Errorf("%d reports of a %d-byte download fetched twice: want some every %d bytes", len(log.seen), d.Size, progressStep)
	}
}
