package rootfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultPath is the PATH of commands run in a chroot, debuerreotype-chroot's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// A Chroot runs commands chrooted into a root filesystem that has /proc
// and /sys (both read-only) and a minimal /dev mounted for them. The /dev
// is a tmpfs of its own: null, zero, full, random, urandom and tty, the
// fd and std* symlinks, shm, and a devpts instance behind ptmx.
//
// The mounts live in a private mount namespace that belongs to one locked
// OS thread, and every command is started from that thread. So the host
// never sees them, nothing propagates in either direction, and they
// vanish with the thread even if the process dies without cleaning up.
type Chroot struct {
	// Env is the environment of commands. EnterChroot sets a clean one:
	// PATH, C locale, UTC, HOME=/root, noninteractive debconf, and
	// SOURCE_DATE_EPOCH from DIR/debuerreotype-epoch when it exists, as
	// debuerreotype-chroot does.
	Env []string

	dir     string   // absolute, symlink-free root
	root    *os.File // dir, to look commands up inside it
	ns      unix.Stat_t
	created []string // mount points EnterChroot made, to remove again

	work chan func() // run on the namespace thread
	done chan error  // the thread's teardown result

	mu       sync.Mutex
	closed   bool
	closeErr error
}

// EnterChroot mounts /proc, /sys and /dev inside dir for commands run
// with Run. Close undoes it.
func EnterChroot(ctx context.Context, dir string) (*Chroot, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("chroot: %w", err)
	}
	root, err := os.OpenFile(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("chroot: %w", err)
	}
	env, err := cleanEnv(abs)
	if err != nil {
		root.Close()
		return nil, err
	}
	c := &Chroot{
		Env:  env,
		dir:  abs,
		root: root,
		work: make(chan func()),
		done: make(chan error, 1),
	}
	ready := make(chan error, 1)
	go c.serve(ready)
	if err := <-ready; err != nil {
		root.Close()
		return nil, errors.Join(err, <-c.done)
	}
	return c, nil
}

// Dir is the chroot's root directory.
func (c *Chroot) Dir() string { return c.dir }

func cleanEnv(dir string) ([]string, error) {
	env := []string{
		"PATH=" + DefaultPath,
		"HOME=/root",
		"LC_ALL=C",
		"LANG=C",
		"LANGUAGE=C",
		"TZ=UTC",
		"DEBIAN_FRONTEND=noninteractive",
		"DEBCONF_NONINTERACTIVE_SEEN=true",
	}
	epoch, err := os.ReadFile(filepath.Join(dir, "debuerreotype-epoch"))
	switch {
	case err == nil:
		env = append(env, "SOURCE_DATE_EPOCH="+strings.TrimSpace(string(epoch)))
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("chroot: %w", err)
	}
	return env, nil
}

// serve owns the namespace thread: it sets the mounts up, runs work until
// Close, then tears down and returns without unlocking the thread, so the
// runtime ends the thread and the namespace with it.
func (c *Chroot) serve(ready chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The main thread never exits, so it must not keep the namespace:
		// hold it while another thread does the work.
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.serve(ready)
		}()
		<-done
		runtime.UnlockOSThread()
		return
	}
	if err := c.setup(); err != nil {
		ready <- err
		c.done <- c.teardown()
		return
	}
	ready <- nil
	for f := range c.work {
		f()
	}
	c.done <- c.teardown()
}

func (c *Chroot) setup() error {
	// CLONE_NEWNS also unshares the thread's root, cwd and umask.
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("chroot %s: new mount namespace: %w", c.dir, err)
	}
	if err := unix.Stat("/proc/thread-self/ns/mnt", &c.ns); err != nil {
		return fmt.Errorf("chroot %s: %w", c.dir, err)
	}
	// The copied mounts still share propagation with the host's; cut that
	// before mounting anything.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("chroot %s: make mounts private: %w", c.dir, err)
	}
	unix.Umask(0)
	// dpkg runs maintainer scripts with umask 022 whatever its caller's.
	defer unix.Umask(0o022)

	const noexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := c.mount("proc", "proc", "proc", noexec|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	if err := c.mount("sys", "sysfs", "sysfs", noexec|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	// A tmpfs of our own, so nothing is created in the rootfs's /dev.
	if err := c.mount("dev", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755"); err != nil {
		return err
	}
	return c.populateDev()
}

// mount mounts a new fstype filesystem on dir/name, creating the mount
// point if it is missing. Read-only mounts are made read-only per mount
// (a bind remount), never by changing a superblock the host shares.
func (c *Chroot) mount(name, source, fstype string, flags uintptr, data string) error {
	target := filepath.Join(c.dir, name)
	if err := c.mountpoint(target); err != nil {
		return err
	}
	if err := unix.Mount(source, target, fstype, flags&^unix.MS_RDONLY, data); err != nil {
		return fmt.Errorf("chroot %s: mount %s on /%s: %w", c.dir, fstype, name, err)
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|flags, ""); err != nil {
			return fmt.Errorf("chroot %s: make /%s read-only: %w", c.dir, name, err)
		}
	}
	return nil
}

// mountpoint makes sure target is a real directory, never a symlink that
// would put the mount somewhere else.
func (c *Chroot) mountpoint(target string) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(target, 0o755); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		c.created = append(c.created, target)
		return nil
	}
	if err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("chroot %s: %s is not a directory", c.dir, target)
	}
	return nil
}

type devNode struct {
	name         string
	major, minor uint32
}

var devNodes = []devNode{
	{"null", 1, 3},
	{"zero", 1, 5},
	{"full", 1, 7},
	{"random", 1, 8},
	{"urandom", 1, 9},
	{"tty", 5, 0},
}

var devLinks = [][2]string{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"ptmx", "pts/ptmx"},
}

// populateDev makes the device nodes debootstrap makes, and a devpts of its
// own behind /dev/ptmx: the host's ptmx would hand out the host's ptys.
func (c *Chroot) populateDev() error {
	dev := filepath.Join(c.dir, "dev")
	for _, n := range devNodes {
		p := filepath.Join(dev, n.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("chroot %s: mknod /dev/%s: %w", c.dir, n.name, err)
		}
	}
	for _, l := range devLinks {
		if err := os.Symlink(l[1], filepath.Join(dev, l[0])); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
	}
	if err := os.Mkdir(filepath.Join(dev, "shm"), os.ModeSticky|0o777); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dev, "pts"), 0o755); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return c.mount("dev/pts", "devpts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC,
		"newinstance,ptmxmode=0666,mode=0620,gid=5")
}

// teardown kills what is left in the namespace, unmounts everything under
// the root, deepest last-mounted first, and removes the mount points it made.
func (c *Chroot) teardown() error {
	var errs []error
	if c.ns.Ino != 0 {
		errs = append(errs, c.killAll())
	}
	errs = append(errs, c.unmountAll())
	for _, p := range slices.Backward(c.created) {
		if err := os.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("chroot: %w", err))
		}
	}
	return errors.Join(errs...)
}

// killAll kills every process in the namespace, such as a daemon a
// maintainer script started outside its process group, and waits for them
// to exit: they would keep the mounts busy. Only commands started by this
// Chroot and their descendants are in the namespace.
func (c *Chroot) killAll() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := c.members()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chroot %s: processes %v survive SIGKILL", c.dir, pids)
		}
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// members lists the processes in the namespace; exited ones (zombies
// included) have left it.
func (c *Chroot) members() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/mnt", &st) == nil && st.Dev == c.ns.Dev && st.Ino == c.ns.Ino {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (c *Chroot) unmountAll() error {
	mounts, err := mountsUnder("/proc/thread-self/mountinfo", c.dir)
	if err != nil {
		return fmt.Errorf("chroot %s: %w", c.dir, err)
	}
	var failed []string
	var errs []error
	for _, m := range slices.Backward(mounts) {
		if err := unmount(m); err != nil {
			failed = append(failed, m)
			errs = append(errs, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("chroot %s: cannot unmount %s: %w", c.dir, strings.Join(failed, ", "), errors.Join(errs...))
	}
	return nil
}

// unmount unmounts target, retrying while it is busy, and detaches it as
// a last resort; it is in a private namespace that is about to go anyway.
func unmount(target string) error {
	for range 50 {
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		if err == nil || err == unix.EINVAL { // EINVAL: no longer a mount point
			return nil
		}
		if err != unix.EBUSY {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
}

// MountsBelow lists, in mount order, the mount points of this process
// strictly below the directory dir: a tree with any is not safe to remove
// or archive, as it would reach into the mounted file systems.
func MountsBelow(dir string) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, err
	}
	return mountsUnder("/proc/self/mountinfo", strings.TrimSuffix(abs, "/"))
}

// mountsUnder lists, in mount order, the mount points in a mountinfo file
// that are strictly below dir.
func mountsUnder(mountinfo, dir string) ([]string, error) {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil, err
	}
	var mounts []string
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 5 {
			continue
		}
		if p := unescapeMountPath(f[4]); strings.HasPrefix(p, dir+"/") {
			mounts = append(mounts, p)
		}
	}
	return mounts, s.Err()
}

// unescapeMountPath undoes the kernel's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Close kills any process left in the chroot, unmounts what EnterChroot
// mounted and whatever commands mounted below the root, and removes the
// mount points EnterChroot created. It is safe to call more than once.
func (c *Chroot) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.work)
		c.closeErr = <-c.done
		c.root.Close()
	}
	return c.closeErr
}

// Run runs name with args in the chroot with c.Env, stdin from /dev/null
// and stdout and stderr to log (discarded if nil). A name without a slash
// is looked up in the chroot's PATH. The command gets a session of its
// own; cancelling ctx kills its whole process group.
func (c *Chroot) Run(ctx context.Context, log io.Writer, name string, args ...string) error {
	return c.run(ctx, log, c.Env, name, args...)
}

func (c *Chroot) run(ctx context.Context, log io.Writer, env []string, name string, args ...string) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, errClosed)
	}
	file, err := c.lookPath(env, name)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, file, args...)
	cmd.Args[0] = name
	cmd.Env = env
	cmd.Dir = "/"
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot: c.dir,
		Setsid: true, // no controlling terminal to prompt on
		// Sent when the namespace thread ends, i.e. if this process dies.
		Pdeathsig: syscall.SIGKILL,
	}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	// Don't hang on output pipes a leftover background process holds.
	cmd.WaitDelay = 5 * time.Second
	if err := c.start(cmd); err != nil {
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, err)
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, err)
	}
	return nil
}

var errClosed = errors.New("chroot is closed")

// start starts cmd on the namespace thread, so that it inherits the mounts.
func (c *Chroot) start(cmd *exec.Cmd) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	res := make(chan error, 1)
	c.work <- func() { res <- cmd.Start() }
	return <-res
}

// lookPath finds name in env's PATH inside the chroot, resolving symlinks
// (absolute ones too) as the chroot sees them.
func (c *Chroot) lookPath(env []string, name string) (string, error) {
	if strings.Contains(name, "/") {
		if !path.IsAbs(name) {
			return "", fmt.Errorf("chroot %s: %s: not an absolute path", c.dir, name)
		}
		return name, nil
	}
	search := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	for _, d := range filepath.SplitList(search) {
		if p := path.Join(d, name); path.IsAbs(p) && c.executable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("chroot %s: %s: not found in PATH %s", c.dir, name, search)
}

func (c *Chroot) executable(p string) bool {
	fd, err := unix.Openat2(int(c.root.Fd()), p, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT,
	})
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0
}
