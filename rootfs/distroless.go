package rootfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"pault.ag/go/debian/dependency"

	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/debian/control"
)

// NonrootUID is the user (and group) distroless images run as with
// --nonroot, as GoogleContainerTools/distroless's nonroot images do.
const NonrootUID = 65532

// nobodyUID is Debian's nobody (and nogroup).
const nobodyUID = 65534

// The files a distroless image gets besides its packages' data, as
// GoogleContainerTools/distroless's common/BUILD.bazel and static/ make
// them.
const (
	distrolessPasswd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	distrolessGroup = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
	// distroless's static/nsswitch.conf.
	distrolessNsswitch = `# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the ` + "`glibc-doc-reference' and `info'" + ` packages installed, try:
# ` + "`info libc \"Name Service Switch\"'" + ` for information about this file.

passwd:         compat
group:          compat
shadow:         compat
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
`
	// CABundle is where update-ca-certificates writes the bundle, and
	// distroless's SSL_CERT_FILE.
	CABundle = "etc/ssl/certs/ca-certificates.crt"
	// caSource is where ca-certificates ships its certificates.
	caSource = "usr/share/ca-certificates"
	// statusD is where distroless records each package for scanners,
	// instead of dpkg's status file.
	statusD = "var/lib/dpkg/status.d"
)

// distrolessOSRelease is distroless's /usr/lib/os-release for codename
// (common/variables.bzl's OS_RELEASE): ID debian and the release's
// VERSION_ID, so that scanners see a Debian release.
func distrolessOSRelease(codename string) string {
	v := debian.Version(codename)
	return fmt.Sprintf(`PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="%s"
VERSION="Debian GNU/Linux %s (%s)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"
BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"
`, v, v, codename)
}

// buildDistroless makes a distroless tree of debs in dir: the packages'
// data extracted and not configured (no maintainer script runs; there is
// no shell to run one), what their scripts would have made that a
// program needs made here (conffiles in place, the CA bundle), the
// files distroless adds, the packages recorded in status.d for
// scanners, then --copy; then every ELF file's libraries are checked
// (CheckLibraries) and every time clamped to the epoch.
func buildDistroless(ctx context.Context, dir string, debs []DebFile, o BuildOptions, step func(string, func() error) error) error {
	if o.MergedUsr {
		if err := step("merged-usr", func() error { return MergeUsr(dir, o.Arch) }); err != nil {
			return err
		}
	}
	var installed []*Installed
	err := step("unpack", func() (err error) {
		if installed, err = Unpack(ctx, dir, debs, o.Jobs, o.Unpacked); err != nil {
			return err
		}
		if o.MergedUsr {
			return PruneMergedUsr(dir, o.Arch, installed)
		}
		return nil
	})
	if err != nil {
		return err
	}
	why := map[string]string{}
	for _, d := range debs {
		why[d.Name] = d.Why
	}
	if err := step("script check", func() error { return checkScripts(dir, o.Suite, installed, o.Manual, why) }); err != nil {
		return err
	}
	if err := step("distroless", func() error { return completeDistroless(dir, o.Suite, installed) }); err != nil {
		return err
	}
	if o.Note != nil {
		dropped, err := droppedDependencies(installed)
		if err != nil {
			return err
		}
		if len(dropped) > 0 {
			o.Note("left out what only maintainer scripts use: " + strings.Join(dropped, "; "))
		}
	}
	for _, c := range o.Copies {
		if err := step("copy "+c.Dst, func() error { return CopyInto(dir, c) }); err != nil {
			return err
		}
	}
	// What the packages and copies need to run, they must have: no
	// peer checks it, and a missing library fails only at run time.
	if err := step("library check", func() error { return CheckLibraries(dir, o.Arch) }); err != nil {
		return err
	}
	return step("finish", func() error { return clampTimes(dir, o.Epoch) })
}

// pulledInBy says what pulled a package in, from its plan.Package.Why:
// "gzip depends on it"; "" for a root.
func pulledInBy(why string) string {
	verb, by, ok := strings.Cut(why, " ")
	switch {
	case !ok:
		return ""
	case verb == "recommends":
		return by + " recommends it"
	}
	return by + " " + verb + " on it"
}

// checkScripts refuses the packages pkgs, unpacked in dir, that cannot be
// made distroless: those that need what their preinst or postinst would
// make on a fresh install (debian.ScriptActions) and the tree lacks, but
// the packages distroless ships itself for the release codename
// (debian.DistrolessShipped). A package of manual is named as the
// --include that asked for it, another with what pulled it in, from why
// (plan.Package.Why by name).
func checkScripts(dir, codename string, pkgs []*Installed, manual []string, why map[string]string) error {
	shipped, err := debian.DistrolessShipped(codename)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var refused []string
	for _, p := range pkgs {
		if slices.Contains(shipped, p.Name) {
			continue
		}
		var reasons []string
		for _, name := range []string{"preinst", "postinst"} {
			script, ok := p.Members[name]
			if !ok {
				continue
			}
			actions, err := debian.ScriptActions(name, script)
			if err != nil {
				reasons = append(reasons, "its "+name+" cannot be read: "+err.Error())
				continue
			}
			var lacks []string
			for _, a := range actions {
				if a.Creates && path.IsAbs(a.Target) {
					if _, err := root.Lstat(strings.TrimPrefix(a.Target, "/")); err == nil {
						continue // the image has it anyway
					}
				}
				lacks = append(lacks, a.String())
			}
			if len(lacks) > 0 {
				reasons = append(reasons, "its "+name+" "+strings.Join(lacks, ", "))
			}
		}
		if len(reasons) == 0 {
			continue
		}
		noun := "package " + p.Name
		if by := pulledInBy(why[p.Name]); by != "" {
			noun += " (" + by + ")"
		}
		if slices.Contains(manual, p.Name) {
			noun = "--include " + p.Name
		}
		refused = append(refused, noun+": "+strings.Join(reasons, "; "))
	}
	if len(refused) > 0 {
		return errors.New(strings.Join(refused, "; ") + "; a distroless image runs no scripts")
	}
	return nil
}

// completeDistroless completes the unpacked packages pkgs in dir as a distroless
// image of the release codename: each conffile in place, the CA bundle
// made of ca-certificates' certificates and the rest of that package
// (but its copyright) removed, the users, groups, homes, /tmp,
// nsswitch.conf and os-release distroless has, and
// var/lib/dpkg/status.d/NAME (the control file) and NAME.md5sums (the
// package's sums of the files the tree has, as made) for each package.
func completeDistroless(dir, codename string, pkgs []*Installed) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, p := range pkgs {
		for _, c := range p.Conffiles {
			if err := root.Rename(strings.TrimPrefix(c+".dpkg-new", "/"), strings.TrimPrefix(c, "/")); err != nil {
				return fmt.Errorf("package %s: conffile %s: %w", p.Name, c, err)
			}
		}
	}
	if i := slices.IndexFunc(pkgs, func(p *Installed) bool { return p.Name == debian.CACertificates }); i >= 0 {
		if err := caBundle(root, pkgs, i); err != nil {
			return fmt.Errorf("package %s: %w", debian.CACertificates, err)
		}
	}
	type file struct {
		name string
		data string
	}
	files := []file{
		{"etc/passwd", distrolessPasswd},
		{"etc/group", distrolessGroup},
		{"etc/nsswitch.conf", distrolessNsswitch},
		{"usr/lib/os-release", distrolessOSRelease(codename)},
	}
	made := map[string]bool{}
	for _, f := range files {
		if err := writeFile(root, f.name, []byte(f.data), 0o644); err != nil {
			return err
		}
		made[f.name] = true
	}
	dirs := []struct {
		name     string
		mode     fs.FileMode
		uid, gid int
	}{
		{"root", 0o700, 0, 0},
		{"home", 0o755, 0, 0},
		{"home/nonroot", 0o700, NonrootUID, NonrootUID},
		{"tmp", fs.ModeSticky | 0o777, 0, 0},
	}
	for _, d := range dirs {
		if err := root.Mkdir(d.name, d.mode.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := errors.Join(root.Chmod(d.name, d.mode), root.Lchown(d.name, d.uid, d.gid)); err != nil {
			return err
		}
	}
	if err := root.MkdirAll(statusD, 0o755); err != nil {
		return err
	}
	for _, p := range pkgs {
		if err := writeStatusD(root, p, made); err != nil {
			return fmt.Errorf("package %s: %w", p.Name, err)
		}
	}
	return nil
}

// writeFile writes name in root, replacing what is there (a package's
// file, never followed if a symlink).
func writeFile(root *os.Root, name string, data []byte, mode fs.FileMode) error {
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Chmod(mode), f.Close())
}

// caBundleOf is what update-ca-certificates writes to
// /etc/ssl/certs/ca-certificates.crt for the certificates certs, by
// their paths under /usr/share/ca-certificates (as ca-certificates'
// postinst lists them in /etc/ca-certificates.conf, all of them, sorted
// bytewise): each one's content in that order, a newline added to one
// that lacks it at the end.
func caBundleOf(certs map[string][]byte) []byte {
	names := make([]string, 0, len(certs))
	for name := range certs {
		names = append(names, name)
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, name := range names {
		c := certs[name]
		b.Write(c)
		if len(c) > 0 && c[len(c)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// caBundle writes the CA bundle of pkgs[i], ca-certificates, and removes
// its other files but its copyright, and its directories no other
// package has, as distroless's cacerts rule keeps only those two. Its
// Files become what is left.
func caBundle(root *os.Root, pkgs []*Installed, i int) error {
	ca := pkgs[i]
	certs := map[string][]byte{}
	for _, f := range ca.Files {
		name, ok := strings.CutPrefix(f, "/"+caSource+"/")
		if !ok || !strings.HasSuffix(name, ".crt") {
			continue
		}
		fi, err := root.Lstat(f[1:])
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if certs[name], err = root.ReadFile(f[1:]); err != nil {
			return err
		}
	}
	if len(certs) == 0 {
		return fmt.Errorf("no certificates under /%s", caSource)
	}
	if err := writeFile(root, CABundle, caBundleOf(certs), 0o644); err != nil {
		return err
	}
	others := map[string]bool{}
	for j, p := range pkgs {
		if j != i {
			for _, f := range p.Files {
				others[f] = true
			}
		}
	}
	keep := []string{"/usr/share/doc/" + ca.Name + "/copyright", "/" + CABundle}
	var kept []string
	// Deepest first, so that a directory is emptied before it is tried.
	files := slices.Clone(ca.Files)
	slices.Sort(files)
	slices.Reverse(files)
	for _, f := range files {
		if f == "/." || others[f] || slices.ContainsFunc(keep, func(k string) bool { return k == f || strings.HasPrefix(k, f+"/") }) {
			kept = append(kept, f)
			continue
		}
		fi, err := root.Lstat(f[1:])
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := root.Remove(f[1:]); err != nil {
			if fi.IsDir() { // not empty: another package's files are in it
				kept = append(kept, f)
				continue
			}
			return err
		}
	}
	slices.Sort(kept)
	ca.Files = append(kept, "/"+CABundle)
	return nil
}

// writeStatusD records p for scanners as distroless does:
// status.d/NAME, its control file, and status.d/NAME.md5sums, the lines
// of its md5sums for the files the tree has that are the package's
// (made lists those written over).
func writeStatusD(root *os.Root, p *Installed, made map[string]bool) error {
	if err := writeFile(root, statusD+"/"+p.Name, p.Control, 0o644); err != nil {
		return err
	}
	sums := p.Members["md5sums"]
	if sums == nil {
		return nil
	}
	shipped := map[string]bool{}
	for _, f := range p.Files {
		shipped[strings.TrimPrefix(f, "/")] = true
	}
	var b bytes.Buffer
	for line := range bytes.Lines(sums) {
		// "HASH  PATH", the path relative to /.
		_, name, ok := bytes.Cut(bytes.TrimRight(line, "\n"), []byte("  "))
		if !ok {
			return fmt.Errorf("md5sums: malformed line %q", line)
		}
		f := string(name)
		if !shipped[f] || made[f] {
			continue
		}
		if fi, err := root.Lstat(f); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		b.Write(line)
		if !bytes.HasSuffix(line, []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return writeFile(root, statusD+"/"+p.Name+".md5sums", b.Bytes(), 0o644)
}

// droppedDependencies lists the Pre-Depends and Depends of pkgs that no
// package of the tree meets, by name or Provides: those the resolution
// left to the packages only maintainer scripts use
// (debian.ScriptOnlyPackages), "tzdata depends on debconf (>= 0.5) |
// debconf-2.0".
func droppedDependencies(pkgs []*Installed) ([]string, error) {
	paras := make([]*control.Paragraph, len(pkgs))
	present := map[string]bool{}
	for i, p := range pkgs {
		para, err := control.Parse(p.Control)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", p.Name, err)
		}
		paras[i] = para
		present[p.Name] = true
		provides, err := control.ParseRelations(para.Get("Provides"))
		if err != nil {
			return nil, fmt.Errorf("package %s: Provides: %w", p.Name, err)
		}
		for _, rel := range provides.Relations {
			for _, poss := range rel.Possibilities {
				present[poss.Name] = true
			}
		}
	}
	var out []string
	for i, p := range pkgs {
		for _, field := range []string{"Pre-Depends", "Depends"} {
			dep, err := control.ParseRelations(paras[i].Get(field))
			if err != nil {
				return nil, fmt.Errorf("package %s: %s: %w", p.Name, field, err)
			}
			for _, rel := range dep.Relations {
				if !slices.ContainsFunc(rel.Possibilities, func(poss dependency.Possibility) bool { return present[poss.Name] }) {
					out = append(out, p.Name+" "+strings.ToLower(field)+" on "+rel.String())
				}
			}
		}
	}
	return out, nil
}
