package rootfs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/internal/xattr"
)

// TestCopyTree copies a tree with every kind of entry a layer holds and
// finds each one's type, mode, owner, times, content, link target,
// device, extended attributes and hard links the same.
func TestCopyTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: owners and device nodes")
	}
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "usr/bin"), 0o755))
	must(os.Mkdir(filepath.Join(src, "tmp"), 0o755))
	must(unix.Chmod(filepath.Join(src, "tmp"), 0o1777))
	must(os.WriteFile(filepath.Join(src, "usr/bin/su"), []byte("#!setuid\n"), 0o755))
	must(os.Chown(filepath.Join(src, "usr/bin/su"), 0, 42))
	must(unix.Chmod(filepath.Join(src, "usr/bin/su"), 0o4754))
	must(os.Link(filepath.Join(src, "usr/bin/su"), filepath.Join(src, "usr/bin/su2")))
	must(os.Symlink("../usr/bin/su", filepath.Join(src, "tmp/link")))
	must(os.Lchown(filepath.Join(src, "tmp/link"), 7, 8))
	must(os.Symlink("/etc/shadow", filepath.Join(src, "escape"))) // copied, never followed
	must(unix.Mkfifo(filepath.Join(src, "tmp/fifo"), 0o640))
	must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Setxattr(filepath.Join(src, "usr/bin/su"), "security.capability", []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
	old := time.Unix(1700000000, 123456789)
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		must(err)
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})

	dst := filepath.Join(t.TempDir(), "dst")
	must(CopyTree(src, dst))
	want, got := layerView(t, src), layerView(t, dst)
	if want != got {
		t.Errorf("copy differs:\nsrc:\n%s\ndst:\n%s", want, got)
	}
	if !strings.Contains(got, "usr/bin/su2 ") || !strings.Contains(got, "mode=urwxr-xr--") {
		t.Errorf("copy lacks the setuid hard link:\n%s", got)
	}
	var a, b unix.Stat_t
	must(unix.Stat(filepath.Join(dst, "usr/bin/su"), &a))
	must(unix.Stat(filepath.Join(dst, "usr/bin/su2"), &b))
	if a.Ino != b.Ino {
		t.Error("usr/bin/su and su2 are no longer one file")
	}
	if err := CopyTree(src, dst); err == nil {
		t.Error("CopyTree onto an existing directory: no error")
	}
}

// layerView lists each entry of dir with everything a layer records
// of it, and its hard-link group, one a line.
func layerView(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fi, _ := os.Lstat(p)
		fmt.Fprintf(&b, "%s mode=%v uid=%d gid=%d mtime=%d rdev=%d", rel, fi.Mode(), st.Uid, st.Gid, unix.TimespecToNsec(st.Mtim), st.Rdev)
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " data=%q", data)
			if first, ok := inodes[st.Ino]; ok {
				fmt.Fprintf(&b, " link=%s", first)
			}
			inodes[st.Ino] = rel
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " target=%s", target)
		}
		x, err := xattr.List(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, " xattrs=%v\n", x)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
