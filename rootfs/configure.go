package rootfs

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/debian/control"
)

// configurePolicyRCD denies every service start while maintainer scripts run.
const configurePolicyRCD = "#!/bin/sh\nexit 101\n"

// Configure runs the maintainer scripts of pkgs, unpacked in dir and
// recorded in its dpkg database, for real in a chroot of dir, as
// debootstrap's second stage does:
//
//   - ldconfig;
//   - for base-passwd, base-files, dpkg, libc6, perl-base and mawk, which
//     debootstrap installs one by one first: the preinst, then
//     dpkg --configure --force-depends PACKAGE;
//   - its dpkg --unpack of all of $required, which unpacks those core
//     packages again over themselves (reinstall), leaving them unpacked
//     for the call below to configure again: dpkg queues the packages
//     to configure in its hash order and defers those whose
//     dependencies are not configured yet, so the core packages in the
//     queue change the order of the postinsts (whether bash's or dash's
//     add-shell comes first in etc/shells);
//   - the other packages' preinsts, in configureOrder;
//   - dpkg --configure --pending --force-configure-any --force-depends,
//     debootstrap's call for its required packages (in minbase, all of
//     them): dpkg runs the postinsts in its dependency order, installs
//     the conffiles and runs the pending triggers.
//
// Beforehand, firstStage does the rest of debootstrap's first stage to the
// tree, and stageConffiles puts the new conffiles where that stage
// extracted them. Preinsts run as dpkg runs them, with the
// package's control members in var/lib/dpkg/tmp.ci and dpkg's
// environment. Output goes to log; settingUp, if not nil, is told each
// package dpkg sets up, with how many of pkgs it has set up, that one
// included. A usr/sbin/policy-rc.d denying service
// starts is in place meanwhile, unless dir already has one.
//
// debootstrap also stubs start-stop-daemon while it configures; minbase
// needs no stub since no maintainer script in it starts a daemon except
// through invoke-rc.d, which policy-rc.d stops. It copies the host's
// resolv.conf and hostname in its first stage; no maintainer script needs
// them, so Configure copies nothing.
func Configure(ctx context.Context, dir string, pkgs []*Installed, log io.Writer, settingUp func(pkg string, done, total int)) (err error) {
	if log == nil {
		log = io.Discard
	}
	if err := firstStage(dir); err != nil {
		return err
	}
	if err := stageConffiles(dir, pkgs); err != nil {
		return err
	}
	c, err := EnterChroot(ctx, dir, ChrootOptions{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	undo, err := denyServiceStarts(c.Dir())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, undo()) }()

	// As debootstrap does first, so that the scripts find every library.
	if err := c.Run(ctx, log, "ldconfig"); err != nil {
		return err
	}
	env := append(slices.Clip(c.Env), "DPKG_ADMINDIR=/var/lib/dpkg", "DPKG_ROOT=", "DPKG_FORCE=security-mac,downgrade")
	if v := dpkgVersion(pkgs); v != "" {
		env = append(env, "DPKG_RUNNING_VERSION="+v)
	}
	set := &setUp{total: len(pkgs), tell: settingUp, seen: map[string]bool{}}
	core, rest := configureOrder(pkgs)
	for _, p := range core {
		if err := runPreinst(ctx, c, log, env, p); err != nil {
			return err
		}
		if err := dpkgConfigure(ctx, c, log, set, "--configure", "--force-depends", p.Name); err != nil {
			return err
		}
	}
	var again []*Installed
	for _, p := range core {
		if p.Required {
			if err := reinstall(ctx, c, log, env, p); err != nil {
				return err
			}
			again = append(again, p)
		}
	}
	if err := markUnpacked(c.Dir(), again); err != nil {
		return err
	}
	for _, p := range rest {
		if err := runPreinst(ctx, c, log, env, p); err != nil {
			return err
		}
	}
	// --force-confold: keep a conffile something else put in place rather
	// than prompt on the closed stdin.
	return dpkgConfigure(ctx, c, log, set, "--force-confold", "--force-configure-any", "--force-depends", "--configure", "--pending")
}

// firstStage does what debootstrap's first stage does after extracting
// the packages (first_stage_install in scripts/debian-common):
//
//   - an etc/fstab saying "# UNCONFIGURED FSTAB FOR BASE SYSTEM", unless
//     there is one;
//   - setup_devices_simple's device nodes, directories and symlinks in
//     dev, which the image leaves out, but which leave dev with the
//     time of the build;
//   - etc/apt/sources.list, which debootstrap writes for its mirror
//     and Finish replaces or, for deb822 sources, removes; that removal
//     leaves etc/apt with the time of the build, as in the images. Here
//     only a comment, unless there is one: the mirror is the build's
//     business;
//   - setup_proc_symlink, as debootstrap does in Docker, where
//     debuerreotype builds the official images: /proc becomes a symlink
//     to the host's, which the second stage's setup_proc replaces by a
//     new directory. Here, the new directory right away.
func firstStage(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	defer root.Close()
	if err := writeFstab(root); err != nil {
		return fmt.Errorf("configure: etc/fstab: %w", err)
	}
	if err := writeSourcesList(root); err != nil {
		return fmt.Errorf("configure: etc/apt/sources.list: %w", err)
	}
	if err := makeDevices(root); err != nil {
		return fmt.Errorf("configure: dev: %w", err)
	}
	if err := root.Remove("proc"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("configure: %w", err)
	}
	if err := root.Mkdir("proc", 0o755); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return root.Chmod("proc", 0o755) // whatever the umask
}

func writeFstab(root *os.Root) error {
	if err := root.MkdirAll("etc", 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile("etc/fstab", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString("# UNCONFIGURED FSTAB FOR BASE SYSTEM\n")
	return errors.Join(err, f.Chmod(0o644), f.Close())
}

// firstSources is the sources.list firstStage writes.
const firstSources = "# debootstrap's sources.list, until the build writes the image's\n"

func writeSourcesList(root *os.Root) error {
	if err := root.MkdirAll("etc/apt", 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile("etc/apt/sources.list", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(firstSources)
	return errors.Join(err, f.Chmod(0o644), f.Close())
}

// makeDevices makes what setup_devices_simple makes in dev, skipping
// what is there. Like debootstrap, it falls back to a symlink for ptmx
// where it may not create the node.
func makeDevices(root *os.Root) error {
	if err := root.MkdirAll("dev", 0o755); err != nil {
		return err
	}
	nodes := append(slices.Clip(devNodes), devNode{"console", 5, 1}, devNode{"ptmx", 5, 2})
	for _, n := range nodes {
		if _, err := root.Lstat("dev/" + n.name); err == nil {
			continue
		}
		err := mknodIn(root, "dev/"+n.name, n.major, n.minor)
		if err != nil && n.name == "ptmx" {
			err = root.Symlink("pts/ptmx", "dev/ptmx")
		}
		if err != nil {
			return err
		}
	}
	for _, d := range []string{"dev/pts", "dev/shm"} {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, l := range devLinks {
		if l[0] == "ptmx" {
			continue
		}
		// ln -sf
		if err := root.Remove("dev/" + l[0]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := root.Symlink(l[1], "dev/"+l[0]); err != nil {
			return err
		}
	}
	return nil
}

// mknodIn makes the character device name, mode 0666, in root.
func mknodIn(root *os.Root, name string, major, minor uint32) error {
	d, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	conn, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = conn.Control(func(fd uintptr) {
		serr = unix.Mknodat(int(fd), path.Base(name), unix.S_IFCHR|0o666, int(unix.Mkdev(major, minor)))
		if serr == nil {
			serr = unix.Fchmodat(int(fd), path.Base(name), 0o666, 0) // whatever the umask
		}
	})
	if err = cmp.Or(err, serr); err != nil {
		return &fs.PathError{Op: "mknod", Path: name, Err: err}
	}
	return nil
}

// stageConffiles puts a copy of each new conffile, which Unpack leaves at
// PATH.dpkg-new, at PATH unless something is there. debootstrap extracts
// every package before it runs a script, so the scripts expect the
// conffiles of packages not configured yet: passwd's postinst runs pwconv,
// which reads login's /etc/login.defs. dpkg --configure then finds PATH
// identical to the new conffile and installs that as usual.
func stageConffiles(dir string, pkgs []*Installed) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	defer root.Close()
	for _, p := range pkgs {
		for _, cf := range p.Conffiles {
			if err := stageConffile(root, strings.TrimPrefix(cf, "/")); err != nil {
				return fmt.Errorf("package %s: conffile %s: %w", p.Name, cf, err)
			}
		}
	}
	return nil
}

func stageConffile(root *os.Root, name string) error {
	fi, err := root.Lstat(name + ".dpkg-new")
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not shipped, as for a conffile marked remove-on-upgrade
	}
	if err != nil {
		return err
	}
	if _, err := root.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
		return err // nil: something is there already
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("no owner for %s.dpkg-new", name)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := root.Readlink(name + ".dpkg-new")
		if err != nil {
			return err
		}
		if err := root.Symlink(target, name); err != nil {
			return err
		}
		return root.Lchown(name, int(st.Uid), int(st.Gid))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s.dpkg-new is not a regular file", name)
	}
	data, err := root.ReadFile(name + ".dpkg-new")
	if err != nil {
		return err
	}
	if err := root.WriteFile(name, data, 0o600); err != nil {
		return err
	}
	if err := root.Chown(name, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := root.Chmod(name, fi.Mode()); err != nil {
		return err
	}
	return root.Chtimes(name, fi.ModTime(), fi.ModTime())
}

// denyServiceStarts installs dir/usr/sbin/policy-rc.d unless there is one,
// and returns what removes it again.
func denyServiceStarts(dir string) (undo func() error, err error) {
	const name = "usr/sbin/policy-rc.d"
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	undo = func() error {
		defer root.Close()
		if err := root.Remove(name); err != nil {
			return fmt.Errorf("configure: %w", err)
		}
		return nil
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if errors.Is(err, fs.ErrExist) {
		root.Close()
		return func() error { return nil }, nil
	}
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("configure: %w", err)
	}
	_, err = f.WriteString(configurePolicyRCD)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err == nil {
		err = root.Chmod(name, 0o755) // whatever the umask
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("configure: %w", err), undo())
	}
	return undo, nil
}

func dpkgVersion(pkgs []*Installed) string {
	for _, p := range pkgs {
		if p.Name == "dpkg" {
			return p.Version
		}
	}
	return ""
}

// tmpCI is where dpkg extracts a package's control members to run its
// preinst; debconf's frontend finds the package's name and templates there.
const tmpCI = "var/lib/dpkg/tmp.ci"

// runPreinst runs p's "preinst install" as dpkg does before unpacking p.
func runPreinst(ctx context.Context, c *Chroot, log io.Writer, env []string, p *Installed) error {
	return runScript(ctx, c, log, env, p, "preinst", "install")
}

// reinstall runs the scripts dpkg --unpack runs to unpack p, installed,
// over itself, as debootstrap's unpack of all of $required does to the
// core packages it installed before: the installed prerm and postrm
// ("upgrade VERSION") around the new preinst ("upgrade VERSION
// VERSION"). The files unpacked would be the same; markUnpacked records
// the state dpkg leaves p in.
func reinstall(ctx context.Context, c *Chroot, log io.Writer, env []string, p *Installed) error {
	for _, s := range []struct{ script, args string }{
		{"prerm", "upgrade " + p.Version},
		{"preinst", "upgrade " + p.Version + " " + p.Version},
		{"postrm", "upgrade " + p.Version},
	} {
		if err := runScript(ctx, c, log, env, p, s.script, strings.Fields(s.args)...); err != nil {
			return err
		}
	}
	return nil
}

// runScript runs p's maintainer script with args as dpkg does, with its
// environment: a preinst from tmp.ci, where dpkg extracts the package's
// control members, the others from info/, where it keeps them.
func runScript(ctx context.Context, c *Chroot, log io.Writer, env []string, p *Installed, script string, args ...string) (err error) {
	if _, ok := p.Members[script]; !ok {
		return nil
	}
	name := "/" + dpkgDir + "/info/" + infoName(p) + "." + script
	if script == "preinst" {
		root, err := os.OpenRoot(c.Dir())
		if err != nil {
			return fmt.Errorf("configure: %w", err)
		}
		defer root.Close()
		if err := writeTmpCI(root, p); err != nil {
			return fmt.Errorf("package %s: %w", p.Name, err)
		}
		defer func() {
			if rmErr := root.RemoveAll(tmpCI); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("configure: %w", rmErr))
			}
		}()
		name = "/" + tmpCI + "/preinst"
	}

	env = append(slices.Clip(env),
		"DPKG_MAINTSCRIPT_PACKAGE="+p.Name,
		"DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1",
		"DPKG_MAINTSCRIPT_ARCH="+p.Architecture,
		"DPKG_MAINTSCRIPT_NAME="+script,
		"DPKG_MAINTSCRIPT_DEBUG=0",
	)
	what := script + " " + strings.Join(args, " ")
	fmt.Fprintf(log, "Running %s of %s (%s) ...\n", what, p.Name, p.Version)
	out := &lastLine{w: log}
	if err := c.run(ctx, out, env, name, args...); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return scriptError(p.Name, what, exitStatus(err), out.last())
	}
	return nil
}

// writeTmpCI writes p's control file and control members to a fresh tmp.ci.
func writeTmpCI(root *os.Root, p *Installed) error {
	if err := root.RemoveAll(tmpCI); err != nil {
		return err
	}
	if err := root.Mkdir(tmpCI, 0o755); err != nil {
		return err
	}
	members := map[string][]byte{"control": p.Control}
	maps.Copy(members, p.Members)
	for name, data := range members {
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			return fmt.Errorf("bad control member name %q", name)
		}
		perm := os.FileMode(0o644)
		switch name {
		case "preinst", "postinst", "prerm", "postrm", "config":
			perm = 0o755
		}
		if err := root.WriteFile(tmpCI+"/"+name, data, perm); err != nil {
			return err
		}
		if err := root.Chmod(tmpCI+"/"+name, perm); err != nil { // whatever the umask
			return err
		}
	}
	return nil
}

func dpkgConfigure(ctx context.Context, c *Chroot, log io.Writer, set *setUp, args ...string) error {
	out := &dpkgOutput{setUp: set}
	out.lastLine = lastLine{w: log, onLine: out.scan}
	err := c.Run(ctx, out, "dpkg", args...)
	out.flush()
	if err == nil || ctx.Err() != nil {
		return err
	}
	if len(out.failures) > 0 {
		return errors.Join(out.failures...)
	}
	if line := out.last(); line != "" {
		return fmt.Errorf("%w: %s", err, line)
	}
	return err
}

// scriptError names the package, the script, how it ended and the last
// thing it said.
func scriptError(pkg, script, status, last string) error {
	if last == "" {
		return fmt.Errorf("package %s: %s: %s", pkg, script, status)
	}
	return fmt.Errorf("package %s: %s: %s: %s", pkg, script, status, last)
}

func exitStatus(err error) string {
	var exit interface{ ExitCode() int }
	if errors.As(err, &exit) {
		if code := exit.ExitCode(); code >= 0 {
			return fmt.Sprintf("exit status %d", code)
		}
	}
	return err.Error()
}

// lastLine passes output through to w and remembers its last non-empty
// line; onLine, if set, sees every line.
type lastLine struct {
	w       io.Writer
	onLine  func(string)
	partial []byte
	line    string
}

func (l *lastLine) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.add(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return n, err
}

func (l *lastLine) add(line string) {
	line = strings.TrimRight(line, "\r")
	if l.onLine != nil {
		l.onLine(line)
	}
	if strings.TrimSpace(line) != "" {
		l.line = line
	}
}

func (l *lastLine) flush() {
	if len(l.partial) > 0 {
		l.add(string(l.partial))
		l.partial = nil
	}
}

func (l *lastLine) last() string {
	l.flush()
	return l.line
}

var (
	// dpkg: error processing package NAME (--configure):
	dpkgErrorRE = regexp.MustCompile(`^dpkg: error processing package (\S+) \(`)
	//  installed NAME package post-installation script subprocess returned error exit status 1
	dpkgScriptRE = regexp.MustCompile(`^ (?:\S+ )?\S+ package (pre-installation|post-installation|pre-removal|post-removal) script subprocess (?:returned error |was )?(.+)$`)
	// Lines dpkg prints itself before running a script.
	dpkgProgressRE = regexp.MustCompile(`^(Setting up|Processing triggers for) `)
	// dpkgSettingUpRE takes the package of dpkg's "Setting up" line.
	dpkgSettingUpRE = regexp.MustCompile(`^Setting up (\S+) \(`)
)

var scriptNames = map[string]string{
	"pre-installation":  "preinst",
	"post-installation": "postinst",
	"pre-removal":       "prerm",
	"post-removal":      "postrm",
}

// dpkgOutput passes dpkg's output through and turns each "error processing
// package" report into an error naming the package, the script, its exit
// status and the script's last line of output before it.
type dpkgOutput struct {
	lastLine
	scriptLast string // the last line a script printed
	pkg        string // the package of a report whose reason comes next
	pkgLast    string
	failures   []error
	setUp      *setUp
}

// setUp counts the packages dpkg says it sets up, each once: the core
// packages are set up twice (see Configure).
type setUp struct {
	total int
	tell  func(pkg string, done, total int)
	seen  map[string]bool
}

func (s *setUp) add(pkg string) {
	if s == nil || s.tell == nil {
		return
	}
	pkg, _, _ = strings.Cut(pkg, ":") // libc6:amd64
	s.seen[pkg] = true
	s.tell(pkg, len(s.seen), s.total)
}

func (d *dpkgOutput) flush() {
	d.lastLine.flush()
	if d.pkg != "" {
		d.failures = append(d.failures, scriptError(d.pkg, "dpkg --configure", "failed", d.pkgLast))
		d.pkg = ""
	}
}

func (d *dpkgOutput) scan(line string) {
	if d.pkg != "" {
		pkg, last := d.pkg, d.pkgLast
		d.pkg = ""
		if m := dpkgScriptRE.FindStringSubmatch(line); m != nil {
			d.failures = append(d.failures, scriptError(pkg, scriptNames[m[1]], m[2], last))
		} else {
			d.failures = append(d.failures, scriptError(pkg, "dpkg --configure", strings.TrimSpace(line), last))
		}
		return
	}
	if m := dpkgErrorRE.FindStringSubmatch(line); m != nil {
		d.pkg, d.pkgLast = m[1], d.scriptLast
		return
	}
	if m := dpkgSettingUpRE.FindStringSubmatch(line); m != nil {
		d.setUp.add(m[1])
	}
	switch {
	case dpkgProgressRE.MatchString(line):
		d.scriptLast = ""
	case strings.TrimSpace(line) != "":
		d.scriptLast = line
	}
}

// corePackages are the packages debootstrap installs one by one before
// the others ($LIBC being libc6, libc6.1, libc0.1 or libc0.3).
var corePackages = []string{"base-passwd", "base-files", "dpkg", "libc6", "libc6.1", "libc0.1", "libc0.3", "perl-base", "mawk"}

// configureOrder splits pkgs into the core packages, in debootstrap's
// order, and the rest, each after what it Pre-Depends and Depends on
// (Provides included), ties broken by name; a dependency cycle is broken
// where the walk closes it.
func configureOrder(pkgs []*Installed) (core, rest []*Installed) {
	byName := map[string]*Installed{}
	providers := map[string][]string{}
	for _, p := range pkgs {
		byName[p.Name] = p
	}
	for _, p := range pkgs {
		for _, v := range relationNames(p, "Provides") {
			providers[v] = append(providers[v], p.Name)
		}
	}
	names := slices.Sorted(maps.Keys(byName))
	seen := map[string]bool{}
	for _, name := range corePackages {
		if p := byName[name]; p != nil {
			core = append(core, p)
			seen[name] = true
		}
	}
	var visit func(name string)
	visit = func(name string) {
		p := byName[name]
		if p == nil || seen[name] {
			return
		}
		seen[name] = true
		for _, d := range dependencies(p, byName, providers) {
			visit(d)
		}
		rest = append(rest, p)
	}
	for _, name := range names {
		visit(name)
	}
	return core, rest
}

// dependencies lists, sorted, the packages of the set that p Pre-Depends
// or Depends on, through Provides too.
func dependencies(p *Installed, byName map[string]*Installed, providers map[string][]string) []string {
	var deps []string
	for _, field := range []string{"Pre-Depends", "Depends"} {
		for _, name := range relationNames(p, field) {
			if byName[name] != nil {
				deps = append(deps, name)
			}
			deps = append(deps, providers[name]...)
		}
	}
	slices.Sort(deps)
	return slices.Compact(deps)
}

// relationNames lists the package names a relationship field of p's
// control file mentions, alternatives included.
func relationNames(p *Installed, field string) []string {
	dep, err := control.ParseRelations(controlValue(p.Control, field))
	if err != nil {
		return nil
	}
	var names []string
	for _, poss := range dep.GetAllPossibilities() {
		names = append(names, poss.Name)
	}
	return names
}

// controlValue returns a field of a control file (its first paragraph),
// its continuation lines joined by spaces, or "" for none.
func controlValue(ctl []byte, field string) string {
	p, err := control.Parse(ctl)
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(p.Get(field), "\n", " ")
}
