package apt

import (
	"bufio"
	"fmt"
	"io"
	"path"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Decompress returns a reader of the decompressed content of r, choosing the
// format by the extension of name: .xz, .gz, .zst, or none for a name with
// no extension. Any other extension is an error. Closing the result does
// not close r.
//
// All decompression goes through here so that the implementation of each
// format can be swapped in one place.
func Decompress(r io.Reader, name string) (io.ReadCloser, error) {
	switch ext := path.Ext(name); ext {
	case "":
		return io.NopCloser(r), nil
	case ".xz":
		// The xz reader makes many small reads: unbuffered, they made
		// decompressing an index five times slower.
		zr, err := xz.NewReader(bufio.NewReaderSize(r, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return io.NopCloser(zr), nil
	case ".gz":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return zr, nil
	case ".zst":
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return zr.IOReadCloser(), nil
	default:
		return nil, fmt.Errorf("%s: unknown compression %q", name, ext)
	}
}
