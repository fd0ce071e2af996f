package oci

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The tree and layer diff: what verify reports, and what the tests
// compare trees and images with.

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
	ModTime  time.Time // whole seconds, all a tar header keeps
	Xattrs   map[string]string
}

// ReadTree reads the entries of the directory tree dir as WriteTar sees
// them, but with nothing left out and modification times as they are:
// symlinks are not followed; files that are hard links of an earlier
// file, in the order GNU tar visits them ("tar --sort=name"), are hard
// link entries; sockets, which tar cannot store, and the build host's
// security.selinux labels are left out.
func ReadTree(dir string) (map[string]Entry, error) {
	entries := map[string]Entry{}
	hs := &headers{epoch: math.MaxInt64, logf: func(string, ...any) {}, links: map[inode]string{}}
	err := walkTree(dir, func(name, full string, st *unix.Stat_t) error {
		h, err := hs.of(name, full, st)
		if err != nil || h == nil {
			return err
		}
		e := Entry{
			Path:     entryPath(name),
			Type:     h.typeflag,
			Mode:     h.mode,
			Uid:      int(h.uid),
			Gid:      int(h.gid),
			Size:     h.size,
			Linkname: h.linkname,
			Devmajor: h.devmajor,
			Devminor: h.devminor,
			ModTime:  time.Unix(h.mtime, 0),
			Xattrs:   h.xattrs,
		}
		switch h.typeflag {
		case tar.TypeLink:
			e.Linkname = entryPath(h.linkname)
		case tar.TypeReg:
			if e.SHA256, err = fileSHA256(full); err != nil {
				return err
			}
		}
		entries[e.Path] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// walkTree calls fn for each entry of the tree dir, depth first with each
// directory's names in byte order: the order of "tar --sort=name". The
// root comes first, named "." and reached through a symlink if dir is one
// (as with "tar -C DIR ."), then the entries below it, named "./etc/passwd",
// with their lstat: symlinks below the root are not followed. When fn
// returns fs.SkipDir, nothing below the entry is visited.
func walkTree(dir string, fn func(name, full string, st *unix.Stat_t) error) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s: not a directory", dir)
	}
	return walkEntry(".", dir, &st, fn)
}

func walkEntry(name, full string, st *unix.Stat_t, fn func(name, full string, st *unix.Stat_t) error) error {
	if err := fn(name, full, st); err == fs.SkipDir {
		return nil
	} else if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
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
		child := filepath.Join(full, n)
		var cst unix.Stat_t
		if err := unix.Lstat(child, &cst); err != nil {
			return &fs.PathError{Op: "lstat", Path: child, Err: err}
		}
		if err := walkEntry(name+"/"+n, child, &cst, fn); err != nil {
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

// ReadTar reads the entries of a tar archive, uncompressed (a layer's
// Uncompressed stream, say). Paths are spelled as ReadTree spells them,
// whether the archive has "./etc/", "etc/" or "etc"; extended attributes
// come from PAX "SCHILY.xattr." records.
func ReadTar(r io.Reader) (map[string]Entry, error) {
	entries := map[string]Entry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
		e, err := headerEntry(h, tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		entries[e.Path] = e
	}
}

// headerEntry converts h, hashing the content of regular files from r.
func headerEntry(h *tar.Header, r io.Reader) (Entry, error) {
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
