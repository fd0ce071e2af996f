package rootfs

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/debian/deb"
)

// Entry is one file of a tree or a tar archive, in terms both can express.
type Entry struct {
	Path     string // "." for the root, else "./etc/passwd"; no trailing slash
	Type     byte   // tar typeflag: tar.TypeReg, TypeLink, TypeSymlink, TypeChar, TypeBlock, TypeDir or TypeFifo
	Mode     int64  // permission bits with setuid, setgid and sticky: 0o7777
	Uid, Gid int
	Size     int64  // of regular files; 0 for everything else
	SHA256   string // hex, of regular files
	Linkname string // symlink target as stored; for hard links, the first path ("./usr/bin/x")
	Devmajor int64
	Devminor int64
	ModTime  time.Time
	Xattrs   map[string]string
}

// ReadTree reads the entries of the directory tree dir without following
// symlinks. Files that are hard links of an earlier file, in the order GNU
// tar visits them ("tar --sort=name"), are hard link entries, as in a tar.
// Sockets are left out: tar cannot store them.
func ReadTree(dir string) (map[string]Entry, error) {
	entries := map[string]Entry{}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	err := walkSorted(dir, ".", func(name string, fi fs.FileInfo) error {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat", name)
		}
		full := filepath.Join(dir, name)
		e := Entry{
			Path:    entryPath(name),
			Mode:    int64(st.Mode & 0o7777),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: fi.ModTime(),
		}
		var err error
		if e.Xattrs, err = lxattrs(full); err != nil {
			return err
		}
		if fi.Mode().Type() == fs.ModeSocket {
			return nil
		}
		if !fi.IsDir() && st.Nlink > 1 {
			id := inode{uint64(st.Dev), st.Ino}
			if first, ok := seen[id]; ok {
				e.Type, e.Linkname = tar.TypeLink, first
				entries[e.Path] = e
				return nil
			}
			seen[id] = e.Path
		}
		switch fi.Mode().Type() {
		case 0:
			e.Type, e.Size = tar.TypeReg, fi.Size()
			if e.SHA256, err = fileSHA256(full); err != nil {
				return err
			}
		case fs.ModeDir:
			e.Type = tar.TypeDir
		case fs.ModeSymlink:
			e.Type = tar.TypeSymlink
			if e.Linkname, err = os.Readlink(full); err != nil {
				return err
			}
		case fs.ModeDevice | fs.ModeCharDevice:
			e.Type = tar.TypeChar
			e.Devmajor, e.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
		case fs.ModeDevice:
			e.Type = tar.TypeBlock
			e.Devmajor, e.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
		case fs.ModeNamedPipe:
			e.Type = tar.TypeFifo
		default:
			return fmt.Errorf("%s: unsupported file type %v", full, fi.Mode().Type())
		}
		entries[e.Path] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// walkSorted calls fn for name in dir and, if it is a directory, for its
// contents, depth first with each directory's names in byte order: the
// order of "tar --sort=name".
func walkSorted(dir, name string, fn func(name string, fi fs.FileInfo) error) error {
	full := filepath.Join(dir, name)
	fi, err := os.Lstat(full)
	if err != nil {
		return err
	}
	if err := fn(name, fi); err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := walkSorted(dir, path.Join(name, n), fn); err != nil {
			return err
		}
	}
	return nil
}

// entryPath spells a slash-separated relative path as Entry.Path does.
func entryPath(name string) string {
	name = strings.Trim(path.Clean("/"+name), "/")
	if name == "" {
		return "."
	}
	return "./" + name
}

// fileSHA256 hashes the regular file name, not following a symlink that
// may have replaced it.
func fileSHA256(name string) (string, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lxattrs reads the extended attributes of name itself; nil if it has none
// or the file system has none.
func lxattrs(name string) (map[string]string, error) {
	size, err := unix.Llistxattr(name, nil)
	if errors.Is(err, unix.ENOTSUP) || size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: name, Err: err}
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(name, buf); err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: name, Err: err}
	}
	xattrs := map[string]string{}
	for _, key := range strings.Split(strings.TrimSuffix(string(buf[:size]), "\x00"), "\x00") {
		n, err := unix.Lgetxattr(name, key, nil)
		if err != nil {
			return nil, &fs.PathError{Op: "getxattr " + key, Path: name, Err: err}
		}
		val := make([]byte, n)
		if n, err = unix.Lgetxattr(name, key, val); err != nil {
			return nil, &fs.PathError{Op: "getxattr " + key, Path: name, Err: err}
		}
		xattrs[key] = string(val[:n])
	}
	return xattrs, nil
}

// ReadTar reads the entries of a tar archive, plain or compressed with
// gzip, xz or zstd. Paths are spelled as ReadTree spells them, whether the
// archive has "./etc/", "etc/" or "etc"; extended attributes come from PAX
// "SCHILY.xattr." records.
func ReadTar(r io.Reader) (map[string]Entry, error) {
	br := bufio.NewReader(r)
	zr, err := deb.Decompress(br, "archive"+deb.Sniff(br))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	entries := map[string]Entry{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
		e, err := tarEntry(h, tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		entries[e.Path] = e
	}
}

// tarEntry converts h, hashing the content of regular files from r.
func tarEntry(h *tar.Header, r io.Reader) (Entry, error) {
	e := Entry{
		Path:     entryPath(h.Name),
		Type:     h.Typeflag,
		Mode:     h.Mode & 0o7777,
		Uid:      h.Uid,
		Gid:      h.Gid,
		Linkname: h.Linkname,
		ModTime:  h.ModTime,
	}
	for k, v := range h.PAXRecords {
		if key, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[key] = v
		}
	}
	switch h.Typeflag {
	case tar.TypeReg, 0, tar.TypeCont, tar.TypeGNUSparse: // 0: pre-POSIX regular file
		e.Type, e.Size = tar.TypeReg, h.Size
		sum := sha256.New()
		if _, err := io.Copy(sum, r); err != nil {
			return e, err
		}
		e.SHA256 = hex.EncodeToString(sum.Sum(nil))
	case tar.TypeLink:
		e.Linkname = entryPath(h.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		e.Devmajor, e.Devminor = h.Devmajor, h.Devminor
	case tar.TypeDir, tar.TypeSymlink, tar.TypeFifo:
	default:
		return e, fmt.Errorf("unsupported tar entry type %q", h.Typeflag)
	}
	return e, nil
}

// Difference is one attribute in which two sets of entries differ at Path.
type Difference struct {
	Path string
	What string // "only in A", "only in B", "type file != dir", "mode 0644 != 0755", "content", …
}

func (d Difference) String() string { return d.Path + ": " + d.What }

// Compare lists every attribute in which the entries of a and b differ,
// sorted by path. Modification times are compared in whole seconds, all a
// tar header keeps.
func Compare(a, b map[string]Entry) []Difference {
	var paths []string
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var diffs []Difference
	for _, p := range paths {
		ea, inA := a[p]
		eb, inB := b[p]
		switch {
		case !inB:
			diffs = append(diffs, Difference{p, "only in A"})
		case !inA:
			diffs = append(diffs, Difference{p, "only in B"})
		default:
			for _, what := range compareEntry(ea, eb) {
				diffs = append(diffs, Difference{p, what})
			}
		}
	}
	return diffs
}

// compareEntry lists the attributes in which a and b differ.
func compareEntry(a, b Entry) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if a.Type != b.Type {
		add("type %s != %s", typeName(a.Type), typeName(b.Type))
	}
	if a.Mode != b.Mode {
		add("mode %04o != %04o", a.Mode, b.Mode)
	}
	if a.Uid != b.Uid {
		add("uid %d != %d", a.Uid, b.Uid)
	}
	if a.Gid != b.Gid {
		add("gid %d != %d", a.Gid, b.Gid)
	}
	if a.Size != b.Size {
		add("size %d != %d", a.Size, b.Size)
	}
	if a.SHA256 != b.SHA256 && a.SHA256 != "" && b.SHA256 != "" {
		add("content")
	}
	if a.Linkname != b.Linkname {
		add("link %q != %q", a.Linkname, b.Linkname)
	}
	if a.Devmajor != b.Devmajor || a.Devminor != b.Devminor {
		add("device %d,%d != %d,%d", a.Devmajor, a.Devminor, b.Devmajor, b.Devminor)
	}
	if a.ModTime.Unix() != b.ModTime.Unix() {
		add("mtime %s != %s", a.ModTime.UTC().Format(time.RFC3339), b.ModTime.UTC().Format(time.RFC3339))
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range a.Xattrs {
			if !yield(k) {
				return
			}
		}
		for k := range b.Xattrs {
			if _, ok := a.Xattrs[k]; !ok && !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		va, inA := a.Xattrs[k]
		vb, inB := b.Xattrs[k]
		switch {
		case !inB:
			add("xattr %s only in A", k)
		case !inA:
			add("xattr %s only in B", k)
		case va != vb:
			add("xattr %s %q != %q", k, va, vb)
		}
	}
	return out
}

// typeName names a tar typeflag.
func typeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "file"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeChar:
		return "char-device"
	case tar.TypeBlock:
		return "block-device"
	case tar.TypeDir:
		return "dir"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("%q", t)
}
