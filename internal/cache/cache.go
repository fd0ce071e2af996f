// Package cache is basebuild's one cache directory: verified downloads,
// resolved sets and unpacked data, with the checks that make a shared,
// untrusted directory safe to read from.
package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/basebuild/basebuild/internal/atomicfile"
)

// Cache is a directory of verified downloads and of what basebuild made
// from them:
//
//	<Dir>/sha256/<hex>  files by the SHA-256 of their content (.debs, indexes, InRelease files)
//	<Dir>/url/<hex>     snapshot InRelease files by the SHA-256 of their URL
//	<Dir>/sets/…        resolved package sets (see Set)
//	<Dir>/data/…        debs' decompressed data.tar (see OpenData)
//
// Files are written under a temporary name in the same directory and
// renamed into place only once complete and verified, so an entry is
// always whole and correct, and processes may share a cache without locks.
//
// The cache is not trusted: whoever can write it would decide what the
// next image holds. Planting is prevented by Open, which refuses
// directories another user owns or could write: a writer who passes that
// is basebuild's own user, root-equivalent. Every entry is checked before
// it is used, against the hash it is named by (sha256/, from a signed
// index, and sets/), a hash basebuild wrote into it (data/) or its
// signature (url/, by Release). The sets/ and data/ hashes are unkeyed:
// they catch damage, not an entry planted with a matching hash. An entry
// that fails is removed, with a note, and fetched or made again.
type Cache struct {
	Dir string
	Log func(format string, args ...any) // notes on entries removed; may be nil
}

// subdirs are the cache's subdirectories.
var subdirs = []string{"sha256", "url", "sets", "data"}

// DefaultDir is /var/cache/basebuild for root, else
// $XDG_CACHE_HOME/basebuild.
func DefaultDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/basebuild"
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "basebuild-cache")
	}
	return filepath.Join(dir, "basebuild")
}

// Open returns the cache in dir, creating it if needed. It refuses a
// directory, or a subdirectory, owned by another user than basebuild's
// effective one or writable by group or others.
func Open(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	// dir itself may be a symlink the user made; its subdirectories may not.
	if err := checkDir(dir, os.Stat); err != nil {
		return nil, err
	}
	for _, sub := range subdirs {
		p := filepath.Join(dir, sub)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cache: %w", err)
		}
		if err := checkDir(p, os.Lstat); err != nil {
			return nil, err
		}
	}
	return &Cache{Dir: dir}, nil
}

// checkDir refuses dir unless it is a directory owned by basebuild's
// effective user and writable by no one else.
func checkDir(dir string, stat func(string) (fs.FileInfo, error)) error {
	fi, err := stat(dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("cache directory %s: not a directory", dir)
	case !ok:
		return fmt.Errorf("cache directory %s: no owner to check", dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("cache directory %s: owned by uid %d, not by basebuild's uid %d: another user could plant entries", dir, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("cache directory %s: writable by group or others (mode %04o): another user could plant entries", dir, fi.Mode().Perm())
	}
	return nil
}

func (c *Cache) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// drop removes the entry at p, which failed its check with err.
func (c *Cache) drop(p string, err error) {
	os.Remove(p)
	c.logf("cache: %s: %v; removed, to be fetched or made again", p, err)
}

// path is where the file with SHA-256 sum lives; sum must be checked with
// IsSHA256 first, as it comes from a remote index.
func (c *Cache) path(sum string) string {
	return filepath.Join(c.Dir, "sha256", sum)
}

// Lookup reports the path of a cached file of size bytes (any size if
// size is negative) whose SHA-256 is sum (lower-case hex). The entry is
// hashed: one whose content is not what its name says is removed.
func (c *Cache) Lookup(sum string, size int64) (string, bool) {
	if c == nil || !IsSHA256(sum) {
		return "", false
	}
	p := c.path(sum)
	f, err := openEntry(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		c.drop(p, err)
		return "", false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || size >= 0 && fi.Size() != size {
		// A whole entry of another size than the index says: the
		// download will tell which is wrong.
		return "", false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		c.drop(p, err)
		return "", false
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		c.drop(p, fmt.Errorf("content has sha256 %s", got))
		return "", false
	}
	return p, true
}

// openEntry opens the cache entry p, a regular file, not following a
// symlink; O_NONBLOCK so that a FIFO cannot block the open.
func openEntry(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, errors.New("a symlink")
		}
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, errors.New("not a regular file")
	}
	return f, nil
}

// Create returns a new temporary file in the content directory, to be
// passed to Commit once verified, or discarded.
func (c *Cache) Create() (*atomicfile.File, error) {
	f, err := atomicfile.Create(filepath.Join(c.Dir, "sha256"), ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return f, nil
}

// Commit makes the complete, verified temporary file f the entry for sum
// and returns its path.
func (c *Cache) Commit(f *atomicfile.File, sum string) (string, error) {
	if !IsSHA256(sum) {
		return "", fmt.Errorf("cache: bad sha256 %q", sum)
	}
	// Synced first so that a crash cannot leave a renamed but empty entry.
	p := c.path(sum)
	if err := f.Commit(p, atomicfile.Options{Sync: true}); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return p, nil
}

// Put caches data by its SHA-256, unless an entry has it already.
func (c *Cache) Put(data []byte) error {
	sum := sha256.Sum256(data)
	p := c.path(hex.EncodeToString(sum[:]))
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(data)) {
		return nil
	}
	return c.put(p, data)
}

func (c *Cache) urlPath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(c.Dir, "url", hex.EncodeToString(sum[:]))
}

// URL returns the file cached for url. Only InRelease files are cached by
// URL, and their reader verifies their signature on every read.
func (c *Cache) URL(url string) ([]byte, bool) {
	f, err := openEntry(c.urlPath(url))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	return data, err == nil
}

// PutURL caches data for url. Only immutable, verified files belong here.
func (c *Cache) PutURL(url string, data []byte) error {
	return c.put(c.urlPath(url), data)
}

// put writes data to the entry p, through a temporary file renamed into
// place once complete.
func (c *Cache) put(p string, data []byte) error {
	if err := atomicfile.WriteFile(p, data, atomicfile.Options{Sync: true}); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// Set returns the resolved set remembered under key, the hash of what
// resolution read, or false. An entry is sets/<key>.<sha256>.json, named
// by the SHA-256 of its content too: one that does not match (damaged;
// the hash is unkeyed), or that read, the set's parser, fails on, is
// removed.
func (c *Cache) Set(key string, read func(data []byte) error) bool {
	if c == nil || !IsSHA256(key) {
		return false
	}
	paths, _ := filepath.Glob(filepath.Join(c.Dir, "sets", key+".*.json"))
	for _, p := range paths {
		sum := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), key+"."), ".json")
		f, err := openEntry(p)
		if err != nil {
			c.drop(p, err)
			continue
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			c.drop(p, err)
			continue
		}
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
			c.drop(p, fmt.Errorf("content has sha256 %x", got))
			continue
		}
		if err := read(data); err != nil {
			c.drop(p, err)
			continue
		}
		return true
	}
	return false
}

// PutSet remembers data, a resolved set as written, under key.
func (c *Cache) PutSet(key string, data []byte) error {
	if c == nil || !IsSHA256(key) {
		return nil
	}
	sum := sha256.Sum256(data)
	return c.put(filepath.Join(c.Dir, "sets", key+"."+hex.EncodeToString(sum[:])+".json"), data)
}

// IsSHA256 reports whether s is a SHA-256 in lower-case hex, as
// indexes give them and the cache names its entries.
func IsSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
