package rootfs

import (
	"archive/tar"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Unpack unpacks debs into dir as dpkg --unpack would, jobs packages at a
// time, and returns what the dpkg database needs, in the order of debs.
//
// Every write goes through an os.Root on dir. A member named with "..",
// an absolute name, a name reaching through a symlink out of dir (or to
// dir itself), a hard link to anything but an earlier file of the same
// package, a device node or a FIFO (Debian policy 10.6 forbids them) fails
// the unpack with an error naming the package and the member.
//
// As dpkg does, Unpack follows directory symlinks inside dir, so that with
// merged /usr "./bin/bash" lands in usr/bin; an absolute symlink target is
// taken relative to dir, as in a chroot. It creates a package's symlinks
// after its other members, and gives a hard-linked file the owner, mode
// and mtime of the link's entry. An existing directory, or a symlink to
// one, is kept with its attributes; a directory created here gets those
// of the first package in debs that ships it, and its mtime from the tar
// unless something was created in it. Conffiles are written at
// PATH.dpkg-new, for dpkg --configure to install.
//
// Packages are unpacked in parallel, but the result is that of unpacking
// them one by one in the order of debs: when several ship the same
// file, the last one's copy is kept and the path leaves the others'
// Files, as dpkg does for a package that replaces another's files.
func Unpack(ctx context.Context, dir string, debs []DebFile, jobs int) ([]*Installed, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	t := newTree(root)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pkgs := make([]*Installed, len(debs))
	errs := make([]error, len(debs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(jobs, 1) {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for i := range next {
				pkgs[i], errs[i] = t.unpackDeb(ctx, i, debs[i], buf)
				if errs[i] != nil {
					cancel()
				}
			}
		})
	}
feed:
	for i := range debs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()

	if err := firstError(errs); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := t.finishDirs(); err != nil {
		return nil, err
	}
	for i, p := range pkgs {
		p.Files = slices.DeleteFunc(p.Files, func(f string) bool { return t.lost[lostFile{i, f}] })
	}
	return pkgs, nil
}

// firstError returns the first error in the order of debs that is not
// the cancellation another package's failure caused.
func firstError(errs []error) error {
	var canceled error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			canceled = cmp.Or(canceled, err)
		default:
			return err
		}
	}
	return canceled
}

// tree is the directory being unpacked into, shared by the packages being
// unpacked at the same time.
type tree struct {
	root *os.Root

	resolved sync.Map // directory as named in debs → its path without symlinks

	mu    sync.Mutex
	dirs  map[string]*dirState // by path without symlinks
	owner map[string]fileOwner // non-directories by path without symlinks
	lost  map[lostFile]bool    // files another package overwrote
}

type dirState struct {
	existed bool        // before this unpack: keep it as it is
	deb     int         // the first deb, in order, that ships it
	hdr     *tar.Header // and its entry
	touched bool        // something was created in it
}

type fileOwner struct {
	deb  int
	name string // "/usr/bin/foo", as the deb names it
}

type lostFile struct {
	deb  int
	name string
}

func newTree(root *os.Root) *tree {
	return &tree{
		root:  root,
		dirs:  map[string]*dirState{},
		owner: map[string]fileOwner{},
		lost:  map[lostFile]bool{},
	}
}

// debUnpack is the unpacking of one deb.
type debUnpack struct {
	t         *tree
	deb       int
	conffiles map[string]bool
	regular   map[string]string // regular files so far: member path → path written
	files     []string
	buf       []byte
	seq       int
	dir       *dirHandle // the directory last written in
}

// dirHandle is an open directory of the tree. Entries are created in it
// by their base names: one openat each instead of a walk from the root
// for every operation, and no path to resolve.
type dirHandle struct {
	path string   // relative to the tree's root, without symlinks
	root *os.Root // for creating, renaming, chowning entries
	fd   *os.File // for what os.Root lacks: setting a symlink's mtime
}

func (h *dirHandle) close() {
	h.fd.Close()
	h.root.Close()
}

func (t *tree) unpackDeb(ctx context.Context, i int, d DebFile, buf []byte) (*Installed, error) {
	name := d.Name
	if name == "" {
		name = filepath.Base(d.Path)
	}
	f, err := os.Open(d.Path)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", name, err)
	}
	defer f.Close()
	inst, data, err := readDeb(f)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", name, err)
	}
	inst.Priority = d.Priority
	u := &debUnpack{t: t, deb: i, conffiles: map[string]bool{}, regular: map[string]string{}, buf: buf}
	defer u.closeDir()
	for _, c := range inst.Conffiles {
		u.conffiles[c] = true
	}
	// As dpkg, create symlinks after everything else, so that none can
	// redirect a later member of the same package.
	var symlinks []*tar.Header
	err = readTar(data, func(hdr *tar.Header, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeSymlink {
			symlinks = append(symlinks, hdr)
			return nil
		}
		return u.entry(hdr, r)
	})
	for _, hdr := range symlinks {
		if err != nil {
			break
		}
		err = u.entry(hdr, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", inst.Name, err)
	}
	inst.Files = u.files
	return inst, nil
}

// openDir returns a handle on directory p, a path without symlinks. It
// keeps the last one open: a tarball lists a directory's files together.
func (u *debUnpack) openDir(p string) (*dirHandle, error) {
	if u.dir != nil && u.dir.path == p {
		return u.dir, nil
	}
	u.closeDir()
	r, err := u.t.root.OpenRoot(cmp.Or(p, "."))
	if err != nil {
		return nil, err
	}
	fd, err := r.Open(".")
	if err != nil {
		r.Close()
		return nil, err
	}
	u.dir = &dirHandle{p, r, fd}
	return u.dir, nil
}

func (u *debUnpack) closeDir() {
	if u.dir != nil {
		u.dir.close()
		u.dir = nil
	}
}

// memberPath checks a data.tar member name and returns it relative to
// the root, "" for the root itself.
func memberPath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path")
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", errors.New(`path has ".."`)
		}
	}
	p := path.Clean(name)
	if p == "." {
		p = ""
	}
	return p, nil
}

// listName is how dpkg's .list file names a member: "/." for the root.
func listName(p string) string {
	if p == "" {
		return "/."
	}
	return "/" + p
}

func (u *debUnpack) entry(hdr *tar.Header, r io.Reader) error {
	if err := u.create(hdr, r); err != nil {
		return fmt.Errorf("member %q: %w", hdr.Name, err)
	}
	return nil
}

func (u *debUnpack) create(hdr *tar.Header, r io.Reader) error {
	p, err := memberPath(hdr.Name)
	if err != nil {
		return err
	}
	if p == "" {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("root is not a directory")
		}
		u.files = append(u.files, listName(p))
		return nil // the root exists
	}
	if hasXattrs(hdr) && hdr.Typeflag != tar.TypeDir && hdr.Typeflag != tar.TypeReg {
		return errors.New("xattrs are only supported on files and directories")
	}
	parent, err := u.t.resolveDir(path.Dir(p))
	if err != nil {
		return err
	}
	h, err := u.openDir(parent)
	if err != nil {
		return err
	}
	e := &newEntry{dir: h, base: path.Base(p), name: listName(p), hdr: hdr}
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = u.mkdir(p, e)
	case tar.TypeReg:
		err = u.write(e, u.writeFile, r)
	case tar.TypeSymlink:
		err = u.write(e, u.writeSymlink, nil)
	case tar.TypeLink:
		err = u.hardlink(e)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		// dpkg would mknod them, but Debian policy 10.6 forbids them in
		// packages: one here is a broken or hostile deb.
		err = errors.New("device nodes and FIFOs are not supported")
	default:
		err = fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeLink {
		u.regular[p] = path.Join(h.path, e.final())
	}
	u.files = append(u.files, e.name)
	return nil
}

// newEntry is a member being created in directory dir.
type newEntry struct {
	dir      *dirHandle
	base     string // its name in dir
	name     string // "/usr/bin/foo", as the deb names it
	hdr      *tar.Header
	conffile bool
	tmp      string // the name it is written under in dir
}

// final is the name the entry takes in its directory: a conffile's is
// NAME.dpkg-new until dpkg --configure installs it.
func (e *newEntry) final() string {
	if e.conffile {
		return e.base + ".dpkg-new"
	}
	return e.base
}

// mkdir creates directory p, or keeps what is there if it is a directory
// or a symlink to one.
func (u *debUnpack) mkdir(p string, e *newEntry) error {
	symlink, err := u.t.mkdir(e.dir, e.base, u.deb, e.hdr)
	if err != nil || !symlink {
		return err
	}
	// dpkg keeps a symlink where a package has a directory, if it leads
	// to one.
	_, err = u.t.resolveDir(p)
	return err
}

// mkdir creates directory base in dir for deb, or records that it
// exists. It holds t.mu from Mkdir to recording, so that another package
// seeing the directory exist knows whether it was made here or was there
// before.
func (t *tree) mkdir(dir *dirHandle, base string, deb int, hdr *tar.Header) (symlink bool, err error) {
	name := path.Join(dir.path, base)
	t.mu.Lock()
	defer t.mu.Unlock()
	if d, ok := t.dirs[name]; ok {
		if !d.existed && deb < d.deb {
			d.deb, d.hdr = deb, hdr
		}
		return false, nil
	}
	err = dir.root.Mkdir(base, 0o755)
	if err == nil {
		t.dirs[name] = &dirState{deb: deb, hdr: hdr}
		t.touch(dir.path)
		return false, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	fi, err := dir.root.Lstat(base)
	if err != nil {
		return false, err
	}
	symlink = fi.Mode()&fs.ModeSymlink != 0
	if !symlink && !fi.IsDir() {
		return false, errors.New("exists and is not a directory")
	}
	t.dirs[name] = &dirState{existed: true}
	return symlink, nil
}

// touch records that something was created in directory dir; t.mu held.
func (t *tree) touch(dir string) {
	if d, ok := t.dirs[dir]; ok {
		d.touched = true
	}
}

// write creates a non-directory entry with create under a temporary
// name, then renames it into place.
func (u *debUnpack) write(e *newEntry, create func(*newEntry, io.Reader) error, r io.Reader) error {
	e.conffile = u.conffiles[e.name]
	// Short, so that the longest member names still fit.
	u.seq++
	e.tmp = fmt.Sprintf(".basebuild-%d-%d", u.deb, u.seq)
	if err := create(e, r); err != nil {
		e.dir.root.Remove(e.tmp)
		return err
	}
	return u.t.commit(u.deb, e)
}

func (u *debUnpack) writeFile(e *newEntry, r io.Reader) error {
	f, err := e.dir.root.OpenFile(e.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(f, r, u.buf); err != nil {
		return truncated(err)
	}
	// chown clears setuid, setgid and file capabilities: chmod and
	// xattrs come after it.
	if err := f.Chown(e.hdr.Uid, e.hdr.Gid); err != nil {
		return err
	}
	if err := f.Chmod(fileMode(e.hdr)); err != nil {
		return err
	}
	if err := setXattrs(f, e.hdr); err != nil {
		return err
	}
	if err := setMtime(e.dir, e.tmp, e.hdr); err != nil {
		return err
	}
	return f.Close()
}

func (u *debUnpack) writeSymlink(e *newEntry, _ io.Reader) error {
	if e.hdr.Linkname == "" {
		return errors.New("symlink without target")
	}
	if err := e.dir.root.Symlink(e.hdr.Linkname, e.tmp); err != nil {
		return err
	}
	if err := e.dir.root.Lchown(e.tmp, e.hdr.Uid, e.hdr.Gid); err != nil {
		return err
	}
	return setMtime(e.dir, e.tmp, e.hdr)
}

// setMtime sets the mtime of entry name of dir, not following a symlink,
// as dpkg does: in whole seconds.
func setMtime(dir *dirHandle, name string, hdr *tar.Header) error {
	ts := unix.Timespec{Sec: hdr.ModTime.Unix()}
	conn, err := dir.fd.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = conn.Control(func(fd uintptr) {
		serr = unix.UtimesNanoAt(int(fd), name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	})
	return cmp.Or(err, serr)
}

// hardlink links to an earlier regular file of the same package, as dpkg
// only links within a package, and gives the file the owner, mode and
// mtime of the link's entry, as dpkg does.
func (u *debUnpack) hardlink(e *newEntry) error {
	lp, err := memberPath(e.hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", e.hdr.Linkname, err)
	}
	src, ok := u.regular[lp]
	if !ok {
		return fmt.Errorf("hard link to %q, not an earlier file of the package", e.hdr.Linkname)
	}
	return u.write(e, func(e *newEntry, _ io.Reader) error {
		if err := u.t.root.Link(src, path.Join(e.dir.path, e.tmp)); err != nil {
			return err
		}
		if err := e.dir.root.Chown(e.tmp, e.hdr.Uid, e.hdr.Gid); err != nil {
			return err
		}
		if err := e.dir.root.Chmod(e.tmp, fileMode(e.hdr)); err != nil {
			return err
		}
		return setMtime(e.dir, e.tmp, e.hdr)
	}, nil)
}

// commit renames e from its temporary name to its final one, unless a
// later deb already wrote there: the last deb in order wins, whatever
// the order of unpacking.
func (t *tree) commit(deb int, e *newEntry) error {
	key := path.Join(e.dir.path, e.base)
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, ok := t.owner[key]
	if ok && prev.deb > deb {
		if prev.name == e.name {
			t.lost[lostFile{deb, e.name}] = true
		}
		return e.dir.root.Remove(e.tmp)
	}
	if err := e.dir.root.Rename(e.tmp, e.final()); err != nil {
		e.dir.root.Remove(e.tmp)
		if le := (*os.LinkError)(nil); errors.As(err, &le) {
			err = le.Err // not the temporary name
		}
		return fmt.Errorf("/%s: %w", path.Join(e.dir.path, e.final()), err)
	}
	if ok && prev.name == e.name {
		t.lost[lostFile{prev.deb, e.name}] = true
	}
	t.owner[key] = fileOwner{deb, e.name}
	t.touch(e.dir.path)
	return nil
}

// maxSymlinks bounds symlink resolution, as Linux's ELOOP does.
const maxSymlinks = 40

var (
	errEscape = errors.New("path reaches through a symlink out of the root")
	errLoop   = errors.New("too many levels of symlinks")
)

// resolveDir returns the path of directory p, as named in a deb, with
// every symlink in it resolved as dpkg in a chroot would: relative
// targets from the link's directory, absolute ones from the root. A
// symlink leading above the root or to the root itself is an escape:
// outside a chroot it would name the host's.
func (t *tree) resolveDir(p string) (string, error) {
	if p == "." || p == "" {
		return "", nil
	}
	if r, ok := t.resolved.Load(p); ok {
		return r.(string), nil
	}
	parent, err := t.resolveDir(path.Dir(p))
	if err != nil {
		return "", err
	}
	r, err := t.follow(path.Join(parent, path.Base(p)), 0)
	if err != nil {
		return "", err
	}
	t.resolved.Store(p, r)
	return r, nil
}

// follow returns the real path of q, a path whose parent is real, if it
// is a directory or a symlink to one.
func (t *tree) follow(q string, links int) (string, error) {
	fi, err := t.root.Lstat(q)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("directory /%s does not exist", q)
	}
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return q, nil
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return "", fmt.Errorf("/%s is not a directory", q)
	}
	if links >= maxSymlinks {
		return "", fmt.Errorf("%s: %w", q, errLoop)
	}
	target, err := t.root.Readlink(q)
	if err != nil {
		return "", err
	}
	cur := path.Dir(q)
	if strings.HasPrefix(target, "/") {
		cur = ""
	}
	if cur == "." {
		cur = ""
	}
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if cur == "" {
				return "", fmt.Errorf("%s -> %s: %w", q, target, errEscape)
			}
			if cur = path.Dir(cur); cur == "." {
				cur = ""
			}
		default:
			if cur, err = t.follow(path.Join(cur, c), links+1); errors.Is(err, errLoop) {
				return "", err
			} else if err != nil {
				return "", fmt.Errorf("%s -> %s: %w", q, target, err)
			}
		}
	}
	if cur == "" {
		return "", fmt.Errorf("%s -> %s: %w", q, target, errEscape)
	}
	return cur, nil
}

// finishDirs gives the directories created here their owners, modes,
// xattrs and, for those nothing was created in, mtimes.
func (t *tree) finishDirs() error {
	for _, name := range slices.Sorted(maps.Keys(t.dirs)) {
		d := t.dirs[name]
		if d.existed {
			continue
		}
		if err := t.setDirAttrs(name, d); err != nil {
			return fmt.Errorf("directory /%s: %w", name, err)
		}
	}
	return nil
}

func (t *tree) setDirAttrs(name string, d *dirState) error {
	f, err := t.root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chown(d.hdr.Uid, d.hdr.Gid); err != nil {
		return err
	}
	if err := f.Chmod(fileMode(d.hdr)); err != nil {
		return err
	}
	if err := setXattrs(f, d.hdr); err != nil {
		return err
	}
	if d.touched {
		return nil
	}
	mtime := time.Unix(d.hdr.ModTime.Unix(), 0) // whole seconds, as dpkg
	return t.root.Chtimes(name, mtime, mtime)
}

// fileMode is the permission bits of hdr, with setuid, setgid and sticky.
func fileMode(hdr *tar.Header) fs.FileMode {
	m := fs.FileMode(hdr.Mode) & fs.ModePerm
	if hdr.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// xattrPrefix marks extended attributes in PAX records, as GNU tar and
// bsdtar write them.
const xattrPrefix = "SCHILY.xattr."

func hasXattrs(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, xattrPrefix) {
			return true
		}
	}
	return false
}

// setXattrs sets the extended attributes hdr carries on the open file f.
func setXattrs(f *os.File, hdr *tar.Header) error {
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, xattrPrefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = conn.Control(func(fd uintptr) {
		for _, k := range keys {
			attr := strings.TrimPrefix(k, xattrPrefix)
			if err := unix.Fsetxattr(int(fd), attr, []byte(hdr.PAXRecords[k]), 0); err != nil {
				serr = fmt.Errorf("xattr %s: %w", attr, err)
				return
			}
		}
	})
	return cmp.Or(err, serr)
}
