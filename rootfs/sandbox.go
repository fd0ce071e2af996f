package rootfs

import (
	"debug/elf"
	"encoding/json"
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
	"syscall"

	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The sandbox is an init process of basebuild's own, re-executed from
// /proc/self/exe into new PID, mount, IPC, UTS, cgroup and (unless the
// caller asks for the host's network) network namespaces. It pivots into
// a read-only root that holds only the tree, mounts in the tree a /proc
// of its PID namespace, a read-only /sys (both with Docker's masked
// paths hidden) and a minimal /dev, and confines itself as a default
// rootful podman container is confined: the bounding set and the
// capabilities reduced to the container default, no_new_privs, and
// Docker's default seccomp profile; then it execs itself again, so that
// no thread keeps the setup's privileges. Only then does it run
// commands, one at a time, each chrooted into the tree with a clean
// environment and only fds 0–2, and kill whatever a command left behind
// before it answers. Everything it started dies with it: it is PID 1 of
// its namespace, and it dies with basebuild.

// The sandbox's PID 1 is basebuild twice over: started as sandboxSetup
// it sets the sandbox up and confines its thread, then execs itself
// again as sandboxServe, so that the image that runs the commands has no
// thread left with the privileges of the setup.
const (
	sandboxSetup = "basebuild-sandbox-setup"
	sandboxServe = "basebuild-sandbox"
)

// sandboxTree is where the tree is in the init's root; commands are
// chrooted into it.
const sandboxTree = "/tree"

// sandboxHostname is the sandbox's host name: the builder's never shows.
const sandboxHostname = "localhost"

// containerCaps are the capabilities podman gives a rootful container
// by default (Docker's also has MKNOD, NET_RAW and AUDIT_WRITE, which
// neither dpkg nor the maintainer scripts of a base system need, and
// MKNOD would reach host disks with no device cgroup); nothing in the
// sandbox has any other.
var containerCaps = []struct {
	name string
	cap  uintptr
}{
	{"CAP_CHOWN", unix.CAP_CHOWN}, {"CAP_DAC_OVERRIDE", unix.CAP_DAC_OVERRIDE},
	{"CAP_FOWNER", unix.CAP_FOWNER}, {"CAP_FSETID", unix.CAP_FSETID},
	{"CAP_KILL", unix.CAP_KILL}, {"CAP_NET_BIND_SERVICE", unix.CAP_NET_BIND_SERVICE},
	{"CAP_SETFCAP", unix.CAP_SETFCAP}, {"CAP_SETGID", unix.CAP_SETGID},
	{"CAP_SETPCAP", unix.CAP_SETPCAP}, {"CAP_SETUID", unix.CAP_SETUID},
	{"CAP_SYS_CHROOT", unix.CAP_SYS_CHROOT},
}

// sandboxConfig is the init's first message.
type sandboxConfig struct {
	Root    string // absolute, symlink-free
	Network bool   // keep the host's network namespace
}

// sandboxRequest asks the init to run one command; the fd of its output
// comes with it.
type sandboxRequest struct {
	Path string
	Args []string
	Env  []string
}

// sandboxReply answers the first message (Err only) and each request.
type sandboxReply struct {
	Status int // syscall.WaitStatus
	Err    string
}

// RunSandboxInit runs the sandbox's init and exits, when this process
// was started as one by EnterChroot; otherwise it returns at once. A
// program that uses EnterChroot calls it first thing in main, and a test
// binary in TestMain.
func RunSandboxInit() {
	if len(os.Args) == 0 || (os.Args[0] != sandboxSetup && os.Args[0] != sandboxServe) {
		return
	}
	// Capabilities, the bounding set, no_new_privs and the seccomp filter
	// belong to a thread: the one that confines itself must be the one
	// that execs and starts every command.
	runtime.LockOSThread()
	// Whatever basebuild inherited without close-on-exec must not reach
	// a command: only 0–2 do.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		os.Exit(1)
	}
	ctl := &sandboxConn{fd: 3}
	if os.Args[0] == sandboxServe {
		devNull, err := os.Open(sandboxTree + "/dev/null")
		reply := sandboxReply{}
		if err != nil {
			reply.Err = err.Error()
		}
		if ctl.send(reply, -1) != nil || err != nil {
			os.Exit(1)
		}
		serve(ctl, devNull)
		os.Exit(0)
	}
	// Nothing may attach to, or read the memory of, the privileged image.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		os.Exit(1)
	}
	var cfg sandboxConfig
	if err := ctl.recv(&cfg, nil); err != nil {
		os.Exit(1)
	}
	err := setupAndServe(cfg)
	// Only a failure returns.
	ctl.send(sandboxReply{Err: err.Error()}, -1)
	os.Exit(1)
}

// setupAndServe confines this process and execs it again as the
// sandbox's server, which inherits the confinement on every thread.
func setupAndServe(cfg sandboxConfig) error {
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	deps, err := execDeps()
	if err != nil {
		return err
	}
	if err := confine(cfg, deps); err != nil {
		return err
	}
	if _, err := unix.FcntlInt(3, unix.F_SETFD, 0); err != nil {
		return err
	}
	// The executable was opened before the host's root went away; its
	// descriptor reaches it through the sandbox's own /proc.
	self := fmt.Sprintf("%s/proc/self/fd/%d", sandboxTree, exe.Fd())
	var dirs []string
	for dest := range deps {
		if d := path.Dir(dest); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	env := []string{"LD_LIBRARY_PATH=" + strings.Join(dirs, ":")}
	return fmt.Errorf("exec the sandbox server: %w", unix.Exec(self, []string{sandboxServe}, env))
}

// execDeps says what exec'ing this executable needs besides itself: its
// ELF interpreter and the shared libraries it has mapped, by where the
// sandbox's root must have them (the interpreter at the path the ELF
// names) and where they are on the host. A static executable needs none.
func execDeps() (map[string]string, error) {
	deps := map[string]string{}
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		data, err := io.ReadAll(prog.Open())
		if err != nil {
			return nil, err
		}
		interp := strings.TrimRight(string(data), "\x00")
		host, err := filepath.EvalSymlinks(interp)
		if err != nil {
			return nil, err
		}
		deps[interp] = host
	}
	if len(deps) == 0 {
		return deps, nil
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(maps), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 6 || !path.IsAbs(fields[5]) || !strings.Contains(path.Base(fields[5]), ".so") {
			continue
		}
		deps[fields[5]] = fields[5]
	}
	return deps, nil
}

// bindDeps binds each of deps read-only at its place under root.
func bindDeps(root string, deps map[string]string) error {
	for dest, src := range deps {
		target := root + dest
		if err := os.MkdirAll(path.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, nil, 0o444); err != nil {
			return err
		}
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
	}
	return nil
}

// confine makes this process, PID 1 of fresh namespaces, the sandbox: a
// root that holds only the tree, its own /proc, /sys and /dev there, and
// a container's privileges; deps (see execDeps) are bound into that root
// for the server's exec.
func confine(cfg sandboxConfig, deps map[string]string) error {
	// The copied mounts still share propagation with the host's.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// The init's own root is a small tmpfs holding only the tree, at
	// /tree, and it chroots each command into the tree: so no host path
	// is reachable by any name, and /proc/1/root is not the commands'
	// root, which is how ischroot(1), and the maintainer scripts that ask
	// it (libc6's, which would otherwise restart init), know they run in
	// a chroot, as under debootstrap. The tmpfs is mounted on the tree's
	// /proc mount point, which the bind of the tree does not include.
	stage := cfg.Root + "/proc"
	if err := unix.Mount("tmpfs", stage, "tmpfs", nodevExec, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mount the sandbox root: %w", err)
	}
	if err := os.Mkdir(stage+sandboxTree, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(cfg.Root, stage+sandboxTree, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", cfg.Root, err)
	}
	// No device node in the tree works: the only ones are /dev's.
	if err := unix.Mount("", stage+sandboxTree, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("bind %s: %w", cfg.Root, err)
	}
	// What the server's exec needs (see setupAndServe), read-only.
	if err := bindDeps(stage, deps); err != nil {
		return err
	}
	if err := unix.Chdir(stage); err != nil {
		return err
	}
	// The old root goes on top of the new one and is then detached.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|nodevExec, ""); err != nil {
		return fmt.Errorf("make the sandbox root read-only: %w", err)
	}
	// Mounted inside the tree's bind: a symlink in the tree can only
	// point within the sandbox.
	if err := mountFS("proc", sandboxTree+"/proc", "proc", nodevExec|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	if err := mountFS("sysfs", sandboxTree+"/sys", "sysfs", nodevExec|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	if err := mountFS("tmpfs", sandboxTree+"/dev", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755"); err != nil {
		return err
	}
	if err := populateDev(sandboxTree + "/dev"); err != nil {
		return err
	}
	if err := maskPaths(); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(sandboxHostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if !cfg.Network {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	// dpkg runs maintainer scripts with umask 022 whatever its caller's.
	unix.Umask(0o022)
	return dropPrivileges()
}

// maskedPaths are what Docker and podman hide of /proc and /sys: host
// state a container has no business reading (the kernel keyrings, timer
// and scheduler details, firmware tables).
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
	"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
}

// maskPaths covers each of maskedPaths that exists: a directory with an
// empty read-only tmpfs, a file with /dev/null.
func maskPaths() error {
	for _, p := range maskedPaths {
		target := sandboxTree + p
		fi, err := os.Lstat(target)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", target, "tmpfs", nodevExec|unix.MS_RDONLY, "size=0")
		} else {
			err = unix.Mount(sandboxTree+"/dev/null", target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

const nodevExec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// mountFS mounts a new fstype file system on target. Read-only mounts
// are made read-only per mount (a bind remount), never by changing a
// superblock the host shares.
func mountFS(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags&^unix.MS_RDONLY, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|flags, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", target, err)
		}
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
func populateDev(dev string) error {
	for _, n := range devNodes {
		if err := unix.Mknod(dev+"/"+n.name, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("mknod /dev/%s: %w", n.name, err)
		}
		// Whatever the umask.
		if err := unix.Chmod(dev+"/"+n.name, 0o666); err != nil {
			return err
		}
	}
	for _, l := range devLinks {
		if err := os.Symlink(l[1], dev+"/"+l[0]); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dev+"/shm", 0o755); err != nil {
		return err
	}
	if err := unix.Chmod(dev+"/shm", unix.S_ISVTX|0o777); err != nil {
		return err
	}
	if err := os.Mkdir(dev+"/pts", 0o755); err != nil {
		return err
	}
	return mountFS("devpts", dev+"/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC,
		"newinstance,ptmxmode=0666,mode=0620,gid=5")
}

// loopbackUp brings up lo in the sandbox's own network namespace, as
// container runtimes do: loopback is all the network a command has.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	return nil
}

// dropPrivileges leaves this thread, and so every command it starts, with
// a container's privileges: the bounding set and the capabilities reduced
// to containerCaps, no_new_privs, and the container default seccomp
// filter.
func dropPrivileges() error {
	keep := map[uintptr]bool{}
	var mask [2]uint32
	for _, c := range containerCaps {
		keep[c.cap] = true
		mask[c.cap/32] |= 1 << (c.cap % 32)
	}
	last, err := lastCap()
	if err != nil {
		return err
	}
	for c := uintptr(0); c <= last; c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{}
	for i := range data {
		// No inheritable ones, as Docker since CVE-2022-24769.
		data[i] = unix.CapUserData{Effective: mask[i], Permitted: mask[i]}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	filter, err := containerSeccomp()
	if err != nil {
		return err
	}
	return loadSeccomp(filter)
}

// lastCap is the highest capability this kernel knows.
func lastCap() (uintptr, error) {
	data, err := os.ReadFile(sandboxTree + "/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("cap_last_cap: %w", err)
	}
	return uintptr(n), nil
}

// containerSeccomp is Docker's default seccomp profile (moby's own copy)
// for this architecture, kernel and containerCaps.
func containerSeccomp() (*specs.LinuxSeccomp, error) {
	var names []string
	for _, c := range containerCaps {
		names = append(names, c.name)
	}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: names}}}
	profile, err := seccomp.GetDefaultProfile(spec)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	// Without CAP_AUDIT_WRITE an audit netlink socket is refused with
	// EPERM, and shadow's useradd (bullseye's adduser of _apt) aborts on
	// that; EINVAL says "no audit in this kernel", which it accepts, as
	// podman's profile answers.
	einval := uint(unix.EINVAL)
	audit := specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: &einval,
		Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: unix.AF_NETLINK, Op: specs.OpEqualTo},
			{Index: 2, Value: unix.NETLINK_AUDIT, Op: specs.OpEqualTo},
		}}
	profile.Syscalls = append([]specs.LinuxSyscall{audit}, profile.Syscalls...)
	return profile, nil
}

// serve runs each request on this (the confined) thread and answers it,
// until the control socket closes.
func serve(ctl *sandboxConn, devNull *os.File) {
	for {
		var req sandboxRequest
		var out *os.File
		if err := ctl.recv(&req, &out); err != nil {
			return
		}
		reply := runOne(req, devNull, out)
		if ctl.send(reply, -1) != nil {
			return
		}
	}
}

// runOne runs req with stdout and stderr to out, then kills whatever is
// left in the namespace and reaps it.
func runOne(req sandboxRequest, devNull, out *os.File) sandboxReply {
	var reply sandboxReply
	if out == nil {
		return sandboxReply{Err: "no output file"}
	}
	cmd := &exec.Cmd{
		Path:        req.Path,
		Args:        req.Args,
		Env:         req.Env,
		Dir:         "/",
		Stdin:       devNull,
		Stdout:      out,
		Stderr:      out,
		SysProcAttr: &syscall.SysProcAttr{Chroot: sandboxTree, Setsid: true},
	}
	err := cmd.Start()
	out.Close()
	if err == nil {
		err = cmd.Wait()
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		reply.Status = int(exit.Sys().(syscall.WaitStatus))
	default:
		reply.Err = err.Error()
	}
	// PID 1's kill(-1) reaches every other process of the namespace.
	unix.Kill(-1, unix.SIGKILL)
	for {
		if _, err := unix.Wait4(-1, nil, 0, nil); err != nil && err != unix.EINTR {
			break // ECHILD: none left
		}
	}
	return reply
}

// sandboxConn is one end of the control socket: a SOCK_SEQPACKET pair, so
// each message arrives whole.
type sandboxConn struct{ fd int }

// send sends v as JSON, with file (if >= 0) as an SCM_RIGHTS message.
func (c *sandboxConn) send(v any, file int) error {
	msg, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var oob []byte
	if file >= 0 {
		oob = unix.UnixRights(file)
	}
	return unix.Sendmsg(c.fd, msg, oob, nil, 0)
}

// recv receives one message into v, and its file into *file if asked.
func (c *sandboxConn) recv(v any, file **os.File) error {
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("control socket closed")
	}
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				return err
			}
			// Keep the one asked for; close whatever else came.
			for _, fd := range fds {
				if file != nil && *file == nil {
					*file = os.NewFile(uintptr(fd), "output")
				} else {
					unix.Close(fd)
				}
			}
		}
	}
	return json.Unmarshal(buf[:n], v)
}

func (c *sandboxConn) Close() error { return unix.Close(c.fd) }
