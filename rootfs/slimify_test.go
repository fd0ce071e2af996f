package rootfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSlimify checks Slimify's selection on a small tree: what the
// exclude patterns remove, what the includes keep, the second pass's
// empty files and directories and dangling symlinks, the man directories
// put back, and the dpkg configuration's bytes.
func TestSlimify(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name, target string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("var/lib/dpkg/status", "Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\n\n"+
		"Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\n\n"+
		"Package: docs\nStatus: install ok installed\nArchitecture: all\n\n"+
		"Package: libbar1\nStatus: install ok installed\nArchitecture: i386\n\n"+
		"Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\n")
	write("var/lib/dpkg/info/dpkg.list", "/.\n/usr\n/usr/share\n/usr/share/doc\n/usr/share/doc/dpkg\n/usr/share/doc/dpkg/copyright\n/usr/share/man/man1/dpkg.1.gz\n/usr/share/locale/de/LC_MESSAGES/dpkg.mo\n")
	write("var/lib/dpkg/info/libfoo1:amd64.list", "/usr/share/doc/libfoo1/copyright\n")
	write("var/lib/dpkg/info/docs.list", "/usr/share/doc/docs/README\n/usr/share/info/docs.info.gz\n")
	write("var/lib/dpkg/info/libbar1:i386.list", "/usr/share/lintian/overrides/libbar1\n")
	write("var/lib/dpkg/info/gone.list", "/usr/share/doc/gone/README\n")
	write("var/lib/dpkg/diversions", "/usr/share/man/man1/sh.1.gz\n/usr/share/man/man1/sh.distrib.1.gz\ndash\n")

	write("usr/share/doc/dpkg/copyright", "c")
	write("usr/share/doc/dpkg/changelog.gz", "x")
	write("usr/share/doc/libfoo1/copyright", "c")
	write("usr/share/doc/libfoo1/nested/copyright", "c") // "*" matches "/"
	write("usr/share/doc/docs/README", "x")
	write("usr/share/doc/empty/copyright", "") // included, but empty
	link("usr/share/doc/libfoo-dev", "libfoo1")
	link("usr/share/doc/abs", "/usr/share/doc/dpkg/copyright")
	link("usr/share/doc/dangling", "/nonexistent")
	link("usr/share/doc/loop", "loop")
	link("usr/share/doc/docs/NEWS", "../dpkg/changelog.gz") // dangles once the file is gone
	write("usr/share/info/docs.info.gz", "x")
	write("usr/share/locale/locale.alias", "x")
	write("usr/share/locale/de/LC_MESSAGES/dpkg.mo", "x")
	write("usr/share/locale/currency/EUR", "x")
	write("usr/share/man/man1/dpkg.1.gz", "x")
	write("usr/share/man/man1/sh.distrib.1.gz", "x")
	write("usr/share/man/de/man1/dpkg.1.gz", "x")
	write("usr/share/man/man5/keep", "x")
	link("usr/share/man/man5/keep.5.gz", "keep")
	write("usr/share/omf/x/x-de.emf", "x") // not a DIR/* pattern: a name
	write("usr/share/lintian/overrides/libbar1", "x")
	write("usr/bin/dpkg", "x")
	if err := os.MkdirAll(filepath.Join(dir, "etc/dpkg/dpkg.cfg.d"), 0o755); err != nil {
		t.Fatal(err)
	}

	if err := Slimify(dir); err != nil {
		t.Fatal(err)
	}

	var got []string
	err := filepath.WalkDir(filepath.Join(dir, "usr"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		got = append(got, rel+" "+fi.Mode().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"usr drwxr-xr-x",
		"usr/bin drwxr-xr-x",
		"usr/bin/dpkg -rw-r--r--",
		"usr/share drwxr-xr-x",
		"usr/share/doc drwxr-xr-x",
		"usr/share/doc/abs Lrwxrwxrwx",
		"usr/share/doc/dpkg drwxr-xr-x",
		"usr/share/doc/dpkg/copyright -rw-r--r--",
		"usr/share/doc/libfoo-dev Lrwxrwxrwx",
		"usr/share/doc/libfoo1 drwxr-xr-x",
		"usr/share/doc/libfoo1/copyright -rw-r--r--",
		"usr/share/doc/libfoo1/nested drwxr-xr-x",
		"usr/share/doc/libfoo1/nested/copyright -rw-r--r--",
		"usr/share/info drwxr-xr-x",
		"usr/share/lintian drwxr-xr-x",
		"usr/share/lintian/overrides drwxr-xr-x",
		"usr/share/locale drwxr-xr-x",
		"usr/share/locale/currency drwxr-xr-x",
		"usr/share/locale/currency/EUR -rw-r--r--",
		"usr/share/locale/locale.alias -rw-r--r--",
		"usr/share/man drwxr-xr-x",
		"usr/share/man/man1 drwxrwxr-x", // emptied, removed and made again
		"usr/share/man/man5 drwxrwxr-x", // its file went, then the symlink to it
		"usr/share/omf drwxr-xr-x",
		"usr/share/omf/x drwxr-xr-x",
		"usr/share/omf/x/x-de.emf -rw-r--r--",
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("tree after Slimify:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	cfg, err := os.ReadFile(filepath.Join(dir, SlimDpkgConfig))
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := `# This is the "slim" variant of the Debian base image.
# Many files which are normally unnecessary in containers are excluded,
# and this configuration file keeps them that way.

# dpkg -S '/usr/share/doc/*'
#  docs dpkg libfoo1:amd64
path-exclude /usr/share/doc/*

# dpkg -S '/usr/share/doc/kde/HTML/*/*'
#  dpkg-query: no path found matching pattern /usr/share/doc/kde/HTML/*/*
path-exclude /usr/share/doc/kde/HTML/*/*

# dpkg -S '/usr/share/gnome/help/*/*'
#  dpkg-query: no path found matching pattern /usr/share/gnome/help/*/*
path-exclude /usr/share/gnome/help/*/*

# dpkg -S '/usr/share/info/*'
#  docs
path-exclude /usr/share/info/*

# dpkg -S '/usr/share/linda/*'
#  dpkg-query: no path found matching pattern /usr/share/linda/*
path-exclude /usr/share/linda/*

# dpkg -S '/usr/share/lintian/overrides/*'
#  libbar1:i386
path-exclude /usr/share/lintian/overrides/*

# dpkg -S '/usr/share/locale/*'
#  dpkg
path-exclude /usr/share/locale/*

# dpkg -S '/usr/share/man/*'
#  diversion by dash from diversion by dash to dpkg
path-exclude /usr/share/man/*

# dpkg -S '/usr/share/omf/*/*-*.emf'
#  dpkg-query: no path found matching pattern /usr/share/omf/*/*-*.emf
path-exclude /usr/share/omf/*/*-*.emf

path-include /usr/share/doc/*/copyright
path-include /usr/share/doc/kde/HTML/C/*
path-include /usr/share/gnome/help/*/C/*
path-include /usr/share/locale/all_languages
path-include /usr/share/locale/currency/*
path-include /usr/share/locale/l10n/*
path-include /usr/share/locale/languages
path-include /usr/share/locale/locale.alias
path-include /usr/share/omf/*/*-C.emf
`
	if string(cfg) != wantCfg {
		t.Errorf("%s:\n%s\nwant:\n%s", SlimDpkgConfig, cfg, wantCfg)
	}
	if fi, err := os.Stat(filepath.Join(dir, SlimDpkgConfig)); err != nil || fi.Mode() != 0o644 {
		t.Errorf("%s: %v, %v; want mode 0644", SlimDpkgConfig, fi.Mode(), err)
	}
}

// TestFoldSpaces checks the comment lines against what "fold -w 76 -s"
// makes of them.
func TestFoldSpaces(t *testing.T) {
	long := strings.Repeat("x", 80)
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"a b", []string{"a b"}},
		{strings.Repeat("abcd ", 15) + "a", []string{strings.Repeat("abcd ", 15) + "a"}},  // 76: fits
		{strings.Repeat("abcd ", 15) + "ab", []string{strings.Repeat("abcd ", 15), "ab"}}, // 77: broken after the space
		{strings.Repeat("abcd ", 16), []string{strings.Repeat("abcd ", 15), "abcd "}},     // the space stays at the end
		{"ab " + long, []string{"ab ", long[:76], long[76:]}},                             // no space: cut at 76
		{long[:75] + " " + long[:3], []string{long[:75] + " ", long[:3]}},                 // a space at 76
	} {
		if got := foldSpaces(c.in, 76); !slices.Equal(got, c.want) {
			t.Errorf("foldSpaces(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestFnmatchRegexp checks the patterns match as find -path and dpkg -S
// match them: "*" crosses "/".
func TestFnmatchRegexp(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"/usr/share/doc/*/copyright", "/usr/share/doc/a/copyright", true},
		{"/usr/share/doc/*/copyright", "/usr/share/doc/a/b/copyright", true},
		{"/usr/share/doc/*/copyright", "/usr/share/doc/copyright", false},
		{"/usr/share/doc/*", "/usr/share/doc", false},
		{"/usr/share/omf/*/*-C.emf", "/usr/share/omf/x/x-C.emf", true},
		{"/usr/share/omf/*/*-C.emf", "/usr/share/omf/x/x-de.emf", false},
		{"/a/b.c", "/a/bxc", false},
		{"/a/?", "/a/b", true},
		{"/a/[!b]", "/a/c", true},
		{"/a/[!b]", "/a/b", false},
	} {
		if got := fnmatchRegexp(c.pattern).MatchString(c.name); got != c.want {
			t.Errorf("%q matching %q: %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}
