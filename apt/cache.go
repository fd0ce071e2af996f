package apt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// Cache is a directory of verified downloads:
//
//	<Dir>/sha256/<hex>  files by the SHA-256 of their content (.debs, indexes)
//	<Dir>/url/<hex>     snapshot InRelease files by the SHA-256 of their URL
//
// Files are written under a temporary name in the same directory and
// renamed into place only once complete and verified, so an entry is
// always whole and correct, and processes may share a cache without locks.
type Cache struct {
	Dir string
}

// OpenCache returns the cache in dir, creating it if needed.
func OpenCache(dir string) (*Cache, error) {
	for _, sub := range []string{"sha256", "url"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	return &Cache{Dir: dir}, nil
}

// path is where the file with SHA-256 sum lives; sum must be checked with
// isSHA256 first, as it comes from a remote index.
func (c *Cache) path(sum string) string {
	return filepath.Join(c.Dir, "sha256", sum)
}

// lookup reports the path of a cached file matching want. Entries were
// verified when written, so only the size is checked here.
func (c *Cache) lookup(want FileHash) (string, bool) {
	if c == nil || !isLowerSHA256(want.SHA256) {
		return "", false
	}
	p := c.path(want.SHA256)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != want.Size {
		return "", false
	}
	return p, true
}

// create returns a new temporary file in the content directory, to be
// passed to commit or discard.
func (c *Cache) create() (*os.File, error) {
	f, err := os.CreateTemp(filepath.Join(c.Dir, "sha256"), ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return f, nil
}

// commit makes the complete, verified temporary file f the entry for sum.
func (c *Cache) commit(f *os.File, sum string) (string, error) {
	if !isLowerSHA256(sum) {
		return "", fmt.Errorf("cache: bad sha256 %q", sum)
	}
	// CreateTemp makes files private; entries are public data.
	if err := f.Chmod(0o644); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	// Sync first so that a crash cannot leave a renamed but empty entry.
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	p := c.path(sum)
	if err := os.Rename(f.Name(), p); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return p, nil
}

// discard removes f unless commit renamed it.
func (c *Cache) discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

func (c *Cache) urlPath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(c.Dir, "url", hex.EncodeToString(sum[:]))
}

// getURL returns the file cached for url.
func (c *Cache) getURL(url string) ([]byte, bool) {
	data, err := os.ReadFile(c.urlPath(url))
	return data, err == nil
}

// putURL caches data for url. Only immutable, verified files belong here.
func (c *Cache) putURL(url string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(c.Dir, "url"), ".tmp-")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.urlPath(url))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

func isLowerSHA256(s string) bool {
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
