package apttest

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Epoch is the default mtime of every member of a built deb, so that the
// same Deb always gives the same bytes.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one member of a deb's data.tar.
type File struct {
	Path     string // "./usr/bin/foo" or "usr/bin/foo"; written as "./usr/bin/foo"
	Type     byte   // tar typeflag; 0 means regular file
	Mode     int64  // default 0644 for files, 0755 for dirs, 0777 for symlinks
	Body     string
	Linkname string // symlink target as given; hard link target is written "./…"
	Uid, Gid int
	Xattrs   map[string]string // written as PAX SCHILY.xattr.*
}

// Deb describes a package to build.
type Deb struct {
	Name, Version string
	Arch          string // default "amd64"
	// Fields are extra control fields: Depends, Pre-Depends, Provides,
	// Priority, Essential, Multi-Arch, Source, Description, …
	// "Component" is not written: it picks the archive component.
	Fields      map[string]string
	Files       []File            // data.tar members; parent dirs are added automatically
	Scripts     map[string]string // control members: preinst, postinst, conffiles, triggers, …
	Compression string            // data.tar compression: "xz" (default), "gz", "zst", "none"
	ModTime     time.Time         // mtime of all members; default Epoch
}

// Order of control fields as dpkg-gencontrol writes them; others go
// sorted before Description.
var controlOrder = []string{
	"Package", "Source", "Version", "Architecture", "Essential", "Maintainer",
	"Installed-Size", "Pre-Depends", "Depends", "Recommends", "Suggests",
	"Breaks", "Conflicts", "Provides", "Replaces", "Enhances", "Section",
	"Priority", "Multi-Arch", "Homepage",
}

// Order of Packages fields as the Debian archive writes them.
var packagesOrder = []string{
	"Package", "Source", "Version", "Installed-Size", "Maintainer",
	"Architecture", "Replaces", "Provides", "Depends", "Pre-Depends",
	"Recommends", "Suggests", "Conflicts", "Breaks", "Enhances",
}

var packagesTail = []string{
	"Description", "Multi-Arch", "Homepage", "Section", "Priority", "Essential",
	"Filename", "Size", "MD5sum", "SHA256",
}

// scriptNames are the control members dpkg runs, so they get mode 0755.
var scriptNames = map[string]bool{
	"preinst": true, "postinst": true, "prerm": true, "postrm": true, "config": true,
}

// BuildDeb returns the bytes of the .deb described by d.
func BuildDeb(d Deb) ([]byte, error) {
	data, _, err := buildDeb(d)
	return data, err
}

// buildDeb returns the .deb and its control fields.
func buildDeb(d Deb) ([]byte, map[string]string, error) {
	if d.Name == "" || d.Version == "" {
		return nil, nil, errors.New("apttest: deb needs Name and Version")
	}
	mtime := d.ModTime
	if mtime.IsZero() {
		mtime = Epoch
	}

	data, md5sums, size, err := dataTar(d.Files, mtime)
	if err != nil {
		return nil, nil, fmt.Errorf("apttest: %s: %w", d.Name, err)
	}
	comp := d.Compression
	if comp == "" {
		comp = "xz"
	}
	data, ext, err := compress(comp, data)
	if err != nil {
		return nil, nil, fmt.Errorf("apttest: %s: %w", d.Name, err)
	}

	fields := controlFields(d, size)
	members := map[string]string{"control": formatStanza(fields, controlOrder, []string{"Description"})}
	if md5sums != "" {
		members["md5sums"] = md5sums
	}
	for name, body := range d.Scripts {
		members[name] = body
	}
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	sort.Strings(names)
	entries := []entry{{hdr: dirHeader("./", 0755, mtime)}}
	for _, name := range names {
		mode := int64(0644)
		if scriptNames[name] {
			mode = 0755
		}
		entries = append(entries, entry{
			hdr:  &tar.Header{Name: "./" + name, Typeflag: tar.TypeReg, Mode: mode, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatGNU},
			body: members[name],
		})
	}
	control, err := writeTar(entries)
	if err != nil {
		return nil, nil, fmt.Errorf("apttest: %s: %w", d.Name, err)
	}
	if control, _, err = compress("xz", control); err != nil {
		return nil, nil, fmt.Errorf("apttest: %s: %w", d.Name, err)
	}

	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	arMember(&ar, "debian-binary", mtime, []byte("2.0\n"))
	arMember(&ar, "control.tar.xz", mtime, control)
	arMember(&ar, "data.tar"+ext, mtime, data)
	return ar.Bytes(), fields, nil
}

// arMember appends one member to a common-format ar archive, as dpkg-deb
// writes it: a 60-byte header, the data, and a newline pad to even size.
func arMember(w *bytes.Buffer, name string, mtime time.Time, data []byte) {
	fmt.Fprintf(w, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", name, mtime.Unix(), 0, 0, 0100644, len(data))
	w.Write(data)
	if len(data)%2 == 1 {
		w.WriteByte('\n')
	}
}

type entry struct {
	hdr  *tar.Header
	body string
}

func dirHeader(name string, mode int64, mtime time.Time) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatGNU}
}

// cleanPath turns "./usr/bin/foo", "/usr/bin/foo" or "usr/bin/foo" into
// "usr/bin/foo"; the root is "".
func cleanPath(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

// dataTar builds the uncompressed data.tar in the order given, adding
// missing parent directories first. It also returns the md5sums member
// and the Installed-Size in KiB.
func dataTar(files []File, mtime time.Time) ([]byte, string, int64, error) {
	entries := []entry{{hdr: dirHeader("./", 0755, mtime)}}
	dirs := map[string]int{"": 0} // dir path → index in entries
	var md5sums strings.Builder
	var size int64
	for _, f := range files {
		p := cleanPath(f.Path)
		if p == "" && f.Type != tar.TypeDir {
			return nil, "", 0, fmt.Errorf("file %q has no name", f.Path)
		}
		var parents []string
		for dir := path.Dir(p); dir != "." && dir != "/" && dir != ""; dir = path.Dir(dir) {
			parents = append(parents, dir)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if _, ok := dirs[parents[i]]; !ok {
				dirs[parents[i]] = len(entries)
				entries = append(entries, entry{hdr: dirHeader("./"+parents[i]+"/", 0755, mtime)})
			}
		}

		typ := f.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{
			Name:     "./" + p,
			Typeflag: typ,
			Mode:     f.Mode,
			ModTime:  mtime,
			Uid:      f.Uid,
			Gid:      f.Gid,
			Format:   tar.FormatGNU,
		}
		if f.Uid == 0 {
			hdr.Uname = "root"
		}
		if f.Gid == 0 {
			hdr.Gname = "root"
		}
		if len(f.Xattrs) > 0 {
			hdr.Format = tar.FormatPAX
			hdr.PAXRecords = map[string]string{}
			for k, v := range f.Xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		body := ""
		switch typ {
		case tar.TypeDir:
			if hdr.Mode == 0 {
				hdr.Mode = 0755
			}
			hdr.Name = strings.TrimSuffix(hdr.Name, "/") + "/"
			if p == "" {
				hdr.Name = "./"
			}
			if i, ok := dirs[p]; ok {
				// Already added as a parent: give it the requested attributes.
				entries[i].hdr = hdr
				continue
			}
			dirs[p] = len(entries)
		case tar.TypeSymlink:
			if hdr.Mode == 0 {
				hdr.Mode = 0777
			}
			hdr.Linkname = f.Linkname
		case tar.TypeLink:
			hdr.Linkname = "./" + cleanPath(f.Linkname)
		case tar.TypeReg:
			if hdr.Mode == 0 {
				hdr.Mode = 0644
			}
			body = f.Body
			size += int64(len(body)+1023) / 1024
			fmt.Fprintf(&md5sums, "%x  %s\n", md5.Sum([]byte(body)), p)
		default:
			if hdr.Mode == 0 {
				hdr.Mode = 0644
			}
		}
		entries = append(entries, entry{hdr: hdr, body: body})
	}
	tb, err := writeTar(entries)
	return tb, md5sums.String(), size, err
}

func writeTar(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		e.hdr.Size = int64(len(e.body))
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", e.hdr.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compress returns data compressed with kind and the file extension that
// goes with it.
func compress(kind string, data []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	switch kind {
	case "none":
		return data, "", nil
	case "xz":
		w, err := xz.NewWriter(&buf)
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(data); err != nil {
			return nil, "", err
		}
		if err := w.Close(); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), ".xz", nil
	case "gz":
		w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(data); err != nil {
			return nil, "", err
		}
		if err := w.Close(); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), ".gz", nil
	case "zst":
		// One goroutine keeps the output deterministic.
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, "", err
		}
		defer enc.Close()
		return enc.EncodeAll(data, nil), ".zst", nil
	}
	return nil, "", fmt.Errorf("unknown compression %q", kind)
}

// controlFields returns the control stanza of d as a map.
func controlFields(d Deb, installedSize int64) map[string]string {
	f := map[string]string{
		"Package":        d.Name,
		"Version":        d.Version,
		"Architecture":   debArch(d),
		"Maintainer":     "Test Maintainer <test@example.org>",
		"Installed-Size": strconv.FormatInt(installedSize, 10),
		"Priority":       "optional",
		"Description":    "test package " + d.Name,
	}
	for k, v := range d.Fields {
		f[k] = v
	}
	delete(f, "Component")
	return f
}

func debArch(d Deb) string {
	if d.Arch == "" {
		return "amd64"
	}
	return d.Arch
}

// formatStanza writes fields in deb822 form: first those in head, in that
// order, then any others sorted, then those in tail.
func formatStanza(fields map[string]string, head, tail []string) string {
	placed := map[string]bool{}
	for _, k := range head {
		placed[k] = true
	}
	for _, k := range tail {
		placed[k] = true
	}
	var rest []string
	for k := range fields {
		if !placed[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)

	var b strings.Builder
	for _, list := range [][]string{head, rest, tail} {
		for _, k := range list {
			v, ok := fields[k]
			if !ok {
				continue
			}
			lines := strings.Split(strings.TrimRight(v, "\n"), "\n")
			fmt.Fprintf(&b, "%s: %s\n", k, lines[0])
			for _, l := range lines[1:] {
				// Continuation lines must start with a space.
				if !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t") {
					l = " " + l
				}
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
}

// Gzip returns body gzip-compressed, as a deb's
// usr/share/doc/*/changelog.Debian.gz is.
func Gzip(body string) string {
	data, _, err := compress("gz", []byte(body))
	if err != nil {
		panic(err) // writing to memory does not fail
	}
	return string(data)
}
