package rootfs

import (
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
	"time"

	"golang.org/x/sys/unix"
)

// A Copy is a --copy SRC:DST: the file or tree Src on the host, copied to
// the absolute path Dst in the image, root-owned, modes kept. ParseCopy
// reads Src into Files.
type Copy struct {
	Src, Dst string
	Files    []CopyFile // Src's entries, Src itself first, parents before children

	opening func(rel string) // if set, called before an entry is opened: a test's chance to swap it
}

// A CopyFile is one entry of a Copy's source as the image will hold it.
type CopyFile struct {
	Rel     string      // slash-separated path below Src; "." for Src itself
	Mode    fs.FileMode // type and permission bits (setuid, setgid, sticky kept)
	SHA256  string      // regular files: their content's
	Target  string      // symlinks: where they point
	ModTime time.Time

	info fs.FileInfo // what the scan saw, so that the copy reads that file
}

// ParseCopy parses "SRC:DST" (the value of --copy) (split at the last colon) and scans SRC: a
// one-line error names the flag's value if DST is not an absolute path
// inside the image or SRC is missing or holds something other than
// regular files, directories and symlinks.
func ParseCopy(arg string) (Copy, error) {
	i := strings.LastIndex(arg, ":")
	if i < 0 {
		return Copy{}, fmt.Errorf("%q: want SRC:DST", arg)
	}
	c := Copy{Src: arg[:i], Dst: arg[i+1:]}
	switch {
	case c.Src == "":
		return Copy{}, fmt.Errorf("%q: empty SRC", arg)
	case !path.IsAbs(c.Dst):
		return Copy{}, fmt.Errorf("%q: DST must be an absolute path in the image", arg)
	}
	rel := strings.TrimPrefix(path.Clean(c.Dst), "/")
	if rel == "" || !filepath.IsLocal(rel) || strings.Contains(c.Dst, "/../") || strings.HasSuffix(c.Dst, "/..") {
		return Copy{}, fmt.Errorf("%q: DST %q escapes the image or is its root", arg, c.Dst)
	}
	c.Dst = "/" + rel
	if err := c.scan(); err != nil {
		return Copy{}, fmt.Errorf("%q: %v", arg, err)
	}
	return c, nil
}

// scan fills c.Files from c.Src. It never follows a symlink below Src:
// it opens each entry by its name in its parent directory's descriptor
// without following it, reads a symlink as a link, and reads each
// regular file and directory from a descriptor checked to be that entry.
// A file or directory swapped for a symlink (to a host secret, say)
// while it scans is refused or read as it was, never read through.
func (c *Copy) scan() error {
	dir, top, err := openSource(c.Src)
	if err != nil {
		return err
	}
	defer dir.Close()
	c.Files = nil
	return c.walk(dir, top, ".")
}

// openSource opens the directory holding src, by the user's name for
// it, and returns it with src's name in it, "." if src is that directory.
func openSource(src string) (*os.File, string, error) {
	src = filepath.Clean(src)
	dir, top := filepath.Dir(src), filepath.Base(src)
	if top == "." || top == ".." || top == string(filepath.Separator) {
		dir, top = src, "."
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, "", err
	}
	return f, top, nil
}

// walk adds the entry name of dir, rel below Src, and what it holds,
// parents before children and in the order of names, as
// filepath.WalkDir visits them.
func (c *Copy) walk(dir *os.File, name, rel string) error {
	host := filepath.Join(c.Src, filepath.FromSlash(rel))
	if c.opening != nil {
		c.opening(rel)
	}
	entry, info, err := openEntry(dir, name)
	if err != nil {
		return fmt.Errorf("%s: %w", host, unwrapPath(err))
	}
	f := CopyFile{Rel: rel, Mode: info.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), ModTime: info.ModTime(), info: info}
	var sub *os.File
	var names []string
	switch {
	case info.Mode().IsRegular():
		var file *os.File
		if file, err = openChecked(dir, name, info); err == nil {
			h := sha256.New()
			_, err = io.Copy(h, file)
			file.Close()
			f.SHA256 = hex.EncodeToString(h.Sum(nil))
		}
	case info.Mode()&fs.ModeSymlink != 0:
		f.Target, err = readlink(entry)
	case info.IsDir():
		if sub, err = openChecked(dir, name, info); err == nil {
			defer sub.Close()
			names, err = sub.Readdirnames(-1)
			slices.Sort(names)
		}
	default:
		err = errors.New("not a regular file, directory or symlink")
	}
	entry.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", host, unwrapPath(err))
	}
	c.Files = append(c.Files, f)
	for _, n := range names {
		if err := c.walk(sub, n, path.Join(rel, n)); err != nil {
			return err
		}
	}
	return nil
}

// errChanged is an entry of a --copy source that is not what was looked
// at: replaced, or a symlink swapped in for it or for a directory above.
var errChanged = errors.New("changed while being read (replaced, or a symlink swapped in)")

// openEntry opens name in dir as a path only (O_PATH: opening a device
// or FIFO does nothing) and without following it, and stats it.
func openEntry(dir *os.File, name string) (*os.File, fs.FileInfo, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// readlink reads the symlink open as f (by openEntry).
func readlink(f *os.File) (string, error) {
	for n := 256; ; n *= 2 {
		buf := make([]byte, n)
		m, err := unix.Readlinkat(int(f.Fd()), "", buf)
		if err != nil {
			return "", err
		}
		if m < n {
			return string(buf[:m]), nil
		}
	}
}

// openChecked opens name in dir for reading, without following it, and
// checks that it is the entry info describes, of the same type: not
// whatever was swapped in since. O_NONBLOCK, so that a FIFO swapped in
// cannot block the open.
func openChecked(dir *os.File, name string, info fs.FileInfo) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	if info.IsDir() {
		flags |= unix.O_DIRECTORY
	}
	fd, err := unix.Openat(int(dir.Fd()), name, flags, 0)
	if err == unix.ELOOP || err == unix.ENOTDIR {
		return nil, errChanged
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	got, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if got.Mode().Type() != info.Mode().Type() || !os.SameFile(got, info) {
		f.Close()
		return nil, errChanged
	}
	return f, nil
}

// openSourceFile opens the regular file f of a source, top in dir, as
// scan did: one name at a time, following no symlink, and checked to be
// the file the scan read.
func openSourceFile(dir *os.File, top string, f CopyFile) (*os.File, error) {
	names := []string{top}
	if f.Rel != "." {
		names = append(names, strings.Split(f.Rel, "/")...)
	}
	d := dir
	for _, n := range names[:len(names)-1] {
		fd, err := unix.Openat(int(d.Fd()), n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if d != dir {
			d.Close()
		}
		if err == unix.ELOOP || err == unix.ENOTDIR {
			return nil, errChanged
		}
		if err != nil {
			return nil, err
		}
		d = os.NewFile(uintptr(fd), n)
	}
	if d != dir {
		defer d.Close()
	}
	return openChecked(d, names[len(names)-1], f.info)
}

// unwrapPath drops a PathError's operation and path, which name the
// root's inner path: the caller names the host path.
func unwrapPath(err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Digest is the SHA-256 of the copy as the image built at epoch holds it:
// names, types, modes, contents and link targets, and the times of files
// and directories clamped to epoch as Finish clamps them.
func (c *Copy) Digest(epoch time.Time) string {
	h := sha256.New()
	for _, f := range c.Files {
		mtime := "-"
		if f.Mode&fs.ModeSymlink == 0 {
			t := f.ModTime
			if t.After(epoch) {
				t = epoch
			}
			mtime = fmt.Sprint(t.UnixNano())
		}
		fmt.Fprintf(h, "%q %s %s %q %s\n", f.Rel, f.Mode, f.SHA256, f.Target, mtime)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CopyInto copies c into the tree dir through an os.Root, so nothing lands
// outside it: the entries ParseCopy saw, root-owned, with their modes and
// modification times (Finish clamps those to the epoch). A file whose
// content changed since the scan is refused: the fingerprint would lie.
func CopyInto(dir string, c Copy) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("copy %s:%s: %w", c.Src, c.Dst, err)
		}
	}()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	srcDir, top, err := openSource(c.Src)
	if err != nil {
		return err
	}
	defer srcDir.Close()
	dst := strings.TrimPrefix(c.Dst, "/")
	if err := root.MkdirAll(path.Dir(dst), 0o755); err != nil {
		return err
	}
	var dirs []CopyFile
	for _, f := range c.Files {
		name := path.Join(dst, f.Rel)
		switch {
		case f.Mode.IsDir():
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			dirs = append(dirs, f)
		case f.Mode&fs.ModeSymlink != 0:
			if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := root.Symlink(f.Target, name); err != nil {
				return err
			}
			if err := root.Lchown(name, 0, 0); err != nil {
				return err
			}
			continue
		default:
			if c.opening != nil {
				c.opening(f.Rel)
			}
			if err := copyFile(srcDir, top, root, name, f); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(c.Src, filepath.FromSlash(f.Rel)), err)
			}
		}
		if err := setAttrs(root, name, f); err != nil {
			return err
		}
	}
	// Directories' times last, once their entries are written.
	for i := len(dirs) - 1; i >= 0; i-- {
		f := dirs[i]
		if err := setAttrs(root, path.Join(dst, f.Rel), f); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies the regular file f of the source, top in srcDir, to
// name in the image's root: from a descriptor checked to be the file the
// scan read, and only if its content is still what the scan hashed (the
// fingerprint records that).
func copyFile(srcDir *os.File, top string, root *os.Root, name string, f CopyFile) error {
	in, err := openSourceFile(srcDir, top, f)
	if err != nil {
		return unwrapPath(err)
	}
	defer in.Close()
	// Replace, never write through, whatever is there.
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		err = errors.New("changed during the build")
	}
	if err != nil {
		root.Remove(name)
		return unwrapPath(err)
	}
	return nil
}

// setAttrs makes name root-owned with f's mode and time; the mode comes
// after the owner, which would clear setuid and setgid bits.
func setAttrs(root *os.Root, name string, f CopyFile) error {
	if err := root.Lchown(name, 0, 0); err != nil {
		return err
	}
	if err := root.Chmod(name, f.Mode&^fs.ModeType); err != nil {
		return err
	}
	return root.Chtimes(name, f.ModTime, f.ModTime)
}
