package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
)

// namespaceEnv marks the copy of basebuild that runs a build in a mount
// namespace of its own: it holds the parent's mount namespace.
const namespaceEnv = "BASEBUILD_MOUNT_NAMESPACE"

// inNamespace reports whether this process is that copy, in another mount
// namespace than its parent's: only there may a build mount its tmpfs
// (see pipeline.Options.Tmpfs).
func inNamespace() bool {
	parent := os.Getenv(namespaceEnv)
	self, err := os.Readlink("/proc/self/ns/mnt")
	if parent == "" || err != nil || self == parent {
		return false
	}
	ppid, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	return err == nil && ppid == parent
}

// reexecInNamespace runs this command line again in a new mount
// namespace, whose mounts the host never sees and which vanishes with the
// process however it ends, passes SIGINT and SIGTERM on to it, and
// returns its exit status. It does so for root's builds (and verify),
// which mount their tmpfs and chroot mounts there. ok is false when it
// did not run it (another command, not root, or no namespace to be had):
// the caller then runs the command itself.
func reexecInNamespace(args []string) (status int, ok bool) {
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil || inNamespace() || os.Geteuid() != 0 ||
		(len(args) > 0 && slices.Contains([]string{"packages", "diff", "inventory", "outdated", "index"}, args[0])) {
		return 0, false
	}
	// Pdeathsig goes with the thread that starts the child.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), namespaceEnv+"="+ns)
	// Go makes / private in the new namespace, so nothing propagates.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, false
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, true
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return exit.ExitCode(), true
	}
	return 1, true
}
