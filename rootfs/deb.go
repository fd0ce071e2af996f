package rootfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/basebuild/basebuild/apt"
)

// A .deb is an ar archive of debian-binary, control.tar[.ext] and
// data.tar[.ext], in that order (deb(5)); members whose names start with
// "_" may follow and are ignored, as dpkg-deb ignores them.

// arMember is one member of an ar archive.
type arMember struct {
	name string
	data *io.SectionReader
}

// readAr lists the members of the common-format ar archive r of size
// bytes, checking that every member lies within it.
func readAr(r io.ReaderAt, size int64) ([]arMember, error) {
	magic := make([]byte, 8)
	if _, err := r.ReadAt(magic, 0); err != nil {
		return nil, fmt.Errorf("not an ar archive: %w", truncated(err))
	}
	if string(magic) != "!<arch>\n" {
		return nil, errors.New("not an ar archive")
	}
	var members []arMember
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
		members = append(members, arMember{name, io.NewSectionReader(r, off, n)})
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

// debMembers picks the control and data tarballs out of a .deb's members.
func debMembers(members []arMember) (control, data arMember, err error) {
	var names []string
	for _, m := range members {
		if !strings.HasPrefix(m.name, "_") {
			names = append(names, m.name)
		}
	}
	if len(names) != 3 || names[0] != "debian-binary" ||
		!strings.HasPrefix(names[1], "control.tar") || !strings.HasPrefix(names[2], "data.tar") {
		return control, data, fmt.Errorf("not a binary package: members %q", names)
	}
	for _, m := range members {
		switch {
		case m.name == "debian-binary":
			var v [4]byte
			if _, err := io.ReadFull(m.data, v[:]); err != nil || string(v[:2]) != "2." {
				return control, data, fmt.Errorf("debian-binary: unsupported format version")
			}
		case m.name == names[1]:
			control = m
		case m.name == names[2]:
			data = m
		}
	}
	return control, data, nil
}

// controlMember is one file of a control.tar.
type controlMember struct {
	data    []byte
	mode    int64
	modTime time.Time
}

// readControl returns the regular files of a control tarball by name.
func readControl(m arMember) (map[string]controlMember, error) {
	files := map[string]controlMember{}
	err := readTar(m, func(hdr *tar.Header, r io.Reader) error {
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
		files[name] = controlMember{b, hdr.Mode, hdr.ModTime}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := files["control"]; !ok {
		return nil, fmt.Errorf("%s: no control file", m.name)
	}
	return files, nil
}

// readTar decompresses the tarball m, by apt.Decompress, and calls fn for
// each of its entries. It reads the compressed stream to its end, so that
// the decompressor checks its integrity.
func readTar(m arMember, fn func(*tar.Header, io.Reader) error) error {
	zr, err := memberTar(m)
	if err != nil {
		return err
	}
	defer zr.Close()
	return walkTar(zr, m.name, fn)
}

// memberTar returns the decompressed tar of the member m.
func memberTar(m arMember) (io.ReadCloser, error) {
	// apt.Decompress goes by the extension; an uncompressed tarball has
	// none to it.
	return apt.Decompress(m.data, strings.TrimSuffix(m.name, ".tar"))
}

// walkTar calls fn for each entry of the tar stream zr, named name in
// errors, then reads zr to its end, where a decompressor reports a
// truncated or corrupt input.
func walkTar(zr io.Reader, name string, fn func(*tar.Header, io.Reader) error) error {
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

// controlFields parses the first deb822 stanza of b, keeping the fields'
// order and their values as written: continuation lines keep their
// leading space and are joined by "\n".
func controlFields(b []byte) ([]field, error) {
	var fields []field
	for i, line := range strings.Split(string(bytes.TrimRight(b, "\n")), "\n") {
		switch {
		case line == "":
			if len(fields) > 0 {
				return fields, nil
			}
		case line[0] == ' ' || line[0] == '\t':
			if len(fields) == 0 {
				return nil, fmt.Errorf("line %d: continuation line before any field", i+1)
			}
			fields[len(fields)-1].value += "\n" + strings.TrimRight(line, " \t")
		case line[0] == '#':
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("line %d: not a field: %q", i+1, line)
			}
			fields = append(fields, field{name, strings.Trim(value, " \t")})
		}
	}
	return fields, nil
}

// field is one field of a control stanza.
type field struct{ name, value string }

// fieldValue returns the value of the named field, matched as dpkg does,
// regardless of case.
func fieldValue(fields []field, name string) string {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return ""
}

// readDeb reads a deb's control area into an Installed and returns its
// data tarball, which reads from f.
func readDeb(f *os.File) (*Installed, arMember, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, arMember{}, err
	}
	members, err := readAr(f, fi.Size())
	if err != nil {
		return nil, arMember{}, err
	}
	ctl, data, err := debMembers(members)
	if err != nil {
		return nil, arMember{}, err
	}
	files, err := readControl(ctl)
	if err != nil {
		return nil, arMember{}, err
	}
	fields, err := controlFields(files["control"].data)
	if err != nil {
		return nil, arMember{}, fmt.Errorf("control: %w", err)
	}
	inst := &Installed{
		Name:         fieldValue(fields, "Package"),
		Version:      fieldValue(fields, "Version"),
		Architecture: fieldValue(fields, "Architecture"),
		Control:      files["control"].data,
		Members:      map[string][]byte{},
		MemberTimes:  map[string]time.Time{},
	}
	if inst.Name == "" || inst.Version == "" || inst.Architecture == "" {
		return nil, arMember{}, errors.New("control: Package, Version or Architecture missing")
	}
	for name, m := range files {
		if name != "control" {
			inst.Members[name] = m.data
			inst.MemberTimes[name] = m.modTime
		}
	}
	if inst.Conffiles, err = parseConffiles(files["conffiles"].data); err != nil {
		return nil, arMember{}, fmt.Errorf("conffiles: %w", err)
	}
	return inst, data, nil
}

// parseConffiles returns the paths the conffiles control member lists.
func parseConffiles(b []byte) ([]string, error) {
	var paths []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "/"):
			paths = append(paths, path.Clean(line))
		default:
			// "remove-on-upgrade /path" names no shipped file; no
			// Debian release's minbase set uses it.
			return nil, fmt.Errorf("unsupported line %q", line)
		}
	}
	return paths, nil
}
