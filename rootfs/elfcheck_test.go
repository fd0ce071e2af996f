package rootfs

import (
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/debian"
)

// A dynamically linked program of the host passes the check only once
// the tree has its interpreter and libraries where the loader looks;
// until then the error names the program and what it lacks.
func TestCheckLibraries(t *testing.T) {
	arch := debian.ArchOf(runtime.GOARCH)
	a, _ := debian.LookupArch(arch)
	prog, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	prog, _ = filepath.EvalSymlinks(prog)
	dir := t.TempDir()
	copyHost := func(src, dst string) {
		t.Helper()
		src, err := filepath.EvalSymlinks(src)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst = filepath.Join(dir, dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyHost(prog, "usr/local/bin/true")
	// Not ELF, or not a loadable object: not checked.
	if err := os.WriteFile(filepath.Join(dir, "script"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken"), []byte("\x7fELF junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = CheckLibraries(dir, arch)
	if err == nil || !strings.Contains(err.Error(), "/usr/local/bin/true needs its interpreter ") || !strings.Contains(err.Error(), ", libc.so.6, which the image lacks") {
		t.Fatalf("error %v, want one naming /usr/local/bin/true, its interpreter and libc.so.6", err)
	}

	// The host's loader and libc, the loader reached through an
	// absolute symlink, as libc6 ships it.
	f, err := elf.Open(prog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	libdir := "/usr/lib/" + a.Multiarch
	copyHost(filepath.Join(libdir, "libc.so.6"), libdir+"/libc.so.6")
	copyHost(interp, libdir+"/"+filepath.Base(interp))
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(interp)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(libdir+"/"+filepath.Base(interp), filepath.Join(dir, interp)); err != nil {
		t.Fatal(err)
	}
	if err := CheckLibraries(dir, arch); err != nil {
		t.Fatal(err)
	}

	// A library of another class does not count.
	if err := os.Remove(filepath.Join(dir, libdir, "libc.so.6")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/lib/libc.so.6"), []byte("\x7fELF\x01\x01\x01"+strings.Repeat("\x00", 60)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckLibraries(dir, arch); err == nil || !strings.Contains(err.Error(), "/usr/local/bin/true needs libc.so.6, which the image lacks") {
		t.Errorf("error %v, want one naming libc.so.6", err)
	}
}
