package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/basebuild/basebuild/debian"
)

// BinfmtDir is where the kernel's binfmt_misc entries are.
const BinfmtDir = "/proc/sys/fs/binfmt_misc"

// native says whether host runs arch's programs without emulation.
func native(host, arch string) bool {
	return arch == host || host == "amd64" && arch == "i386"
}

// CheckArch returns nil when the maintainer scripts of Debian architecture
// arch can run in a chroot on this host: natively, or through
// qemu-user-static's binfmt_misc entry, enabled and with the F
// (fix-binary) flag, with which the kernel keeps the interpreter open
// so that the chroot needs no copy of qemu. The error is one line that
// says what the host lacks.
func CheckArch(arch string) error {
	return checkArch(BinfmtDir, debian.ArchOf(runtime.GOARCH), arch)
}

func checkArch(dir, host, arch string) error {
	if native(host, arch) {
		return nil
	}
	a, ok := debian.LookupArch(arch)
	if !ok || a.QEMU == "" {
		return fmt.Errorf("architecture %s: cannot run %s programs on %s: no qemu-user emulator known for it", arch, arch, host)
	}
	name := "qemu-" + a.QEMU
	howto := "install qemu-user-static and register it, e.g. update-binfmts --enable " + name
	fail := func(format string, a ...any) error {
		return fmt.Errorf("architecture %s: cannot run %s programs: %s (%s)", arch, arch, fmt.Sprintf(format, a...), howto)
	}
	if _, err := os.Stat(filepath.Join(dir, "register")); err != nil {
		howto = "mount -t binfmt_misc binfmt_misc " + dir + ", then " + howto
		return fail("binfmt_misc is not mounted on %s", dir)
	}
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil && strings.TrimSpace(string(status)) != "enabled" {
		howto = "echo 1 >" + filepath.Join(dir, "status")
		return fail("binfmt_misc is disabled")
	}
	text, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return fail("no binfmt_misc entry %s", name)
	}
	if err != nil {
		return fail("binfmt_misc entry %s: %v", name, err)
	}
	e := parseBinfmtEntry(string(text))
	switch {
	case !e.enabled:
		howto = "enable it, e.g. update-binfmts --enable " + name
		return fail("binfmt_misc entry %s is disabled", name)
	case !strings.Contains(e.flags, "F"):
		howto = "register it again with the F flag, as qemu-user-static's /usr/lib/binfmt.d/" + name + ".conf does"
		return fail("binfmt_misc entry %s lacks the F (fix-binary) flag, so %s is not found in the chroot", name, e.interpreter)
	}
	return nil
}

// binfmtEntry is what matters of a /proc/sys/fs/binfmt_misc/NAME file.
type binfmtEntry struct {
	enabled     bool
	interpreter string
	flags       string
}

// parseBinfmtEntry parses a binfmt_misc entry file: "enabled" or
// "disabled", then "interpreter PATH", "flags: FLAGS", offset, magic,
// mask, one a line.
func parseBinfmtEntry(text string) binfmtEntry {
	var e binfmtEntry
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if i == 0 {
			e.enabled = line == "enabled"
			continue
		}
		if v, ok := strings.CutPrefix(line, "interpreter "); ok {
			e.interpreter = v
		} else if v, ok := strings.CutPrefix(line, "flags:"); ok {
			e.flags = strings.TrimSpace(v)
		}
	}
	return e
}
