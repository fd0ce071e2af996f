package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/basebuild/basebuild/internal/xattr"
	"golang.org/x/sys/unix"
)

// CopyTree copies the tree src to dst, which must not exist, exactly as
// a layer would hold it: types, modes, owners, modification times (to the
// nanosecond), extended attributes and hard links. Nothing may run in src
// meanwhile: symlinks are copied, never followed, and only directories
// seen as such are entered. Sockets are left out, as layers leave them.
func CopyTree(src, dst string) error {
	root, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer root.Close()
	c := treeCopy{src: root, links: map[inode]string{}}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: src, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("copy %s: not a directory", src)
	}
	if err := c.entry(".", src, dst, &st); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// inode identifies a file for finding its hard links.
type inode struct{ dev, ino uint64 }

type treeCopy struct {
	src   *os.Root
	links map[inode]string // files with more than one link: their first copy
}

// entry copies src, the entry rel of the tree, whose lstat is st, to dst.
func (c *treeCopy) entry(rel, src, dst string, st *unix.Stat_t) error {
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		id := inode{uint64(st.Dev), uint64(st.Ino)}
		if first, ok := c.links[id]; ok {
			return os.Link(first, dst)
		}
		c.links[id] = dst
	}
	switch typ {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		names, err := readDirNames(c.src, rel)
		if err != nil {
			return err
		}
		for _, n := range names {
			var cst unix.Stat_t
			s := filepath.Join(src, n)
			if err := unix.Lstat(s, &cst); err != nil {
				return &fs.PathError{Op: "lstat", Path: s, Err: err}
			}
			if err := c.entry(path.Join(rel, n), s, filepath.Join(dst, n), &cst); err != nil {
				return err
			}
		}
	case unix.S_IFREG:
		if err := copyContent(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknod(dst, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return &fs.PathError{Op: "mknod", Path: dst, Err: err}
		}
	case unix.S_IFSOCK:
		return nil
	default:
		return fmt.Errorf("%s: cannot copy file type %#o", src, typ)
	}
	return copyAttrs(src, dst, st)
}

// copyContent copies the regular file src to the new file dst.
func copyContent(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// copyAttrs gives dst src's owner, mode, extended attributes and times;
// the owner first, as chown clears setuid bits.
func copyAttrs(src, dst string, st *unix.Stat_t) error {
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return &fs.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	xattrs, err := xattr.List(src)
	if err != nil {
		return err
	}
	for key, val := range xattrs {
		if err := unix.Lsetxattr(dst, key, []byte(val), 0); err != nil {
			return &fs.PathError{Op: "setxattr " + key, Path: dst, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: dst, Err: err}
	}
	return nil
}
