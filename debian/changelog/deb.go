package changelog

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/basebuild/basebuild/debian/deb"
)

// ErrNotInDeb says a binary package's .deb has no changelog of its own:
// its doc directory is a symlink to another binary's of the same source
// (libgcc-s1's to gcc-12-base's, say), or it has none.
var ErrNotInDeb = errors.New("no changelog in the package")

// MaxSize is the most of one changelog that FromDeb reads, decompressed:
// a bound on what a hostile package makes it hold in memory. The newest
// entries come first, so a longer changelog loses only its oldest.
const MaxSize = 4 << 20

// FromDeb returns the changelog entries that the .deb r, of size bytes,
// of the binary package pkg holds: those of
// usr/share/doc/pkg/changelog.Debian.gz (changelog.gz in a Debian-native
// package), after those of a binNMU's changelog.Debian.ARCH.gz. It reads
// data.tar as a stream.
func FromDeb(r io.ReaderAt, size int64, pkg string) ([]Entry, error) {
	p, err := deb.Read(r, size)
	if err != nil {
		return nil, err
	}
	zr, err := p.Data.Open()
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	dir := "usr/share/doc/" + pkg + "/"
	var debian, native, binNMU []byte
	err = deb.WalkTar(zr, p.Data.Name, func(hdr *tar.Header, r io.Reader) error {
		name, ok := strings.CutPrefix(strings.TrimPrefix(hdr.Name, "./"), dir)
		if !ok || hdr.Typeflag != tar.TypeReg {
			return nil
		}
		var into *[]byte
		switch {
		case name == "changelog.Debian.gz":
			into = &debian
		case name == "changelog.gz":
			into = &native
		case strings.HasPrefix(name, "changelog.Debian.") && strings.HasSuffix(name, ".gz") && !strings.Contains(name, "/"):
			into = &binNMU
		default:
			return nil
		}
		b, err := readGz(r, hdr.Name)
		*into = b
		return err
	})
	if err != nil {
		return nil, err
	}
	if debian == nil {
		// A Debian-native package's only changelog is its Debian one;
		// another's changelog.gz is upstream's, where no line reads as
		// an entry.
		debian = native
	}
	if debian == nil && binNMU == nil {
		return nil, ErrNotInDeb
	}
	return append(Parse(binNMU), Parse(debian)...), nil
}

// readGz returns up to MaxSize bytes of the gzip stream r.
func readGz(r io.Reader, name string) ([]byte, error) {
	zr, err := deb.Decompress(r, name)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	b, err := io.ReadAll(io.LimitReader(zr, MaxSize))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}
