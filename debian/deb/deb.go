// Package deb reads Debian binary packages (deb(5)): the members of their
// ar archive, the files of control.tar and the stream of data.tar, and the
// compressions they come in.
package deb

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// A .deb is an ar archive of debian-binary, control.tar[.ext] and
// data.tar[.ext], in that order; members whose names start with "_" may
// follow and are ignored, as dpkg-deb ignores them.

// A Member is one member of an ar archive.
type Member struct {
	Name string
	*io.SectionReader
}

// ReadAr lists the members of the common-format ar archive r of size
// bytes, checking that every member lies within it.
func ReadAr(r io.ReaderAt, size int64) ([]Member, error) {
	magic := make([]byte, 8)
	if _, err := r.ReadAt(magic, 0); err != nil {
		return nil, fmt.Errorf("not an ar archive: %w", truncated(err))
	}
	if string(magic) != "!<arch>\n" {
		return nil, errors.New("not an ar archive")
	}
	var members []Member
	hdr := make([]byte, 60)
	for off := int64(8); off < size; {
		if _, err := r.ReadAt(hdr, off); err != nil {
			return nil, fmt.Errorf("ar member header at %d: %w", off, truncated(err))
		}
		if hdr[58] != '`' || hdr[59] != '\n' {
			return nil, fmt.Errorf("ar member header at %d: bad magic", off)
		}
		// GNU ar ends names with "/"; dpkg-deb pads them with spaces.
		name := strings.TrimSuffix(strings.TrimRight(string(hdr[:16]), " "), "/")
		n, err := strconv.ParseInt(strings.TrimRight(string(hdr[48:58]), " "), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("ar member %q: bad size %q", name, hdr[48:58])
		}
		off += 60
		if n > size-off {
			return nil, fmt.Errorf("ar member %q: %w", name, io.ErrUnexpectedEOF)
		}
		members = append(members, Member{name, io.NewSectionReader(r, off, n)})
		off += n + n%2
	}
	return members, nil
}

// truncated turns a short read's io.EOF into io.ErrUnexpectedEOF.
func truncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// A Package is a binary package as its .deb holds it.
type Package struct {
	// Control holds the regular files of control.tar by name,
	// "control" among them.
	Control map[string]File
	// Data is the data.tar member, compressed as it is in the .deb.
	Data Member
}

// A File is a file of control.tar.
type File struct {
	Data    []byte
	Mode    int64
	ModTime time.Time
}

// Read reads the .deb r of size bytes: its members, its format version
// and its control.tar, whose files must be plain files at its top.
func Read(r io.ReaderAt, size int64) (*Package, error) {
	members, err := ReadAr(r, size)
	if err != nil {
		return nil, err
	}
	ctl, data, err := debMembers(members)
	if err != nil {
		return nil, err
	}
	files, err := readControl(ctl)
	if err != nil {
		return nil, err
	}
	return &Package{Control: files, Data: data}, nil
}

// debMembers picks the control and data tarballs out of a .deb's members.
func debMembers(members []Member) (control, data Member, err error) {
	var names []string
	for _, m := range members {
		if !strings.HasPrefix(m.Name, "_") {
			names = append(names, m.Name)
		}
	}
	if len(names) != 3 || names[0] != "debian-binary" ||
		!strings.HasPrefix(names[1], "control.tar") || !strings.HasPrefix(names[2], "data.tar") {
		return control, data, fmt.Errorf("not a binary package: members %q", names)
	}
	for _, m := range members {
		switch {
		case m.Name == "debian-binary":
			var v [4]byte
			if _, err := io.ReadFull(m, v[:]); err != nil || string(v[:2]) != "2." {
				return control, data, fmt.Errorf("debian-binary: unsupported format version")
			}
		case m.Name == names[1]:
			control = m
		case m.Name == names[2]:
			data = m
		}
	}
	return control, data, nil
}

// readControl returns the regular files of a control tarball by name.
func readControl(m Member) (map[string]File, error) {
	files := map[string]File{}
	zr, err := m.Open()
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	err = WalkTar(zr, m.Name, func(hdr *tar.Header, r io.Reader) error {
		name := strings.TrimPrefix(hdr.Name, "./")
		switch {
		case hdr.Typeflag == tar.TypeDir && (name == "" || name == "."):
			return nil
		case hdr.Typeflag != tar.TypeReg || name == "" || strings.Contains(name, "/"):
			return fmt.Errorf("member %q: not a plain file", hdr.Name)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("member %q: %w", hdr.Name, err)
		}
		files[name] = File{b, hdr.Mode, hdr.ModTime}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := files["control"]; !ok {
		return nil, fmt.Errorf("%s: no control file", m.Name)
	}
	return files, nil
}

// Open returns the decompressed content of the tarball m, by its name's
// extension.
func (m Member) Open() (io.ReadCloser, error) {
	// Decompress goes by the extension; an uncompressed tarball has
	// none to it.
	return Decompress(m.SectionReader, strings.TrimSuffix(m.Name, ".tar"))
}

// WalkTar calls fn for each entry of the tar stream zr, named name in
// errors, then reads zr to its end, where a decompressor reports a
// truncated or corrupt input.
func WalkTar(zr io.Reader, name string, fn func(*tar.Header, io.Reader) error) error {
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, truncated(err))
		}
		if err := fn(hdr, tr); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return fmt.Errorf("%s: %w", name, truncated(err))
	}
	return nil
}
