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

	"golang.org/x/sys/unix"
)

// DefaultPath is the PATH of commands run in a chroot, debuerreotype-chroot's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// A Chroot runs commands in a sandbox around a root filesystem (see
// sandbox.go): its own PID, mount, IPC, UTS, cgroup and network
// namespaces, an init pivoted into a root that holds only the tree, each
// command chrooted into the tree, /proc of its own PID namespace and
// /sys (both read-only, Docker's masked paths hidden), a minimal /dev
// (null, zero, full, random, urandom and tty, the fd and std* symlinks,
// shm, and a devpts instance behind ptmx), podman's default
// capabilities, no_new_privs and Docker's default seccomp profile. Nothing of the
// host is reachable by any path, the mounts are never visible on the
// host, and every process a command starts is killed when it ends.
type Chroot struct {
	// Env is the environment of commands. EnterChroot sets a clean one:
	// PATH, C locale, UTC, HOME=/root, noninteractive debconf, and
	// SOURCE_DATE_EPOCH from DIR/debuerreotype-epoch when it exists, as
	// debuerreotype-chroot does.
	Env []string

	dir     string   // absolute, symlink-free root
	root    *os.File // dir, to look commands up inside it
	created []string // mount points EnterChroot made, to remove again

	init     *exec.Cmd    // the sandbox's init
	initDone chan error   // its exit
	ctl      *sandboxConn // its control socket

	mu       sync.Mutex // one command at a time
	closed   bool
	closeErr error

	kmu    sync.Mutex
	broken error // why the sandbox was killed, if it was
}

// ChrootOptions say what a Chroot's commands may reach besides the tree.
type ChrootOptions struct {
	// Network keeps the host's network namespace; by default commands
	// have a loopback of their own and nothing else.
	Network bool
}

// EnterChroot starts a sandbox rooted at dir for commands run with Run.
// Close ends it.
func EnterChroot(ctx context.Context, dir string, opts ChrootOptions) (*Chroot, error) {
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
	c := &Chroot{Env: env, dir: abs, root: root}
	if err := c.start(opts); err != nil {
		err = errors.Join(err, c.removeMountpoints())
		root.Close()
		return nil, err
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
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("chroot: %w", err)
	}
	defer root.Close()
	// Through the root: a package's debuerreotype-epoch symlink must not
	// read a host file.
	epoch, err := root.ReadFile("debuerreotype-epoch")
	switch {
	case err == nil:
		env = append(env, "SOURCE_DATE_EPOCH="+strings.TrimSpace(string(epoch)))
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("chroot: %w", err)
	}
	return env, nil
}

// start makes the mount points the sandbox needs and starts its init.
func (c *Chroot) start(opts ChrootOptions) error {
	for _, name := range []string{"proc", "sys", "dev"} {
		if err := c.mountpoint(filepath.Join(c.dir, name)); err != nil {
			return err
		}
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	c.ctl = &sandboxConn{fd: fds[0]}
	child := os.NewFile(uintptr(fds[1]), "sandbox-control")
	defer child.Close()

	flags := unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP
	if !opts.Network {
		flags |= unix.CLONE_NEWNET
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{sandboxSetup},
		Env:        []string{},
		ExtraFiles: []*os.File{child},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: uintptr(flags),
			// Sent when the starting thread ends: it lives as long as
			// the init, or this process.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	c.init = cmd
	c.initDone = make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the init
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.initDone <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		c.ctl.Close()
		return fmt.Errorf("chroot %s: start the sandbox: %w", c.dir, err)
	}
	child.Close()
	var reply sandboxReply
	err = c.ctl.send(sandboxConfig{Root: c.dir, Network: opts.Network}, -1)
	if err == nil {
		err = c.ctl.recv(&reply, nil)
	}
	if err == nil && reply.Err != "" {
		err = errors.New(reply.Err)
	}
	if err != nil {
		c.ctl.Close()
		cmd.Process.Kill()
		<-c.initDone
		return fmt.Errorf("chroot %s: sandbox: %w", c.dir, err)
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

func (c *Chroot) removeMountpoints() error {
	var errs []error
	for _, p := range slices.Backward(c.created) {
		if err := os.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("chroot: %w", err))
		}
	}
	c.created = nil
	return errors.Join(errs...)
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

// Close ends the sandbox: its init and every process left in it exit,
// its mounts vanish with its mount namespace, and the mount points
// EnterChroot created are removed. It is safe to call more than once.
func (c *Chroot) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.ctl.Close()
		err := <-c.initDone
		if c.killed() != nil {
			err = nil // killed on purpose
		}
		if err != nil {
			err = fmt.Errorf("chroot %s: sandbox: %w", c.dir, err)
		}
		c.closeErr = errors.Join(err, c.removeMountpoints())
		c.root.Close()
	}
	return c.closeErr
}

// Run runs name with args in the chroot with c.Env, stdin from /dev/null
// and stdout and stderr to log (discarded if nil). A name without a slash
// is looked up in the chroot's PATH. The command gets a session of its
// own; when it ends, everything it left running is killed. Cancelling
// ctx ends the whole sandbox.
func (c *Chroot) Run(ctx context.Context, log io.Writer, name string, args ...string) error {
	return c.run(ctx, log, c.Env, name, args...)
}

func (c *Chroot) run(ctx context.Context, log io.Writer, env []string, name string, args ...string) error {
	if log == nil {
		log = io.Discard
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, errClosed)
	case c.killed() != nil:
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, c.killed())
	}
	file, err := c.lookPath(env, name)
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, err)
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(log, r)
		r.Close()
		close(copied)
	}()
	err = c.ctl.send(sandboxRequest{Path: file, Args: append([]string{name}, args...), Env: env}, int(w.Fd()))
	w.Close()
	if err != nil {
		c.kill(err)
		<-copied
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, err)
	}
	stop := context.AfterFunc(ctx, func() { c.kill(context.Cause(ctx)) })
	var reply sandboxReply
	err = c.ctl.recv(&reply, nil)
	stop()
	// The init killed whatever the command left, so its output ends.
	<-copied
	if ctx.Err() != nil {
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, context.Cause(ctx))
	}
	if err != nil {
		c.kill(err)
		return fmt.Errorf("chroot %s: %s: sandbox: %w", c.dir, name, err)
	}
	if reply.Err != "" {
		return fmt.Errorf("chroot %s: %s: %s", c.dir, name, reply.Err)
	}
	if ws := syscall.WaitStatus(reply.Status); ws != 0 {
		return fmt.Errorf("chroot %s: %s: %w", c.dir, name, &ExitError{ws})
	}
	return nil
}

// kill ends the sandbox after a failure or cancellation: every process
// in it dies with its init.
func (c *Chroot) kill(why error) {
	c.kmu.Lock()
	if c.broken == nil {
		c.broken = why
	}
	c.kmu.Unlock()
	c.init.Process.Kill()
}

func (c *Chroot) killed() error {
	c.kmu.Lock()
	defer c.kmu.Unlock()
	return c.broken
}

var errClosed = errors.New("chroot is closed")

// An ExitError is a command's unsuccessful end.
type ExitError struct{ Status syscall.WaitStatus }

// ExitCode is the exit status, or -1 when a signal ended the command.
func (e *ExitError) ExitCode() int { return e.Status.ExitStatus() }

func (e *ExitError) Error() string {
	if e.Status.Signaled() {
		return "signal: " + e.Status.Signal().String()
	}
	return fmt.Sprintf("exit status %d", e.Status.ExitStatus())
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
