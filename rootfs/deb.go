package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/basebuild/basebuild/debian/control"
	"github.com/basebuild/basebuild/debian/deb"
)

// controlFields returns the fields of a control file in their order, each
// value as dpkg keeps it (control.Paragraph.Text).
func controlFields(b []byte) ([]field, error) {
	p, err := control.Parse(b)
	if err != nil {
		return nil, err
	}
	fields := make([]field, p.Len())
	for i := range fields {
		fields[i] = field{p.Name(i), p.Text(i)}
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
func readDeb(f *os.File) (*Installed, deb.Member, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, deb.Member{}, err
	}
	pkg, err := deb.Read(f, fi.Size())
	if err != nil {
		return nil, deb.Member{}, err
	}
	fields, err := controlFields(pkg.Control["control"].Data)
	if err != nil {
		return nil, deb.Member{}, fmt.Errorf("control: %w", err)
	}
	inst := &Installed{
		Name:         fieldValue(fields, "Package"),
		Version:      fieldValue(fields, "Version"),
		Architecture: fieldValue(fields, "Architecture"),
		Control:      pkg.Control["control"].Data,
		Members:      map[string][]byte{},
		MemberTimes:  map[string]time.Time{},
	}
	if inst.Name == "" || inst.Version == "" || inst.Architecture == "" {
		return nil, deb.Member{}, errors.New("control: Package, Version or Architecture missing")
	}
	for name, m := range pkg.Control {
		if name != "control" {
			inst.Members[name] = m.Data
			inst.MemberTimes[name] = m.ModTime
		}
	}
	if inst.Conffiles, err = parseConffiles(pkg.Control["conffiles"].Data); err != nil {
		return nil, deb.Member{}, fmt.Errorf("conffiles: %w", err)
	}
	return inst, pkg.Data, nil
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
