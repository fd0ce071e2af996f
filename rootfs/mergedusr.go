package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// mergedUsrDirs returns the top-level directories that merged /usr makes
// symlinks into /usr on arch: bin, sbin, lib and the arch's multilib
// directories, as debootstrap's setup_merged_usr lists them.
func mergedUsrDirs(arch string) []string {
	var multilib []string
	switch {
	case arch == "amd64" || arch == "x32":
		multilib = []string{"lib32", "lib64", "libx32"}
	case arch == "i386":
		multilib = []string{"lib64", "libx32"}
	case arch == "mips" || arch == "mipsel":
		multilib = []string{"lib32", "lib64"}
	case strings.HasPrefix(arch, "mips64") || strings.HasPrefix(arch, "mipsn32"):
		multilib = []string{"lib32", "lib64", "libo32"}
	// debootstrap matches loongarch64*; Debian calls the arch loong64,
	// whose dynamic linker is in /lib64.
	case arch == "loong64" || strings.HasPrefix(arch, "loongarch64"):
		multilib = []string{"lib32", "lib64"}
	case arch == "powerpc" || arch == "ppc64el" || arch == "sparc":
		multilib = []string{"lib64"}
	case arch == "ppc64" || arch == "sparc64":
		multilib = []string{"lib32", "lib64"}
	case arch == "s390x":
		multilib = []string{"lib32"}
	}
	return append([]string{"bin", "sbin", "lib"}, multilib...)
}

// MergeUsr prepares dir for unpacking a merged-/usr system, as
// debootstrap's setup_merged_usr does: for bin, sbin, lib and arch's
// multilib directories, a directory usr/DIR and a symlink DIR -> usr/DIR.
// A symlink already there is kept.
//
// debootstrap's merge_usr, which built the official images, only links
// the directories the packages ship; PruneMergedUsr removes the others
// after unpacking.
func MergeUsr(dir, arch string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, d := range mergedUsrDirs(arch) {
		if err := root.MkdirAll("usr/"+d, 0o755); err != nil {
			return fmt.Errorf("merged /usr: %w", err)
		}
		fi, err := root.Lstat(d)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := root.Symlink("usr/"+d, d); err != nil {
				return fmt.Errorf("merged /usr: %w", err)
			}
		case err != nil:
			return fmt.Errorf("merged /usr: %w", err)
		case fi.Mode()&fs.ModeSymlink == 0:
			return fmt.Errorf("merged /usr: /%s exists and is not a symlink", d)
		}
	}
	return nil
}

// PruneMergedUsr removes, after unpacking pkgs, what MergeUsr made and
// no package uses: the symlink DIR if no package ships /DIR, and the
// directory usr/DIR if no package ships /DIR or /usr/DIR either. The
// tree then has the symlinks debootstrap's merge_usr makes, which links
// only the directories it finds after unpacking.
func PruneMergedUsr(dir, arch string, pkgs []*Installed) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, d := range mergedUsrDirs(arch) {
		top, usr := ships(pkgs, "/"+d), ships(pkgs, "/usr/"+d)
		if top {
			continue
		}
		if target, err := root.Readlink(d); err == nil && target == "usr/"+d {
			if err := root.Remove(d); err != nil {
				return fmt.Errorf("merged /usr: %w", err)
			}
		}
		if !usr {
			// Fails, and is left alone, if something was put there.
			if err := root.Remove("usr/" + d); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
				return fmt.Errorf("merged /usr: %w", err)
			}
		}
	}
	return nil
}

// ships reports whether a package lists p or something under it.
func ships(pkgs []*Installed, p string) bool {
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			if f == p || strings.HasPrefix(f, p+"/") {
				return true
			}
		}
	}
	return false
}
