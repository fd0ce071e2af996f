package apt

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/cache"
)

func TestPackages(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Components: []string{"main", "contrib"}, Debs: []apttest.Deb{
		{Name: "libc6", Version: "2.36-9+deb12u4", Fields: map[string]string{
			"Source": "glibc", "Multi-Arch": "same", "Priority": "optional",
			"Depends": "libgcc-s1", "Provides": "libc6-x (= 1)"}},
		{Name: "dash", Version: "0.5.12-2", Fields: map[string]string{
			"Essential": "yes", "Priority": "required",
			"Pre-Depends": "libc6 (>= 2.34), debianutils (>= 5.6-0.1)"}},
		{Name: "tool", Version: "1:2.0-1", Arch: "all", Fields: map[string]string{
			"Source": "toolsrc (1:2.0-0.1)", "Depends": "perl:any | python3 (<< 4), libc6", "Component": "contrib"}},
	}})
	c, _ := testClient(t)
	repo := testRepo(t, a, "bookworm")
	repo.Components = []string{"main", "contrib"}
	rel, err := c.Release(context.Background(), repo, now)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := c.Packages(context.Background(), repo, rel, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Package{}
	for _, p := range pkgs {
		byName[p.Name] = p
	}
	if len(pkgs) != 3 || len(byName) != 3 {
		t.Fatalf("got %d packages: %v", len(pkgs), byName)
	}

	libc := byName["libc6"]
	data := a.Deb("debian", "libc6")
	if libc.Version.String() != "2.36-9+deb12u4" || libc.Architecture != "amd64" || libc.MultiArch != "same" ||
		libc.Priority != "optional" || libc.Essential || libc.Source != "glibc" || libc.SourceVersion != "2.36-9+deb12u4" ||
		libc.Size != int64(len(data)) || libc.SHA256 != sha256hex(data) ||
		libc.ArchiveURL != a.URL("debian") || libc.Suite != "bookworm" || libc.Component != "main" ||
		libc.URL() != a.URL("debian")+"/"+strings.TrimPrefix(a.Path("debian", "bookworm", "libc6"), "debian/") {
		t.Errorf("libc6: got %+v", libc)
	}
	if got := libc.Depends.String() + "; " + libc.Provides.String(); got != "libgcc-s1; libc6-x (= 1)" {
		t.Errorf("libc6 relations: %s", got)
	}

	dash := byName["dash"]
	if !dash.Essential || dash.Priority != "required" || dash.Source != "dash" || dash.SourceVersion != "0.5.12-2" {
		t.Errorf("dash: got %+v", dash)
	}
	if got := dash.PreDepends.String(); got != "libc6 (>= 2.34), debianutils (>= 5.6-0.1)" {
		t.Errorf("dash Pre-Depends: %s", got)
	}

	tool := byName["tool"]
	if tool.Component != "contrib" || tool.Architecture != "all" || tool.Version.Epoch != 1 ||
		tool.Source != "toolsrc" || tool.SourceVersion != "1:2.0-0.1" {
		t.Errorf("tool: got %+v", tool)
	}
	if got := tool.Depends.String(); got != "perl:any | python3 (<< 4), libc6" {
		t.Errorf("tool Depends: %s", got)
	}

	// The xz index was the one fetched.
	if n := a.Requests("debian/dists/bookworm/main/binary-amd64/Packages.xz"); n != 1 {
		t.Errorf("%d requests for Packages.xz, want 1", n)
	}
}

func TestPackagesMismatch(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		tamper    func([]byte) []byte
	}{
		{"hash", "sha256 mismatch", func(b []byte) []byte {
			b = bytes.Clone(b)
			b[len(b)/2] ^= 1
			return b
		}},
		{"shorter", "size mismatch", func(b []byte) []byte { return b[:len(b)-1] }},
		{"longer", "size mismatch", func(b []byte) []byte { return append(bytes.Clone(b), 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
			path := "debian/dists/bookworm/main/binary-amd64/Packages.xz"
			a.Set(path, tc.tamper(a.Get(path)))
			c, _ := testClient(t)
			repo := testRepo(t, a, "bookworm")
			rel, err := c.Release(context.Background(), repo, now)
			if err != nil {
				t.Fatal(err)
			}
			pkgs, err := c.Packages(context.Background(), repo, rel, "amd64")
			wantErr(t, err, `"bookworm"`, "main/binary-amd64/Packages.xz", a.URL("debian")+"/dists/bookworm/main/binary-amd64/Packages.xz", tc.msg)
			if pkgs != nil {
				t.Errorf("got packages from a bad index")
			}
			assertNoEntries(t, c.Cache, rel.SHA256)
		})
	}
}

// assertNoEntries fails if the content cache holds any file but those
// named by the SHA-256s in verified (InRelease files).
func assertNoEntries(t *testing.T, c *cache.Cache, verified ...string) {
	t.Helper()
	entries, err := os.ReadDir(c.Dir + "/sha256")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(verified, e.Name()) {
			t.Errorf("cache holds %s", e.Name())
		}
	}
}

func TestPackagesMissingComponentOrArch(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	c, _ := testClient(t)
	repo := testRepo(t, a, "bookworm")
	rel, err := c.Release(context.Background(), repo, now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Packages(context.Background(), repo, rel, "arm64")
	wantErr(t, err, `"bookworm"`, "arm64")
	repo.Components = []string{"main", "non-free"}
	_, err = c.Packages(context.Background(), repo, rel, "amd64")
	wantErr(t, err, `"bookworm"`, "non-free/binary-amd64/Packages")
}

// A repeat resolution against a snapshot needs no network once the cache
// is warm.
func TestPackagesSnapshotCached(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	cc, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo := snapshotRepo(t, a, "bookworm")
	prefix := "archive/debian/" + snapshotStamp + "/dists/bookworm/"
	paths := []string{prefix + "InRelease", prefix + "main/binary-amd64/Packages.xz"}
	for run := 1; run <= 2; run++ {
		c := &Client{Cache: cc} // a new process, say
		rel, err := c.Release(context.Background(), repo, now)
		if err != nil {
			t.Fatal(err)
		}
		pkgs, err := c.Packages(context.Background(), repo, rel, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if len(pkgs) != 1 || pkgs[0].Name != "foo" || pkgs[0].ArchiveURL != repo.URL {
			t.Errorf("run %d: got %+v", run, pkgs)
		}
		for _, p := range paths {
			if n := a.Requests(p); n != 1 {
				t.Errorf("run %d: %d requests for %s, want 1", run, n, p)
			}
		}
	}
}

func TestPackagesWithoutCache(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	c := &Client{}
	repo := testRepo(t, a, "bookworm")
	rel, err := c.Release(context.Background(), repo, now)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := c.Packages(context.Background(), repo, rel, "amd64")
	if err != nil || len(pkgs) != 1 || pkgs[0].Name != "foo" {
		t.Fatalf("got %v, %v", pkgs, err)
	}
}

func TestPickIndex(t *testing.T) {
	h := FileHash{1, strings.Repeat("a", 64)}
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{"main/binary-amd64/Packages", "main/binary-amd64/Packages.gz", "main/binary-amd64/Packages.xz"}, "main/binary-amd64/Packages.xz"},
		{[]string{"main/binary-amd64/Packages", "main/binary-amd64/Packages.gz"}, "main/binary-amd64/Packages.gz"},
		{[]string{"main/binary-amd64/Packages"}, "main/binary-amd64/Packages"},
		{[]string{"main/binary-amd64/Packages.bz2", "main/binary-i386/Packages"}, ""},
	} {
		rel := &Release{Files: map[string]FileHash{}}
		for _, f := range tc.files {
			rel.Files[f] = h
		}
		got, _, ok := pickIndex(rel, "main/binary-amd64/Packages")
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%v: got %q, %v; want %q", tc.files, got, ok, tc.want)
		}
	}
}

// With Acquire-By-Hash the index is fetched by its hash, and by name if
// the mirror lacks that.
func TestPackagesByHash(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	dists := "debian/dists/bookworm/"
	release := bytes.Replace(a.Get(dists+"Release"), []byte("Acquire-By-Hash: no"), []byte("Acquire-By-Hash: yes"), 1)
	signed, err := apttest.ClearSign(a.Key, release, apttest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	a.Set(dists+"InRelease", signed)
	index := a.Get(dists + "main/binary-amd64/Packages.xz")
	byHash := dists + "main/binary-amd64/by-hash/SHA256/" + sha256hex(index)

	for _, served := range []bool{true, false} {
		if served {
			a.Set(byHash, index)
		} else {
			a.Set(byHash, nil)
		}
		c, _ := testClient(t)
		repo := testRepo(t, a, "bookworm")
		rel, err := c.Release(context.Background(), repo, now)
		if err != nil {
			t.Fatal(err)
		}
		if !rel.AcquireByHash {
			t.Fatal("AcquireByHash not parsed")
		}
		before := a.Requests(dists + "main/binary-amd64/Packages.xz")
		pkgs, err := c.Packages(context.Background(), repo, rel, "amd64")
		if err != nil || len(pkgs) != 1 {
			t.Fatalf("served %v: got %v, %v", served, pkgs, err)
		}
		byName := a.Requests(dists+"main/binary-amd64/Packages.xz") - before
		if served && byName != 0 || !served && byName != 1 {
			t.Errorf("by-hash served %v: %d requests by name", served, byName)
		}
	}
	if n := a.Requests(byHash); n != 2 {
		t.Errorf("%d by-hash requests, want 2", n)
	}
}

func TestParsePackages(t *testing.T) {
	index := "Package: a\r\n" +
		"Version: 1.0-1\n" +
		"Architecture: amd64\n" +
		"Description: short\n" +
		" long line one\n" +
		" .\n" +
		" Source: not a field\n" +
		"Size: 42\n" +
		"SHA256: " + strings.Repeat("AB", 32) + "\n" +
		"Filename: pool/main/a/a_1.0-1_amd64.deb\n" +
		"\n\n" +
		"Package: b\n" +
		"Source: bsrc\n" +
		"Version: 2\n" +
		"Depends: a (>= 1.0),\n" +
		" a (<< 2)\n" +
		"Provides: ${x}\n" // no final blank line
	pkgs, err := parsePackages(strings.NewReader(index))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 {
		t.Fatalf("got %d packages", len(pkgs))
	}
	a, b := pkgs[0], pkgs[1]
	if a.Name != "a" || a.Version.String() != "1.0-1" || a.Architecture != "amd64" || a.Size != 42 ||
		a.SHA256 != strings.Repeat("ab", 32) || a.Filename != "pool/main/a/a_1.0-1_amd64.deb" ||
		a.Source != "a" || a.SourceVersion != "1.0-1" {
		t.Errorf("a: %+v", a)
	}
	if b.Source != "bsrc" || b.SourceVersion != "2" || b.Depends.String() != "a (>= 1.0), a (<< 2)" ||
		len(b.Provides.Relations) != 1 || !b.Provides.Relations[0].Possibilities[0].Substvar {
		t.Errorf("b: %+v", b)
	}

	for name, bad := range map[string]string{
		"no name":      "Version: 1\n",
		"bad version":  "Package: a\nVersion: 1 2\n",
		"no version":   "Package: a\n",
		"bad size":     "Package: a\nVersion: 1\nSize: big\n",
		"bad depends":  "Package: a\nVersion: 1\nDepends: b (> 1)\n",
		"not a field":  "Package: a\nVersion 1\n",
		"continuation": " x\nPackage: a\n",
	} {
		if _, err := parsePackages(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// BenchmarkParsePackages parses $BASEBUILD_PACKAGES (an uncompressed
// Packages file, such as bookworm's main/binary-amd64) if set, or a
// synthetic index.
func BenchmarkParsePackages(b *testing.B) {
	var data []byte
	if path := os.Getenv("BASEBUILD_PACKAGES"); path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	} else {
		var buf bytes.Buffer
		for i := range 10000 {
			fmt.Fprintf(&buf, "Package: pkg%d\nSource: src%d (1:1.%d-1)\nVersion: 1:1.%d-1+b1\nInstalled-Size: 100\n"+
				"Maintainer: Someone <someone@example.org>\nArchitecture: amd64\nMulti-Arch: same\n"+
				"Depends: libc6 (>= 2.34), libfoo%d (= 1:1.%d-1+b1), perl:any | python3:any (>= 3.11~)\n"+
				"Description: package %d\n A longer description\n .\n of the package.\nSection: libs\nPriority: optional\n"+
				"Filename: pool/main/p/pkg%d/pkg%d_1.%d-1+b1_amd64.deb\nSize: 12345\nMD5sum: %032x\nSHA256: %064x\n\n",
				i, i, i, i, i, i, i, i, i, i, i, i)
		}
		data = buf.Bytes()
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		pkgs, err := parsePackages(bytes.NewReader(data))
		if err != nil || len(pkgs) == 0 {
			b.Fatal(len(pkgs), err)
		}
	}
}

// A Packages index is decompressed no further than the uncompressed size
// the Release gives, even when its compressed hash matches: a bomb of
// 4 GiB is refused after a few bytes, not inflated.
func TestPackagesBomb(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	dists := "debian/dists/bookworm/"
	plain := a.Get(dists + "main/binary-amd64/Packages")

	// 64 gzip members of 64 MiB of empty lines each, which the parser
	// would skip: without the cap it would read them all.
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(bytes.Repeat([]byte("\n"), 64<<20))
	zw.Close()
	bomb := bytes.Repeat(member.Bytes(), 64)

	// A Release that lists the bomb by its own hash, and the real
	// uncompressed size: only the cap stands in the way.
	release := fmt.Sprintf("Origin: Debian\nSuite: bookworm\nCodename: bookworm\nDate: Mon, 01 Jan 2024 00:00:00 UTC\n"+
		"Architectures: amd64\nComponents: main\nSHA256:\n %s %d main/binary-amd64/Packages.gz\n %s %d main/binary-amd64/Packages\n",
		sha256hex(bomb), len(bomb), sha256hex(plain), len(plain))
	signed, err := apttest.ClearSign(a.Key, []byte(release), apttest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	a.Set(dists+"InRelease", signed)
	a.Set(dists+"main/binary-amd64/Packages.gz", bomb)

	for _, c := range []*Client{{}, func() *Client { c, _ := testClient(t); return c }()} {
		repo := testRepo(t, a, "bookworm")
		rel, err := c.Release(context.Background(), repo, now)
		if err != nil {
			t.Fatal(err)
		}
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		pkgs, err := c.Packages(context.Background(), repo, rel, "amd64")
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		wantErr(t, err, `suite "bookworm"`, "main/binary-amd64/Packages.gz", fmt.Sprintf("decompresses to more than %d bytes", len(plain)))
		if pkgs != nil {
			t.Errorf("got packages from a bomb: %v", pkgs)
		}
		// Allocation counts every byte decompressed: far below 4 GiB
		// (the bomb itself is 4 MiB, held once or twice).
		if n := after.TotalAlloc - before.TotalAlloc; n > 256<<20 {
			t.Errorf("allocated %d MiB reading the bomb", n>>20)
		}
	}
}

// When the Release gives no uncompressed size, nothing bounds an index's
// decompression but maxIndex: a man in the middle's bomb is then refused
// by its size and hash, before it is decompressed.
func TestPackagesBombUnsized(t *testing.T) {
	a := apttest.New(t, apttest.Suite{Name: "bookworm", Debs: []apttest.Deb{{Name: "foo", Version: "1.0"}}})
	dists := "debian/dists/bookworm/"

	// The repository's own Packages.gz, 256 KiB (stored, not
	// compressed), the only index its Release lists.
	var genuine bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&genuine, gzip.NoCompression)
	zw.Write(a.Get(dists + "main/binary-amd64/Packages"))
	zw.Write(bytes.Repeat([]byte("\n"), 256<<10))
	zw.Close()
	release := fmt.Sprintf("Origin: Debian\nSuite: bookworm\nCodename: bookworm\nDate: Mon, 01 Jan 2024 00:00:00 UTC\n"+
		"Architectures: amd64\nComponents: main\nSHA256:\n %s %d main/binary-amd64/Packages.gz\n",
		sha256hex(genuine.Bytes()), genuine.Len())
	signed, err := apttest.ClearSign(a.Key, []byte(release), apttest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	a.Set(dists+"InRelease", signed)

	// The bomb served in its place: one stanza whose Description goes on
	// for 320 MiB, which a parser would have to hold, in 20 gzip members
	// of 16 MiB each (each about 16 KiB compressed).
	var bomb bytes.Buffer
	zw, _ = gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zw.Write([]byte("Package: foo\nVersion: 1.0\nDescription: d\n"))
	zw.Close()
	var member bytes.Buffer
	zw, _ = gzip.NewWriterLevel(&member, gzip.BestCompression)
	line := append(append([]byte(" "), bytes.Repeat([]byte("x"), 1023)...), '\n')
	zw.Write(bytes.Repeat(line, 16<<10))
	zw.Close()
	bomb.Write(bytes.Repeat(member.Bytes(), 20))

	clients := []*Client{{}, func() *Client { c, _ := testClient(t); return c }()}
	for _, c := range clients {
		a.Set(dists+"main/binary-amd64/Packages.gz", bomb.Bytes())
		repo := testRepo(t, a, "bookworm")
		rel, err := c.Release(context.Background(), repo, now)
		if err != nil {
			t.Fatal(err)
		}
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		pkgs, err := c.Packages(context.Background(), repo, rel, "amd64")
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		wantErr(t, err, `suite "bookworm"`, "main/binary-amd64/Packages.gz", "size mismatch")
		if pkgs != nil {
			t.Errorf("got packages from a bomb: %v", pkgs)
		}
		// Decompressing the bomb's first 256 KiB would have held
		// 256 MiB; verifying it holds it at most once or twice.
		if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
			t.Errorf("allocated %d MiB refusing the bomb", n>>20)
		}

		// The genuine index verifies first and is read.
		a.Set(dists+"main/binary-amd64/Packages.gz", genuine.Bytes())
		if pkgs, err = c.Packages(context.Background(), repo, rel, "amd64"); err != nil {
			t.Fatal(err)
		}
		if len(pkgs) != 1 || pkgs[0].Name != "foo" {
			t.Errorf("got %v, want foo", pkgs)
		}
	}
}
