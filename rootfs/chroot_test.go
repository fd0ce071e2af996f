package rootfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/testenv"
)

// busyboxRoot makes a root filesystem whose only program is a static
// busybox, with no /dev or /sys for EnterChroot to create.
func busyboxRoot(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	const busybox = "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		t.Fatalf("%v: install busybox-static (scripts/install-deps.sh)", err)
	}
	dir := t.TempDir()
	for _, d := range []string{"bin", "usr/bin", "usr/sbin", "proc", "tmp", "var/lib/dpkg/info"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "cat", "echo", "sleep", "setsid", "touch", "test", "head", "wc", "ls", "readlink", "mount", "env", "id", "stat"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// hostMountsUnder fails t if the host's mount table, or init's, has
// anything under dir.
func hostMountsUnder(t *testing.T, dir string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"/proc/self/mountinfo", "/proc/1/mountinfo"} {
		mounts, err := mountsUnder(table, dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(mounts) > 0 {
			t.Errorf("%s has mounts under %s: %v", table, dir, mounts)
		}
	}
}

func enterChroot(t *testing.T, dir string) *Chroot {
	t.Helper()
	c, err := EnterChroot(context.Background(), dir, ChrootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func chrootOutput(t *testing.T, c *Chroot, script string) string {
	t.Helper()
	var out bytes.Buffer
	if err := c.Run(context.Background(), &out, "sh", "-c", script); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out.Bytes())
	}
	return out.String()
}

func TestChrootMounts(t *testing.T) {
	dir := busyboxRoot(t)
	c := enterChroot(t, dir)

	mounts := chrootOutput(t, c, "cat /proc/self/mounts")
	for _, want := range []string{"proc /proc proc ro,", "sysfs /sys sysfs ro,", "tmpfs /dev tmpfs rw,", "devpts /dev/pts devpts rw,"} {
		if !strings.Contains(mounts, want) {
			t.Errorf("chroot mounts lack %q:\n%s", want, mounts)
		}
	}
	// The devices work and /dev/stdout reaches the command's output.
	got := chrootOutput(t, c, `echo discarded >/dev/null && head -c 5 /dev/zero | wc -c && head -c 3 /dev/urandom | wc -c && test -c /dev/full && test -c /dev/tty && echo out >/dev/stdout && readlink /dev/ptmx && stat -c %a /dev/shm`)
	if want := "5\n3\nout\npts/ptmx\n1777\n"; got != want {
		t.Errorf("devices: got %q, want %q", got, want)
	}
	env := chrootOutput(t, c, "env")
	for _, want := range []string{"PATH=" + DefaultPath + "\n", "LC_ALL=C\n", "DEBIAN_FRONTEND=noninteractive\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment lacks %q:\n%s", want, env)
		}
	}
	ns := strings.TrimSpace(chrootOutput(t, c, "readlink /proc/self/ns/mnt"))
	self, _ := os.Readlink("/proc/self/ns/mnt")
	if ns == self {
		t.Errorf("chroot shares the host's mount namespace %s", ns)
	}
	hostMountsUnder(t, dir)

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	hostMountsUnder(t, dir)
	namespaceEmpty(t, "mnt", ns)
	// The mount points EnterChroot made are gone again; /proc was there.
	for name, want := range map[string]bool{"dev": false, "sys": false, "proc": true} {
		if _, err := os.Lstat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("/%s exists: %v, want %v", name, err == nil, want)
		}
	}
	if err := c.Run(context.Background(), nil, "sh", "-c", "true"); err == nil {
		t.Error("Run after Close succeeded")
	}
}

func TestChrootRunError(t *testing.T) {
	dir := busyboxRoot(t)
	c := enterChroot(t, dir)
	err := c.Run(context.Background(), nil, "sh", "-c", "exit 3")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("got %v, want exit status 3", err)
	}
	if err := c.Run(context.Background(), nil, "no-such-command"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing command: got %v", err)
	}
	if err := c.Run(context.Background(), nil, "sh", "-c", "true"); err != nil {
		t.Errorf("after a failure: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	hostMountsUnder(t, dir)
}

func TestChrootEnterError(t *testing.T) {
	dir := busyboxRoot(t)
	// /dev as a symlink to the host's /dev must not get a tmpfs mounted
	// over the host's.
	if err := os.Symlink("/dev", filepath.Join(dir, "dev")); err != nil {
		t.Fatal(err)
	}
	if _, err := EnterChroot(context.Background(), dir, ChrootOptions{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("got %v, want a not-a-directory error", err)
	}
	hostMountsUnder(t, dir)
	if _, err := os.Lstat(filepath.Join(dir, "sys")); err == nil {
		t.Error("/sys left behind")
	}
}

func TestChrootCancel(t *testing.T) {
	dir := busyboxRoot(t)
	c := enterChroot(t, dir)
	pidns := strings.TrimSpace(chrootOutput(t, c, "readlink /proc/self/ns/pid"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A foreground sleep, a background one in the same process group and
	// a daemon in a session of its own.
	errc := make(chan error, 1)
	go func() {
		errc <- c.Run(ctx, nil, "sh", "-c", `
			sleep 1000 & echo $! >/tmp/bg
			setsid sleep 1000 & echo $! >/tmp/daemon
			echo $$ >/tmp/fg
			sleep 1000`)
	}()
	waitPIDs(t, dir, "fg", "bg", "daemon")
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	// Cancelling ends the whole sandbox, the daemon too.
	namespaceEmpty(t, "pid", pidns)
	if err := c.Run(context.Background(), nil, "sh", "-c", "true"); err == nil {
		t.Error("Run after cancellation succeeded")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	hostMountsUnder(t, dir)
}

// namespaceEmpty waits until no process, and no thread of this one, is
// left in the namespace ns (the link text of /proc/PID/ns/KIND, "pid:[…]").
func namespaceEmpty(t *testing.T, kind, ns string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []string
		links, _ := filepath.Glob("/proc/[0-9]*/ns/" + kind)
		tasks, _ := filepath.Glob("/proc/self/task/*/ns/" + kind)
		for _, l := range append(links, tasks...) {
			if target, err := os.Readlink(l); err == nil && target == ns {
				left = append(left, l)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left in %s: %v", ns, left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPIDs waits for the chroot's commands to write their pids to /tmp.
func waitPIDs(t *testing.T, dir string, names ...string) map[string]int {
	t.Helper()
	pids := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for len(pids) < len(names) {
		if time.Now().After(deadline) {
			t.Fatalf("commands did not start: have %v", pids)
		}
		for _, name := range names {
			data, err := os.ReadFile(filepath.Join(dir, "tmp", name))
			if pid, err2 := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && err2 == nil {
				pids[name] = pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return pids
}

func TestChrootLeftovers(t *testing.T) {
	// What a command leaves running is killed when it ends, whatever its
	// session or process group.
	dir := busyboxRoot(t)
	c := enterChroot(t, dir)
	chrootOutput(t, c, "setsid sleep 1000 </dev/null >/dev/null 2>&1 & sleep 1000 </dev/null >/dev/null 2>&1 & true")
	// Counted by the shell alone: a pipeline's processes may come and go
	// while ls reads /proc.
	if got := chrootOutput(t, c, "set -- /proc/[0-9]*; echo $#"); got != "2\n" {
		t.Errorf("%s processes in the sandbox after a command left two running, want 2 (init and sh)", strings.TrimSpace(got))
	}
}

func TestChrootUmask(t *testing.T) {
	dir := busyboxRoot(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	c := enterChroot(t, dir)
	if got := chrootOutput(t, c, "umask"); got != "0022\n" {
		t.Errorf("umask %q, want 0022", got)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a\040b`: "/tmp/a b",
		`/x\134y`:     `/x\y`,
		`/plain`:      "/plain",
		`/short\04`:   `/short\04`,
	} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}
