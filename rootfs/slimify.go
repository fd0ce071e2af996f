package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"syscall"
)

// slimExcludes and slimIncludes are debuerreotype's .slimify-excludes and
// .slimify-includes as debuerreotype-slimify reads them: without comments,
// sorted and unique in the C locale.
var (
	slimExcludes = []string{
		"/usr/share/doc/*",
		"/usr/share/doc/kde/HTML/*/*",
		"/usr/share/gnome/help/*/*",
		"/usr/share/info/*",
		"/usr/share/linda/*",
		"/usr/share/lintian/overrides/*",
		"/usr/share/locale/*",
		"/usr/share/man/*",
		"/usr/share/omf/*/*-*.emf",
	}
	slimIncludes = []string{
		"/usr/share/doc/*/copyright",
		"/usr/share/doc/kde/HTML/C/*",
		"/usr/share/gnome/help/*/C/*",
		"/usr/share/locale/all_languages",
		"/usr/share/locale/currency/*",
		"/usr/share/locale/l10n/*",
		"/usr/share/locale/languages",
		"/usr/share/locale/locale.alias",
		"/usr/share/omf/*/*-C.emf",
	}
)

// SlimDpkgConfig is where Slimify writes dpkg's path filters.
const SlimDpkgConfig = "etc/dpkg/dpkg.cfg.d/docker"

// Slimify makes the configured tree dir the "slim" variant, as
// debuerreotype-slimify does: it writes SlimDpkgConfig, whose
// path-exclude and path-include lines keep later installs slim and whose
// comments name the packages owning each excluded pattern (what
// "dpkg -S PATTERN" prints), and removes the excluded files already there.
//
// For a pattern DIR/*, everything below DIR that is neither a directory
// nor a symlink and matches no include goes; then empty files, empty
// directories and dangling symlinks below DIR go until none is left. Any
// other pattern names one file. usr/share/man/man[0-9] directories are
// kept, as empty directories if need be (mode 0775: debuerreotype's
// umask is 0002), since some postinsts fail without them.
//
// Patterns match as fnmatch without FNM_PATHNAME, as in find -path and
// dpkg: "*" matches "/" too. Slimify runs before Finish, which clamps
// the mtimes it changed.
func Slimify(dir string) error {
	if err := checkNoMountsBelow(dir); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := slimify(root); err != nil {
		return fmt.Errorf("slimify %s: %w", dir, err)
	}
	return nil
}

func slimify(root *os.Root) error {
	db, err := readFileOwners(root)
	if err != nil {
		return err
	}
	var special []string
	if entries, err := readDirNames(root, "usr/share/man"); err == nil {
		for _, name := range entries {
			p := "usr/share/man/" + name
			if len(name) == 4 && strings.HasPrefix(name, "man") && name[3] >= '0' && name[3] <= '9' && isDirFollow(root, p) {
				special = append(special, p)
			}
		}
	}
	includes := make([]*regexp.Regexp, len(slimIncludes))
	for i, p := range slimIncludes {
		includes[i] = fnmatchRegexp(p)
	}

	var cfg bytes.Buffer
	cfg.WriteString("# This is the \"slim\" variant of the Debian base image.\n" +
		"# Many files which are normally unnecessary in containers are excluded,\n" +
		"# and this configuration file keeps them that way.\n")
	for _, ex := range slimExcludes {
		fmt.Fprintf(&cfg, "\n# dpkg -S '%s'\n", ex)
		for _, line := range foldSpaces(db.search(ex), 76) {
			cfg.WriteString("#  " + line + "\n")
		}
		fmt.Fprintf(&cfg, "path-exclude %s\n", ex)
		if err := slimRemove(root, ex, includes); err != nil {
			return err
		}
	}
	cfg.WriteString("\n")
	for _, in := range slimIncludes {
		fmt.Fprintf(&cfg, "path-include %s\n", in)
	}
	if err := root.MkdirAll(path.Dir(SlimDpkgConfig), 0o755); err != nil {
		return err
	}
	if err := writeFileIn(root, SlimDpkgConfig, cfg.Bytes(), 0o644); err != nil {
		return err
	}
	// https://github.com/debuerreotype/debuerreotype/issues/10
	for _, p := range special {
		if _, err := root.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := root.Mkdir(p, 0o775); err != nil {
			return err
		}
		if err := root.Chmod(p, 0o775); err != nil { // whatever our umask
			return err
		}
	}
	return nil
}

// slimRemove removes what the exclude pattern ex selects.
func slimRemove(root *os.Root, ex string, includes []*regexp.Regexp) error {
	if !strings.HasSuffix(ex, "/*") {
		// rm -f of the pattern as a name.
		name := strings.TrimPrefix(ex, "/")
		if fi, err := root.Lstat(name); err == nil && !fi.IsDir() {
			return root.Remove(name)
		}
		return nil
	}
	top := strings.TrimPrefix(path.Dir(ex), "/")
	// find does not descend into a symlink given as its start.
	if fi, err := root.Lstat(top); err != nil || !fi.IsDir() {
		return nil
	}
	// Pass 1: files (not directories or symlinks) no include matches.
	err := walkDepth(root, top, func(p string, fi fs.FileInfo) (bool, error) {
		if fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 || matchesAny(includes, "/"+p) {
			return false, nil
		}
		return true, root.Remove(p)
	})
	if err != nil {
		return err
	}
	// Then empty files and directories and dangling symlinks, until a
	// pass finds none: removing one can empty a directory or leave a
	// symlink dangling.
	for {
		removed := false
		err := walkDepth(root, top, func(p string, fi fs.FileInfo) (bool, error) {
			if !isEmpty(root, p, fi) && !isDangling(root, p, fi) {
				return false, nil
			}
			removed = true
			return true, root.RemoveAll(p)
		})
		if err != nil {
			return err
		}
		if !removed {
			return nil
		}
	}
}

// walkDepth calls f for everything below top, a directory's contents
// before the directory, as find -depth -mindepth 1 does, without
// following symlinks. f reports whether it removed p.
func walkDepth(root *os.Root, top string, f func(p string, fi fs.FileInfo) (bool, error)) error {
	names, err := readDirNames(root, top)
	if err != nil {
		return err
	}
	for _, name := range names {
		p := top + "/" + name
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walkDepth(root, p, f); err != nil {
				return err
			}
			// Look again: the directory may have been emptied.
			if fi, err = root.Lstat(p); err != nil {
				return err
			}
		}
		if _, err := f(p, fi); err != nil {
			return err
		}
	}
	return nil
}

func readDirNames(root *os.Root, dir string) ([]string, error) {
	d, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// isEmpty is find's -empty: an empty regular file or directory.
func isEmpty(root *os.Root, p string, fi fs.FileInfo) bool {
	switch {
	case fi.Mode().IsRegular():
		return fi.Size() == 0
	case fi.IsDir():
		names, err := readDirNames(root, p)
		return err == nil && len(names) == 0
	}
	return false
}

// isDangling is find's -xtype l: a symlink that does not resolve, inside
// the tree as in a chroot.
func isDangling(root *os.Root, p string, fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeSymlink == 0 {
		return false
	}
	links := 0
	_, err := resolveIn(root, "", p, &links)
	return err != nil
}

// isDirFollow reports whether p is a directory or a symlink to one, inside
// the tree as in a chroot.
func isDirFollow(root *os.Root, p string) bool {
	links := 0
	real, err := resolveIn(root, "", p, &links)
	if err != nil {
		return false
	}
	fi, err := root.Lstat(real)
	return err == nil && fi.IsDir()
}

// resolveIn returns the path without symlinks of name relative to the real
// directory cur ("" for the root); ".." stops at the root, as in a chroot.
func resolveIn(root *os.Root, cur, name string, links *int) (string, error) {
	if strings.HasPrefix(name, "/") {
		cur = ""
	}
	parts := strings.Split(name, "/")
	for i, c := range parts {
		switch c {
		case "", ".":
			continue
		case "..":
			if cur = path.Dir(cur); cur == "." {
				cur = ""
			}
			continue
		}
		next := path.Join(cur, c)
		fi, err := root.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if *links++; *links > 40 {
				return "", syscall.ELOOP
			}
			target, err := root.Readlink(next)
			if err != nil {
				return "", err
			}
			if next, err = resolveIn(root, cur, target, links); err != nil {
				return "", err
			}
			if fi, err = root.Lstat(next); err != nil {
				return "", err
			}
		}
		if !fi.IsDir() && i < len(parts)-1 && slices.ContainsFunc(parts[i+1:], func(s string) bool { return s != "" }) {
			return "", syscall.ENOTDIR
		}
		cur = next
	}
	return cur, nil
}

func matchesAny(res []*regexp.Regexp, name string) bool {
	return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(name) })
}

// fnmatchRegexp compiles a shell pattern as fnmatch with no flags reads
// it: "*" and "?" match any character, "/" included.
func fnmatchRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := pattern[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += end + 1
		case '\\':
			if i+1 < len(pattern) {
				i++
			}
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// fileOwners is what dpkg -S searches: the installed packages' files and
// the diversions.
type fileOwners struct {
	owners  map[string][]string // path → packages, as dpkg -S names them
	diverts map[string]string   // path (either end of a diversion) → "diversion by PKG" or "local diversion"
}

func readFileOwners(root *os.Root) (*fileOwners, error) {
	all, err := readDpkgStatus(root)
	if err != nil {
		return nil, err
	}
	var pkgs []statusPackage
	native := ""
	for _, p := range all {
		if !p.installed() {
			continue
		}
		if p.name == "dpkg" {
			native = p.arch
		}
		pkgs = append(pkgs, p)
	}
	db := &fileOwners{owners: map[string][]string{}, diverts: map[string]string{}}
	for _, p := range pkgs {
		// dpkg's pkg_name(pnaw_nonambig).
		name := p.name
		if p.multiArch == "same" || p.arch != native && p.arch != "all" && p.arch != "" {
			name += ":" + p.arch
		}
		list, err := root.ReadFile("var/lib/dpkg/info/" + p.name + ":" + p.arch + ".list")
		if errors.Is(err, fs.ErrNotExist) {
			list, err = root.ReadFile("var/lib/dpkg/info/" + p.name + ".list")
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		for f := range strings.Lines(string(list)) {
			f = strings.TrimSuffix(f, "\n")
			db.owners[f] = append(db.owners[f], name)
		}
	}
	div, err := root.ReadFile("var/lib/dpkg/diversions")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(div), "\n"), "\n")
	for i := 0; i+2 < len(lines); i += 3 {
		by := "diversion by " + lines[i+2]
		if lines[i+2] == ":" {
			by = "local diversion"
		}
		db.diverts[lines[i]] = by
		db.diverts[lines[i+1]] = by
	}
	return db, nil
}

// search returns what debuerreotype-slimify makes of "dpkg -S pattern":
// the owning packages and diversions, sorted and unique, on one line; or
// dpkg-query's complaint when nothing matches.
func (db *fileOwners) search(pattern string) string {
	re := fnmatchRegexp(pattern)
	seen := map[string]bool{}
	match := func(name string) {
		if !re.MatchString(name) {
			return
		}
		if by, ok := db.diverts[name]; ok {
			seen[by+" from"] = true
			seen[by+" to"] = true
		}
		for _, o := range db.owners[name] {
			seen[o] = true
		}
	}
	for name := range db.owners {
		match(name)
	}
	for name := range db.diverts {
		if _, ok := db.owners[name]; !ok {
			match(name)
		}
	}
	if len(seen) == 0 {
		return "dpkg-query: no path found matching pattern " + pattern
	}
	return strings.Join(slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	}), " ")
}

// foldSpaces breaks line as "fold -w width -s" does: lines of at most
// width bytes, broken after the last space that fits (which stays at the
// line's end), or at width when there is none.
func foldSpaces(line string, width int) []string {
	var out []string
	for len(line) > width {
		cut := strings.LastIndexByte(line[:width], ' ') + 1
		if cut == 0 {
			cut = width
		}
		out = append(out, line[:cut])
		line = line[cut:]
	}
	return append(out, line)
}
