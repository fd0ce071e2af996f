package rootfs

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/basebuild/basebuild/debian"
)

// CheckLibraries checks that every ELF file of the tree dir, of Debian
// architecture arch, can be loaded there: its interpreter (PT_INTERP) is
// in the tree, and each library it needs (DT_NEEDED) is found where the
// dynamic loader looks without /etc/ld.so.cache, which a tree whose
// ldconfig never ran lacks: its DT_RUNPATH (else DT_RPATH) with $ORIGIN,
// then the loader's system search path, /lib/TUPLE, /usr/lib/TUPLE, /lib
// and /usr/lib, a library counting only if it is ELF of the same class
// and machine. The error names each file and what it lacks.
func CheckLibraries(dir, arch string) error {
	a, ok := debian.LookupArch(arch)
	if !ok || a.Multiarch == "" {
		return fmt.Errorf("library check: no multiarch tuple for architecture %q", arch)
	}
	system := []string{"/lib/" + a.Multiarch, "/usr/lib/" + a.Multiarch, "/lib", "/usr/lib"}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var missing []string
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, r, err := openELF(root, name)
		if err != nil || f == nil {
			return err
		}
		defer r.Close()
		lacks, err := unmet(root, "/"+name, f, system)
		if err != nil {
			return fmt.Errorf("library check: /%s: %w", name, err)
		}
		if len(lacks) > 0 {
			missing = append(missing, "/"+name+" needs "+strings.Join(lacks, ", "))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		const show = 10
		more := ""
		if len(missing) > show {
			more = fmt.Sprintf(" (and %d more)", len(missing)-show)
			missing = missing[:show]
		}
		return fmt.Errorf("library check: %s, which the image lacks%s", strings.Join(missing, "; "), more)
	}
	return nil
}

// openELF opens name in root as ELF, its symlinks resolved inside the
// tree as in a chroot, or returns nil for a file that is not an ELF
// object. The caller closes the returned file.
func openELF(root *os.Root, name string) (*elf.File, *os.File, error) {
	links := 0
	real, err := resolveIn(root, "", name, &links)
	if err != nil {
		return nil, nil, err
	}
	r, err := root.Open(real)
	if err != nil {
		return nil, nil, err
	}
	magic := make([]byte, len(elf.ELFMAG))
	if _, err := io.ReadFull(r, magic); err != nil || !bytes.Equal(magic, []byte(elf.ELFMAG)) {
		r.Close()
		return nil, nil, nil
	}
	f, err := elf.NewFile(r)
	if err != nil {
		r.Close()
		return nil, nil, nil // ELF magic, but not an object the loader maps
	}
	return f, r, nil
}

// unmet lists what the ELF file f, at name in root, needs and root lacks.
func unmet(root *os.Root, name string, f *elf.File, system []string) ([]string, error) {
	var lacks []string
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return nil, err
		}
		interp := string(bytes.TrimRight(b, "\x00"))
		if links := 0; !path.IsAbs(interp) {
			lacks = append(lacks, "its interpreter "+interp+" (not an absolute path)")
		} else if _, err := resolveIn(root, "", interp, &links); err != nil {
			lacks = append(lacks, "its interpreter "+interp)
		}
	}
	needed, err := f.DynString(elf.DT_NEEDED)
	if err != nil {
		return nil, nil // no dynamic section: nothing to load
	}
	runpath, _ := f.DynString(elf.DT_RUNPATH)
	if len(runpath) == 0 {
		runpath, _ = f.DynString(elf.DT_RPATH)
	}
	var dirs []string
	for _, rp := range runpath {
		for _, d := range strings.Split(rp, ":") {
			dirs = append(dirs, strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", path.Dir(name)), "$ORIGIN", path.Dir(name)))
		}
	}
	dirs = append(dirs, system...)
	for _, lib := range needed {
		if !slices.ContainsFunc(dirs, func(d string) bool { return hasLibrary(root, path.Join(d, lib), f) }) {
			lacks = append(lacks, lib)
		}
	}
	return lacks, nil
}

// hasLibrary reports whether name in root is an ELF library the loader
// would take for f: of its class and machine.
func hasLibrary(root *os.Root, name string, f *elf.File) bool {
	if !path.IsAbs(name) {
		return false
	}
	lib, r, err := openELF(root, name)
	if err != nil || lib == nil {
		return false
	}
	defer r.Close()
	return lib.Class == f.Class && lib.Machine == f.Machine
}
