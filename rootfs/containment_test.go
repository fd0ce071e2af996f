package rootfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/sentinel"
)

// TestChrootContainment runs, in a chroot, a script that tries to write
// outside it: through "..", an absolute host path, /proc/1/root, and
// mounts. Nothing may appear on the host.
func TestChrootContainment(t *testing.T) {
	dir := busyboxRoot(t)
	for _, applet := range []string{"mkdir", "ln"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	sentinel := t.TempDir()
	parent := filepath.Dir(dir)
	before, _ := os.ReadDir(parent)
	c := enterChroot(t, dir)
	script := `
echo escaped > /../../escape-dotdot 2>/dev/null
cd / && cd .. && cd .. && echo escaped > escape-cd 2>/dev/null
echo escaped > ` + sentinel + `/escape-abs 2>/dev/null
echo escaped > /proc/1/root` + sentinel + `/escape-proc 2>/dev/null
mkdir -p /mnt && mount -t tmpfs none /mnt 2>/dev/null
mkdir -p /mnt/host && mount --bind / /mnt/host 2>/dev/null
true`
	chrootOutput(t, c, script)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(sentinel); len(entries) > 0 {
		t.Errorf("the chroot wrote into the host's %s: %v", sentinel, entries)
	}
	if after, _ := os.ReadDir(parent); len(after) != len(before) {
		t.Errorf("the chroot changed %s: %v, was %v", parent, after, before)
	}
	for _, name := range []string{"escape-dotdot", "escape-cd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v; want it inside the chroot", name, err)
		}
	}
	hostMountsUnder(t, dir)
}

// TestSandboxHostUnreachable plays a hostile maintainer script that knows
// basebuild's pid, the path of a root-only secret on the host and a port
// a host service listens on on loopback, and checks what it got.
func TestSandboxHostUnreachable(t *testing.T) {
	dir := busyboxRoot(t)
	for _, applet := range []string{"nsenter", "unshare", "nc", "wget", "hostname", "grep", "chroot", "mkdir", "mknod"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "s3cr3t-proxy-password"
	t.Setenv("https_proxy", "http://user:"+secret+"@proxy.example:3128")
	hostDir := t.TempDir()
	secretFile := filepath.Join(hostDir, "config.json")
	if err := os.WriteFile(secretFile, []byte(`{"auths":{"r":{"auth":"`+secret+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	listener := sentinel.Listen(t)
	port := listener.Port
	pid := strconv.Itoa(os.Getpid())

	c := enterChroot(t, dir)
	script := fmt.Sprintf(`
echo pwned > /proc/%[1]s/root%[2]s/written 2>/dev/null
cat /proc/%[1]s/environ 2>/dev/null
cat /proc/%[1]s/root%[3]s %[3]s 2>/dev/null
nsenter -t %[1]s -m -p -- /bin/sh -c 'echo pwned > %[2]s/nsenter' 2>/dev/null
(setsid nsenter -t %[1]s -m -- sleep 1000 &) 2>/dev/null
unshare -U -r true 2>/dev/null && echo userns
unshare -m true 2>/dev/null && echo mountns
mkdir -p /x && chroot /x true 2>/dev/null; true
echo hi | nc -w 1 127.0.0.1 %[4]s 2>/dev/null
wget -q -T 1 -O - http://127.0.0.1:%[4]s/ 2>/dev/null
env
echo fds: $(ls /proc/self/fd | tr '\n' ' ')
hostname
echo init-root: $(ls /proc/1/root/)
echo init-threads: $(for t in /proc/1/task/*; do grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' $t/status; done | sort -u | tr '\n\t' '  ')
[ "$(stat -Lc %%d:%%i /proc/1/root)" != "$(stat -Lc %%d:%%i /)" ] && echo in-a-chroot
echo > /proc/1/root/planted 2>/dev/null && echo wrote-init-root
echo masked: $(cat /proc/keys | wc -l) $(cat /proc/timer_list | wc -l)
mknod /tmp/disk b 8 0 2>/dev/null && echo made-a-device
grep -E '^(CapBnd|CapEff|CapPrm|CapInh|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
true`, pid, hostDir, secretFile, port)
	out := chrootOutput(t, c, script)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the sandbox read the secret:\n%s", out)
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 1 {
		t.Errorf("the sandbox wrote into the host's %s: %v", hostDir, entries)
	}
	if n := listener.Accepted(); n != 0 {
		t.Errorf("%d connections reached a host loopback listener", n)
	}
	for _, bad := range []string{"userns", "mountns", "wrote-init-root", "made-a-device"} {
		if strings.Contains(out, bad+"\n") {
			t.Errorf("the sandbox could make a %s:\n%s", bad, out)
		}
	}
	const want = "0000000000000000" // no capability outside the container set
	for _, line := range []string{
		"NoNewPrivs:\t1", "Seccomp:\t2", "CapBnd:\t00000000800405fb", "CapEff:\t00000000800405fb",
		"CapAmb:\t" + want, "\nlocalhost\n", "fds: 0 1 2 3\n",
		// ischroot(1) tells a chroot, as maintainer scripts expect; the
		// init's own root holds the tree and, read-only, the loader and
		// libraries its executable needs.
		"\nin-a-chroot\n",
		// Every thread of the init is as confined as the commands, so
		// attaching to it (as a command may) gains nothing.
		"\ninit-threads: CapBnd: 00000000800405fb CapEff: 00000000800405fb NoNewPrivs: 1 Seccomp: 2\n",
		// Docker's masked paths: the host's keyrings and timers.
		"\nmasked: 0 0\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("sandbox output lacks %q:\n%s", line, out)
		}
	}
	for _, host := range []string{"etc", "home", "root", "tmp", "var"} {
		if strings.Contains(strings.SplitN(out[strings.Index(out, "init-root:"):], "\n", 2)[0], " "+host) {
			t.Errorf("the init's root shows the host's /%s:\n%s", host, out)
		}
	}
	for _, kv := range strings.Split(out, "\n") {
		if strings.HasPrefix(kv, "https_proxy=") || strings.HasPrefix(kv, "BASEBUILD") {
			t.Errorf("the host's environment reached the sandbox: %s", kv)
		}
	}
	// Nothing of the sandbox is left: the nsenter attempt failed, and the
	// namespace's processes are gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := hostProcessesUnder(t, dir)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes rooted in the sandbox left after Close: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hostProcessesUnder lists the host's processes whose root is dir.
func hostProcessesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	links, _ := filepath.Glob("/proc/[0-9]*/root")
	for _, l := range links {
		// A pivoted sandbox's root reads as "/" from outside: compare
		// the root directory's identity instead.
		var a, b os.FileInfo
		var err error
		if a, err = os.Stat(l); err != nil {
			continue
		}
		if b, err = os.Stat(dir); err == nil && os.SameFile(a, b) {
			left = append(left, l)
		}
	}
	return left
}

// TestSandboxNetwork: with ChrootOptions.Network (--customize-network) a
// command reaches the host's network, here a loopback listener; it stays
// confined otherwise.
func TestSandboxNetwork(t *testing.T) {
	dir := busyboxRoot(t)
	if err := os.Symlink("busybox", filepath.Join(dir, "bin", "nc")); err != nil {
		t.Fatal(err)
	}
	listener := sentinel.Listen(t)
	c, err := EnterChroot(context.Background(), dir, ChrootOptions{Network: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := chrootOutput(t, c, "echo hi | nc -w 1 127.0.0.1 "+listener.Port+"; grep -E '^(CapBnd|Seccomp):' /proc/self/status")
	if n := listener.Accepted(); n != 1 {
		t.Errorf("%d connections reached the host's listener, want 1", n)
	}
	for _, want := range []string{"CapBnd:\t00000000800405fb", "Seccomp:\t2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
