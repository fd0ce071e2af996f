package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/basebuild/basebuild/internal/atomicfile"
)

// The data cache keeps the decompressed data.tar of debs already unpacked,
// zstd-compressed at its fastest setting, so that a later build of the
// same packages skips xz, which is most of the unpacking's CPU time:
//
//	<Dir>/data/<hex>.tar.zst   the data.tar of the deb whose SHA-256 is hex
//
// An entry is written from the deb as it is unpacked, under a temporary
// name, and renamed into place only when the whole member was read and
// decompressed without error. Its name says which deb it comes from, not
// what it holds, so it ends with a record of that: a zstd skippable frame
// holding the SHA-256 of everything before it, which OpenData checks
// before handing out a byte. A damaged entry is removed, and the unpack
// reads the deb instead. The record is unkeyed, so it cannot tell a
// planted entry with a matching record: planting is prevented by
// Open's ownership and mode checks (a writer who passes them is
// basebuild's own user, root-equivalent).

// dataTrailer is the skippable frame that ends an entry: its magic
// number, its size (32) and the SHA-256 of the entry before it, all
// little-endian as zstd frames are.
const (
	dataTrailerMagic = 0x184d2a5b // one of zstd's skippable frame magics
	dataTrailerSize  = 4 + 4 + sha256.Size
)

func (c *Cache) dataPath(debSHA256 string) string {
	return filepath.Join(c.Dir, "data", debSHA256+".tar.zst")
}

// OpenData returns the cached data.tar of the deb with SHA-256 debSHA256,
// or an error matching fs.ErrNotExist when there is none. The entry is
// checked against the SHA-256 it records before it is returned.
func (c *Cache) OpenData(debSHA256 string) (io.ReadCloser, error) {
	if c == nil || !IsSHA256(debSHA256) {
		return nil, os.ErrNotExist
	}
	p := c.dataPath(debSHA256)
	f, err := openEntry(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err == nil {
		var body *io.SectionReader
		if body, err = checkData(f); err == nil {
			zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
			if err != nil {
				f.Close()
				return nil, err
			}
			return &dataReader{zr, f}, nil
		}
		f.Close()
	}
	c.drop(p, err)
	return nil, os.ErrNotExist
}

// checkData checks the entry f against the SHA-256 its trailer records
// and returns what comes before the trailer.
func checkData(f *os.File) (*io.SectionReader, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := fi.Size() - dataTrailerSize
	if n <= 0 {
		return nil, errors.New("no checksum record")
	}
	trailer := make([]byte, dataTrailerSize)
	if _, err := f.ReadAt(trailer, n); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(trailer) != dataTrailerMagic || binary.LittleEndian.Uint32(trailer[4:]) != sha256.Size {
		return nil, errors.New("no checksum record")
	}
	body := io.NewSectionReader(f, 0, n)
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return nil, err
	}
	if got := h.Sum(nil); !bytes.Equal(got, trailer[8:]) {
		return nil, fmt.Errorf("content has sha256 %x, its record says %x", got, trailer[8:])
	}
	return io.NewSectionReader(f, 0, n), nil
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
	f   *atomicfile.File
	h   hash.Hash // of what is written to f
	zw  *zstd.Encoder
	err error
}

// NewData starts the cache entry of the data.tar of the deb with SHA-256
// debSHA256; nil when the cache cannot take one.
func (c *Cache) NewData(debSHA256 string) *DataEntry {
	if c == nil || !IsSHA256(debSHA256) {
		return nil
	}
	f, err := atomicfile.Create(filepath.Join(c.Dir, "data"), ".tmp-")
	if err != nil {
		return nil
	}
	h := sha256.New()
	zw, err := zstd.NewWriter(io.MultiWriter(f, h), zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		f.Discard()
		return nil
	}
	return &DataEntry{c: c, sum: debSHA256, f: f, h: h, zw: zw}
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
		trailer := binary.LittleEndian.AppendUint32(nil, dataTrailerMagic)
		trailer = binary.LittleEndian.AppendUint32(trailer, sha256.Size)
		_, err = e.f.Write(e.h.Sum(trailer))
	}
	// Synced before it is renamed, so that a crash cannot leave an
	// entry in place that is not whole.
	if err == nil {
		e.f.Commit(e.c.dataPath(e.sum), atomicfile.Options{Sync: true})
	}
	e.f.Discard()
}

// Discard removes the entry.
func (e *DataEntry) Discard() {
	e.zw.Close()
	e.f.Discard()
}
