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
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"pault.ag/go/debian/version"

	"github.com/basebuild/basebuild/debian/control"
	"github.com/basebuild/basebuild/debian/deb"
	"github.com/basebuild/basebuild/internal/cache"
)

// Unpack unpacks debs into dir as debootstrap installs them, jobs packages
// at a time, and returns what the dpkg database needs, in the order of
// debs. Files are written as dpkg --unpack writes them.
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
// debootstrap leaves it with (see planDirs). Conffiles are written at
// PATH.dpkg-new, for dpkg --configure to install.
//
// Packages are unpacked in parallel, but the result is that of unpacking
// them one by one in the order of debs: when several ship the same
// file, the last one's copy is kept and the path leaves the others'
// Files, as dpkg does for a package that replaces another's files. As
// dpkg, two packages may share a file (not a directory) only if one's
// Replaces names the other (at its version): else the unpack fails with
// dpkg's "trying to overwrite '/x', which is also in package y 1.0".
// unpacked, if not nil, is told each time a package is unpacked how many
// are, of all debs, from several goroutines at once.
func Unpack(ctx context.Context, dir string, debs []DebFile, jobs int, unpacked func(done, total int)) ([]*Installed, error) {
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
	var done atomic.Int64
	for range max(jobs, 1) {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for i := range next {
				pkgs[i], errs[i] = t.unpackDeb(ctx, i, debs[i], buf)
				if errs[i] != nil {
					cancel()
				} else if unpacked != nil {
					unpacked(int(done.Add(1)), len(debs))
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
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	required := make([]bool, len(debs))
	for i, p := range pkgs {
		p.Required = debs[i].Required
		required[i] = p.Required
	}
	if err := t.finishDirs(installOrder(debs, required), required); err != nil {
		return nil, err
	}
	for i, p := range pkgs {
		p.Files = slices.DeleteFunc(p.Files, func(f string) bool { return t.lost[lostFile{i, f}] })
	}
	return pkgs, nil
}

// installOrder returns each deb's place in the order debootstrap
// installs them: the required packages first, then the others, each by
// name, the order of its debpaths file (pkgdetails PKGS sorts by name).
func installOrder(debs []DebFile, required []bool) []int {
	idx := make([]int, len(debs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(
			cmp.Compare(b2i(required[b]), b2i(required[a])),
			cmp.Compare(debs[a].Name, debs[b].Name))
	})
	rank := make([]int, len(debs))
	for r, i := range idx {
		rank[i] = r
	}
	return rank
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
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
	pkgs  map[int]*Installed   // the packages being unpacked, by deb
}

type dirState struct {
	existed  bool      // before this unpack: keep it as it is
	shippers []shipper // the packages that ship it, in no order
	children bool      // something was created in it
	files    bool      // something else than a directory
}

// shipper is a package's entry for a directory.
type shipper struct {
	deb  int
	name string // as the package names it: "lib/x86_64-linux-gnu"
	hdr  *tar.Header
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
		pkgs:  map[int]*Installed{},
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
	path := d.Path
	if d.Fetched != nil {
		var err error
		if path, err = d.Fetched(ctx); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", name, err)
	}
	defer f.Close()
	inst, data, err := readDeb(f)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", name, err)
	}
	inst.Priority = d.Priority
	t.mu.Lock()
	t.pkgs[i] = inst
	t.mu.Unlock()
	u := &debUnpack{t: t, deb: i, conffiles: map[string]bool{}, regular: map[string]string{}, buf: buf}
	defer u.closeDir()
	for _, c := range inst.Conffiles {
		u.conffiles[c] = true
	}
	// The data.tar from the cache, or from the deb, kept in the cache as
	// it is read.
	var stream io.Reader
	var entry *cache.DataEntry
	cached, err := d.Cache.OpenData(d.SHA256)
	if err == nil {
		defer cached.Close()
		stream = cached
	} else {
		zr, err := data.Open()
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", name, err)
		}
		defer zr.Close()
		stream = zr
		if entry = d.Cache.NewData(d.SHA256); entry != nil {
			stream = io.TeeReader(zr, entry)
		}
	}
	// As dpkg, create symlinks after everything else, so that none can
	// redirect a later member of the same package.
	var symlinks []*tar.Header
	err = deb.WalkTar(stream, data.Name, func(hdr *tar.Header, r io.Reader) error {
		if err := context.Cause(ctx); err != nil {
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
	switch {
	case entry != nil && err != nil:
		entry.Discard()
	case entry != nil:
		entry.Commit()
	}
	if ow := (*overwriteError)(nil); errors.As(err, &ow) {
		return nil, ow // it names the packages
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
	symlink, err := u.t.mkdir(e.dir, e.base, shipper{u.deb, p, e.hdr})
	if err != nil || !symlink {
		return err
	}
	// dpkg keeps a symlink where a package has a directory, if it leads
	// to one.
	_, err = u.t.resolveDir(p)
	return err
}

// mkdir creates directory base in dir for s, or records that it exists.
// It holds t.mu from Mkdir to recording, so that another package seeing
// the directory exist knows whether it was made here or was there
// before.
func (t *tree) mkdir(dir *dirHandle, base string, s shipper) (symlink bool, err error) {
	name := path.Join(dir.path, base)
	t.mu.Lock()
	defer t.mu.Unlock()
	if d, ok := t.dirs[name]; ok {
		if !d.existed {
			d.shippers = append(d.shippers, s)
		}
		return false, nil
	}
	err = dir.root.Mkdir(base, 0o755)
	if err == nil {
		t.dirs[name] = &dirState{shippers: []shipper{s}}
		t.created(dir.path, false)
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

// created records that something was created in directory dir, a file
// unless a directory; t.mu held.
func (t *tree) created(dir string, file bool) {
	if d, ok := t.dirs[dir]; ok {
		d.children = true
		d.files = d.files || file
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
		return err
	}
	// chown clears setuid and setgid: chmod comes after it. Extended
	// attributes in the member's PAX records are ignored, as dpkg ignores
	// them: a package's file capabilities or trusted.* attributes would
	// be set as root and carried into the layer.
	if err := f.Chown(e.hdr.Uid, e.hdr.Gid); err != nil {
		return err
	}
	if err := f.Chmod(fileMode(e.hdr)); err != nil {
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
	if ok && prev.deb != deb {
		if err := t.mayShare(fileOwner{deb, e.name}, prev); err != nil {
			e.dir.root.Remove(e.tmp)
			return err
		}
	}
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
	t.created(e.dir.path, true)
	return nil
}

// mayShare refuses a file that packages a and b both ship, unless one
// package replaces the other, as dpkg refuses to overwrite another
// package's file without Replaces. The file is compared by its path
// without symlinks, so that a package cannot replace another's
// /usr/bin/x by shipping /bin/x in a merged /usr. t.mu held.
func (t *tree) mayShare(a, b fileOwner) error {
	pa, pb := t.pkgs[a.deb], t.pkgs[b.deb]
	if replaces(pa, pb) || replaces(pb, pa) {
		return nil
	}
	// As dpkg says it, unpacking the later package in the order of debs,
	// whichever was unpacked first here.
	if a.deb < b.deb {
		a, b, pa, pb = b, a, pb, pa
	}
	return &overwriteError{pa.Name, a.name, pb.Name, pb.Version}
}

// overwriteError is a package's file that another has too.
type overwriteError struct {
	pkg, name              string // the later package, the file as it names it
	otherPkg, otherVersion string
}

func (e *overwriteError) Error() string {
	return fmt.Sprintf("package %s: trying to overwrite '%s', which is also in package %s %s", e.pkg, e.name, e.otherPkg, e.otherVersion)
}

// replaces says whether p's Replaces field names q, at q's version.
func replaces(p, q *Installed) bool {
	field := controlValue(p.Control, "Replaces")
	if field == "" {
		return false
	}
	dep, err := control.ParseRelations(field)
	if err != nil {
		return false
	}
	v, err := version.Parse(q.Version)
	if err != nil {
		return false
	}
	for _, rel := range dep.Relations {
		for _, poss := range rel.Possibilities {
			if poss.Name == q.Name && (poss.Version == nil || poss.Version.SatisfiedBy(v)) {
				return true
			}
		}
	}
	return false
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

// finishDirs gives the directories created here the owners, modes
// and mtimes planDirs plans.
func (t *tree) finishDirs(rank []int, required []bool) error {
	plans := planDirs(t.dirs, rank, required)
	for _, name := range slices.Sorted(maps.Keys(plans)) {
		if err := t.setDirAttrs(name, plans[name]); err != nil {
			return fmt.Errorf("directory /%s: %w", name, err)
		}
	}
	return nil
}

// dirPlan is what a directory gets: the attributes of entry hdr, and its
// mtime too if keepMtime.
type dirPlan struct {
	hdr       *tar.Header
	keepMtime bool
}

// planDirs says which entry gives each directory created here its
// attributes, and whether its mtime too, as debootstrap installs the
// packages, in two stages:
//
//   - The first extracts the required packages (plan.Package.Required), one after
//     the other in rank's order, with "tar -x -k" into a tree whose /usr
//     is not merged yet. tar creates a directory, and once it has
//     extracted what the package has in it, gives it the attributes of
//     its entry; it leaves a directory that exists alone. merge_usr then
//     renames bin, lib, … into /usr, or, where /usr has the directory
//     too, renames their entries into it, recursively.
//   - The second runs dpkg --unpack on every package, the required ones
//     again, then the others in rank's order. dpkg leaves an existing
//     directory alone, gives one it creates the attributes of its entry
//     right away, and writes every other file anew.
//
// So a directory takes the attributes of the first entry for it in that
// order: of a required package, under the name merge_usr keeps (/usr's)
// if one has it, else of the others. It keeps that entry's mtime only
// if nothing is created in it afterwards: if it holds no file (dpkg
// rewrites them), and, if the first stage created it, no directory that
// a later package of that stage brought, that merge_usr moved in or
// that the second stage created; if the second stage did, nothing.
func planDirs(dirs map[string]*dirState, rank []int, required []bool) map[string]dirPlan {
	first := func(ss []shipper) (f shipper) {
		for i, s := range ss {
			if i == 0 || rank[s.deb] < rank[f.deb] {
				f = s
			}
		}
		return f
	}
	// The first stage's directories by the names the packages give them,
	// before merge_usr; real is the directory each became.
	type stageDir struct {
		first shipper
		real  string
		later bool // a later package created a directory in it
	}
	stage := map[string]*stageDir{}
	names := map[string][]string{} // by real directory
	for real, d := range dirs {
		byName := map[string][]shipper{}
		for _, s := range d.shippers {
			if required[s.deb] {
				byName[s.name] = append(byName[s.name], s)
			}
		}
		for name, ss := range byName {
			stage[name] = &stageDir{first: first(ss), real: real}
			names[real] = append(names[real], name)
		}
	}
	for name, sd := range stage {
		if parent := stage[path.Dir(name)]; parent != nil && rank[sd.first.deb] > rank[parent.first.deb] {
			parent.later = true
		}
	}
	// After merge_usr, a directory is the one named as in /usr if there
	// was one, and merge_usr moved into it the directories of the others
	// it lacked; else the other, renamed as a whole.
	children := map[string][]string{}
	for name := range stage {
		children[path.Dir(name)] = append(children[path.Dir(name)], name)
	}
	merged := map[string]*stageDir{}
	moved := map[string]bool{}
	for real, ns := range names {
		slices.SortFunc(ns, func(a, b string) int {
			return cmp.Or(cmp.Compare(rank[stage[a].first.deb], rank[stage[b].first.deb]), strings.Compare(a, b))
		})
		if sd := stage[real]; sd != nil && sd.real == real {
			merged[real] = sd
		} else {
			merged[real] = stage[ns[0]]
			continue
		}
		for _, name := range ns {
			if name == real {
				continue
			}
			for _, c := range children[name] {
				if _, ok := stage[path.Join(real, path.Base(c))]; !ok {
					moved[real] = true
				}
			}
		}
	}

	plans := map[string]dirPlan{}
	for real, d := range dirs {
		switch sd, ok := merged[real]; {
		case d.existed:
		case ok:
			plans[real] = dirPlan{sd.first.hdr, !d.files && !sd.later && !moved[real]}
		default:
			plans[real] = dirPlan{first(d.shippers).hdr, !d.children}
		}
	}
	// A directory the second stage creates in one of the first's
	// changes its mtime.
	for real, d := range dirs {
		parent := path.Dir(real)
		if _, ok := merged[real]; ok || d.existed || merged[parent] == nil {
			continue
		}
		if p, ok := plans[parent]; ok {
			p.keepMtime = false
			plans[parent] = p
		}
	}
	return plans
}

func (t *tree) setDirAttrs(name string, p dirPlan) error {
	f, err := t.root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chown(p.hdr.Uid, p.hdr.Gid); err != nil {
		return err
	}
	if err := f.Chmod(fileMode(p.hdr)); err != nil {
		return err
	}
	if !p.keepMtime {
		return nil
	}
	mtime := time.Unix(p.hdr.ModTime.Unix(), 0) // whole seconds, as dpkg
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
