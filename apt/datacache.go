package apt

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// The data cache keeps the decompressed data.tar of debs already unpacked,
// zstd-compressed at its fastest setting, so that a later build of the
// same packages skips xz, which is most of the unpacking's CPU time:
//
//	<Dir>/data/<hex>.tar.zst   the data.tar of the deb whose SHA-256 is hex
//
// An entry is written from the deb as it is unpacked, under a temporary
// name, and renamed into place only when the whole member was read and
// decompressed without error. zstd's checksum catches a damaged entry,
// which is then removed.

func (c *Cache) dataPath(debSHA256 string) string {
	return filepath.Join(c.Dir, "data", debSHA256+".tar.zst")
}

// OpenData returns the cached data.tar of the deb with SHA-256 debSHA256,
// or an error matching fs.ErrNotExist when there is none.
func (c *Cache) OpenData(debSHA256 string) (io.ReadCloser, error) {
	if c == nil || !isLowerSHA256(debSHA256) {
		return nil, os.ErrNotExist
	}
	f, err := os.Open(c.dataPath(debSHA256))
	if err != nil {
		return nil, err
	}
	// No whole entry is empty; an empty one would read as a tarball
	// without files.
	if fi, err := f.Stat(); err != nil || fi.Size() == 0 {
		f.Close()
		os.Remove(f.Name())
		return nil, os.ErrNotExist
	}
	zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		f.Close()
		return nil, err
	}
	return &dataReader{zr, f}, nil
}

type dataReader struct {
	zr *zstd.Decoder
	f  *os.File
}

// Read reads the entry. One that cannot be read to its end is damaged:
// it is removed, so that it fails this build only.
func (r *dataReader) Read(p []byte) (int, error) {
	n, err := r.zr.Read(p)
	if err != nil && err != io.EOF {
		os.Remove(r.f.Name())
		err = fmt.Errorf("cached data.tar %s (removed): %w", r.f.Name(), err)
	}
	return n, err
}

func (r *dataReader) Close() error {
	r.zr.Close()
	return r.f.Close()
}

// A DataEntry is a data cache entry being written. Writes never fail: a
// cache that cannot be written (a full disk, say) must not fail the
// build, so the first error is kept and Commit drops the entry.
type DataEntry struct {
	c   *Cache
	sum string
	f   *os.File
	zw  *zstd.Encoder
	err error
}

// NewData starts the cache entry of the data.tar of the deb with SHA-256
// debSHA256; nil when the cache cannot take one.
func (c *Cache) NewData(debSHA256 string) *DataEntry {
	if c == nil || !isLowerSHA256(debSHA256) {
		return nil
	}
	dir := filepath.Join(c.Dir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return nil
	}
	zw, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil
	}
	return &DataEntry{c: c, sum: debSHA256, f: f, zw: zw}
}

// Write compresses p into the entry; it always reports success.
func (e *DataEntry) Write(p []byte) (int, error) {
	if e.err == nil {
		_, e.err = e.zw.Write(p)
	}
	return len(p), nil
}

// Commit puts the entry in place if every write succeeded, else removes it.
func (e *DataEntry) Commit() {
	err := e.err
	if err == nil {
		err = e.zw.Close()
	} else {
		e.zw.Close()
	}
	if err == nil {
		err = e.f.Chmod(0o644)
	}
	// Synced before it is renamed, so that a crash cannot leave an
	// entry in place that is not whole.
	if err == nil {
		err = e.f.Sync()
	}
	if cerr := e.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(e.f.Name(), e.c.dataPath(e.sum))
	}
	if err != nil {
		os.Remove(e.f.Name())
	}
}

// Discard removes the entry.
func (e *DataEntry) Discard() {
	e.zw.Close()
	e.f.Close()
	os.Remove(e.f.Name())
}
