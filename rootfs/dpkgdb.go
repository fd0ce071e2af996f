package rootfs

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// dpkgDir is dpkg's database, relative to the root.
const dpkgDir = "var/lib/dpkg"

// WriteDatabase writes the dpkg database under dir/var/lib/dpkg for pkgs,
// unpacked and not configured, as dpkg --unpack leaves it, so that dpkg
// --configure -a in a chroot can configure them:
//
//   - status: each package's control fields in dpkg's order, with
//     "Status: install ok unpacked" and its conffiles as "newconffile",
//     sorted by name as dpkg sorts it, and Installed.Priority for a
//     Required package;
//   - available: the same stanzas without Status and Conffiles, with
//     Installed.Priority;
//   - info/NAME.list and info/NAME.MEMBER for every control member but
//     control, with its mtime from control.tar as dpkg keeps it, NAME
//     being NAME:ARCH for a Multi-Arch: same package;
//   - triggers/File, unless no package has a file trigger interest, and
//     triggers/TRIGGER with the packages' trigger interests in the
//     order of pkgs (the order dpkg would register them in), and empty
//     triggers/Unincorp and triggers/Lock;
//   - info/format, empty updates/, lock, lock-frontend and diversions;
//     arch only if a package is of a foreign architecture; and cmethopt,
//     as debootstrap writes it.
//
// No package has Triggers-Pending or Triggers-Awaited: dpkg records an
// activation only for an interested package that is at least
// triggers-awaited (trig_record_activation), and parses a pending
// trigger on an unpacked package as an error. Configuring runs each
// postinst, libc-bin's runs ldconfig, and configuring a package
// activates its triggers again for the packages configured by then.
func WriteDatabase(dir, arch string, pkgs []*Installed) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, d := range []string{"info", "updates", "triggers"} {
		if err := root.MkdirAll(dpkgDir+"/"+d, 0o755); err != nil {
			return fmt.Errorf("dpkg database: %w", err)
		}
	}

	entries := make([]dbEntry, len(pkgs))
	seen := map[string]bool{}
	for i, p := range pkgs {
		e, err := newDBEntry(p)
		if err != nil {
			return fmt.Errorf("package %s: %w", p.Name, err)
		}
		if seen[e.id] {
			return fmt.Errorf("package %s: given twice", e.id)
		}
		seen[e.id] = true
		entries[i] = e
		if err := writeInfo(root, e); err != nil {
			return fmt.Errorf("package %s: %w", e.id, err)
		}
	}
	if err := writeTriggers(root, entries); err != nil {
		return err
	}

	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b dbEntry) int {
		return cmp.Or(cmp.Compare(a.pkg.Name, b.pkg.Name), cmp.Compare(a.pkg.Architecture, b.pkg.Architecture))
	})
	var status, available strings.Builder
	for _, e := range sorted {
		fields, indexed := e.fields, e.fields
		if e.pkg.Priority != "" {
			indexed = setField(fields, "Priority", e.pkg.Priority)
		}
		if e.pkg.Required {
			fields = indexed
		}
		// dpkg ends every stanza, the last too, with an empty line.
		status.WriteString(dpkgStanza(fields, "install ok unpacked", e.pkg.Conffiles) + "\n")
		available.WriteString(dpkgStanza(indexed, "", nil) + "\n")
	}

	files := []dbFile{
		{"status", status.String(), 0o644},
		{"available", available.String(), 0o644},
		{"info/format", "1\n", 0o644},
		{"lock", "", 0o640},
		{"lock-frontend", "", 0o640},
		{"diversions", "", 0o644},
		// debootstrap's: dselect's access method.
		{"cmethopt", "apt apt\n", 0o644},
	}
	if foreign := foreignArches(arch, pkgs); len(foreign) > 0 {
		// dpkg's arch file lists the native architecture, then the
		// foreign ones it was told of.
		files = append(files, dbFile{"arch", lines(append([]string{arch}, foreign...)), 0o644})
	}
	for _, f := range files {
		if err := writeDBFile(root, f.name, []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// dbFile is a file of the database, named relative to var/lib/dpkg.
type dbFile struct {
	name, data string
	mode       fs.FileMode
}

// dbEntry is a package as the database names and describes it.
type dbEntry struct {
	pkg    *Installed
	fields []field
	id     string // "name", or "name:arch" for Multi-Arch: same
}

func newDBEntry(p *Installed) (dbEntry, error) {
	fields, err := controlFields(p.Control)
	if err != nil {
		return dbEntry{}, fmt.Errorf("control: %w", err)
	}
	e := dbEntry{pkg: p, fields: fields, id: p.Name}
	if strings.EqualFold(fieldValue(fields, "Multi-Arch"), "same") {
		e.id += ":" + p.Architecture
	}
	return e, nil
}

// infoName is the name of p's files in info/: "name", or "name:arch"
// for Multi-Arch: same.
func infoName(p *Installed) string {
	if strings.EqualFold(controlValue(p.Control, "Multi-Arch"), "same") {
		return p.Name + ":" + p.Architecture
	}
	return p.Name
}

// markUnpacked sets pkgs, configured, back to unpacked in the status file
// under dir, as dpkg --unpack leaves a package it unpacked over itself:
// "Status: install ok unpacked" and the version last configured as
// Config-Version, which dpkg writes after Version (and Revision).
func markUnpacked(dir string, pkgs []*Installed) error {
	if len(pkgs) == 0 {
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	data, err := root.ReadFile(dpkgDir + "/status")
	if err != nil {
		return fmt.Errorf("dpkg database: %w", err)
	}
	todo := map[string]*Installed{}
	for _, p := range pkgs {
		todo[p.Name+" "+p.Architecture] = p
	}
	stanzas := strings.SplitAfter(string(data), "\n\n")
	for i, st := range stanzas {
		ctl := []byte(st)
		p := todo[controlValue(ctl, "Package")+" "+controlValue(ctl, "Architecture")]
		if p == nil {
			continue
		}
		if status := controlValue(ctl, "Status"); status != "install ok installed" {
			return fmt.Errorf("dpkg database: package %s: status %q, want installed", p.Name, status)
		}
		var b strings.Builder
		for line := range strings.Lines(st) {
			name, _, _ := strings.Cut(line, ":")
			switch name {
			case "Status":
				line = "Status: install ok unpacked\n"
			case "Config-Version":
				continue
			}
			b.WriteString(line)
			if name == "Version" && controlValue(ctl, "Revision") == "" || name == "Revision" {
				fmt.Fprintf(&b, "Config-Version: %s\n", p.Version)
			}
		}
		stanzas[i] = b.String()
		delete(todo, p.Name+" "+p.Architecture)
	}
	for _, p := range todo {
		return fmt.Errorf("dpkg database: package %s not in status", p.Name)
	}
	return writeDBFile(root, "status", []byte(strings.Join(stanzas, "")), 0o644)
}

// setField returns fields with the named field, matched as dpkg does
// regardless of case, set to value, or added last.
func setField(fields []field, name, value string) []field {
	fields = slices.Clone(fields)
	for i, f := range fields {
		if canonicalField(f.name) == name {
			fields[i].value = value
			return fields
		}
	}
	return append(fields, field{name, value})
}

// scriptMembers are the control members dpkg runs.
var scriptMembers = map[string]bool{"preinst": true, "postinst": true, "prerm": true, "postrm": true, "config": true}

// writeInfo writes a package's info/ files: its .list and its control
// members but control, as dpkg keeps them.
func writeInfo(root *os.Root, e dbEntry) error {
	list := strings.Join(e.pkg.Files, "\n")
	if list != "" {
		list += "\n"
	}
	if err := writeDBFile(root, "info/"+e.id+".list", []byte(list), 0o644); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(e.pkg.Members)) {
		if name == "" || name == "list" || name == "." || name == ".." || strings.Contains(name, "/") {
			return fmt.Errorf("control member %q: bad name", name)
		}
		mode := fs.FileMode(0o644)
		if scriptMembers[name] {
			mode = 0o755
		}
		file := "info/" + e.id + "." + name
		if err := writeDBFile(root, file, e.pkg.Members[name], mode); err != nil {
			return err
		}
		if mtime, ok := e.pkg.MemberTimes[name]; ok {
			mtime = time.Unix(mtime.Unix(), 0) // whole seconds, as tar keeps them
			if err := root.Chtimes(path.Join(dpkgDir, file), mtime, mtime); err != nil {
				return fmt.Errorf("dpkg database: %w", err)
			}
		}
	}
	return nil
}

// writeTriggers writes the trigger interests of the packages, in their
// order: file triggers to triggers/File as "PATH PACKAGE[/noawait]",
// explicit ones to triggers/NAME as "PACKAGE[/noawait]".
func writeTriggers(root *os.Root, entries []dbEntry) error {
	var file []string
	explicit := map[string][]string{}
	for _, e := range entries {
		interests, err := parseInterests(e.pkg.Members["triggers"])
		if err != nil {
			return fmt.Errorf("package %s: triggers: %w", e.id, err)
		}
		for _, in := range interests {
			who := e.id
			if in.noawait {
				who += "/noawait"
			}
			if strings.HasPrefix(in.name, "/") {
				file = append(file, in.name+" "+who)
			} else {
				explicit[in.name] = append(explicit[in.name], who)
			}
		}
	}
	// dpkg writes File when it registers an interest, and removes it
	// when none is left: never an empty one.
	if len(file) > 0 {
		if err := writeDBFile(root, "triggers/File", []byte(lines(file)), 0o644); err != nil {
			return err
		}
	}
	for name, who := range explicit {
		if err := writeDBFile(root, "triggers/"+name, []byte(lines(who)), 0o644); err != nil {
			return err
		}
	}
	if err := writeDBFile(root, "triggers/Unincorp", nil, 0o644); err != nil {
		return err
	}
	return writeDBFile(root, "triggers/Lock", nil, 0o600)
}

func lines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

type interest struct {
	name    string // trigger name, or a path for a file trigger
	noawait bool
}

// parseInterests returns the interest directives of a triggers control
// member (deb-triggers(5)); activate directives are for configuring.
func parseInterests(b []byte) ([]interest, error) {
	var interests []interest
	for line := range strings.Lines(string(b)) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("bad line %q", strings.TrimSpace(line))
		}
		var noawait bool
		switch f[0] {
		case "interest", "interest-await":
		case "interest-noawait":
			noawait = true
		case "activate", "activate-await", "activate-noawait":
			continue
		default:
			return nil, fmt.Errorf("unknown directive %q", f[0])
		}
		if !strings.HasPrefix(f[1], "/") && !validTriggerName(f[1]) {
			return nil, fmt.Errorf("bad trigger name %q", f[1])
		}
		interests = append(interests, interest{f[1], noawait})
	}
	return interests, nil
}

// validTriggerName reports whether an explicit trigger's name can name
// its file under triggers/.
func validTriggerName(name string) bool {
	switch name {
	case ".", "..", "File", "Unincorp", "Lock":
		return false
	}
	return !strings.ContainsAny(name, "/")
}

func foreignArches(native string, pkgs []*Installed) []string {
	var foreign []string
	for _, p := range pkgs {
		if p.Architecture != native && p.Architecture != "all" && !slices.Contains(foreign, p.Architecture) {
			foreign = append(foreign, p.Architecture)
		}
	}
	slices.Sort(foreign)
	return foreign
}

// writeDBFile writes name under var/lib/dpkg with mode, whatever the
// umask.
func writeDBFile(root *os.Root, name string, data []byte, mode fs.FileMode) error {
	name = path.Join(dpkgDir, name)
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("dpkg database: %w", err)
	}
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(mode), f.Close())
	if err != nil {
		return fmt.Errorf("dpkg database: %s: %w", name, err)
	}
	return nil
}

// dpkgFields is the order in which dpkg writes the fields it knows
// (lib/dpkg/parse.c, fieldinfos); it writes others after them, in the
// order of the control file.
var dpkgFields = []string{
	"Package", "Essential", "Protected", "Status", "Priority", "Section",
	"Installed-Size", "Origin", "Maintainer", "Bugs", "Architecture",
	"Multi-Arch", "Source", "Version", "Revision", "Config-Version",
	"Replaces", "Provides", "Depends", "Pre-Depends", "Recommends",
	"Suggests", "Breaks", "Conflicts", "Enhances", "Conffiles", "Filename",
	"Size", "MD5sum", "MSDOS-Filename", "Description", "Triggers-Pending",
	"Triggers-Awaited",
}

// dpkgNicknames are old names dpkg reads as others.
var dpkgNicknames = map[string]string{
	"recommended": "Recommends", "optional": "Suggests", "class": "Priority",
	"package-revision": "Revision", "package_revision": "Revision",
}

var dependencyFields = map[string]bool{
	"Replaces": true, "Provides": true, "Depends": true, "Pre-Depends": true,
	"Recommends": true, "Suggests": true, "Breaks": true, "Conflicts": true,
	"Enhances": true,
}

// dpkgStanza formats a package's control fields as dpkg writes them to
// its status file, or, with no status, to available. Fields that only
// the database sets (Status, Config-Version, Triggers-*) and the
// available-only file fields are not taken from the control file.
func dpkgStanza(fields []field, status string, conffiles []string) string {
	known := map[string]string{}
	var other []field
	for _, f := range fields {
		name := canonicalField(f.name)
		if name == "" {
			other = append(other, f)
			continue
		}
		known[name] = f.value
	}

	var b strings.Builder
	for _, name := range dpkgFields {
		v := known[name]
		switch name {
		case "Status":
			v = status
		case "Conffiles":
			v = ""
			if status != "" {
				for _, c := range conffiles {
					v += "\n " + c + " newconffile"
				}
			}
		case "Essential", "Protected":
			if !strings.EqualFold(v, "yes") {
				continue
			}
			v = "yes"
		case "Multi-Arch":
			if v = strings.ToLower(v); v == "no" {
				continue
			}
		case "Priority":
			if p := strings.ToLower(v); slices.Contains([]string{"required", "important", "standard", "optional", "extra"}, p) {
				v = p
			}
		case "Revision", "Config-Version", "Filename", "Size", "MD5sum", "MSDOS-Filename", "Triggers-Pending", "Triggers-Awaited":
			continue
		}
		if dependencyFields[name] {
			v = formatDependency(v)
		}
		writeField(&b, name, v)
	}
	for _, f := range other {
		writeField(&b, f.name, f.value)
	}
	return b.String()
}

// canonicalField returns the name dpkg writes a known field under, or ""
// for a field it does not know.
func canonicalField(name string) string {
	if n, ok := dpkgNicknames[strings.ToLower(name)]; ok {
		return n
	}
	for _, k := range dpkgFields {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return ""
}

func writeField(b *strings.Builder, name, value string) {
	if value == "" {
		return
	}
	b.WriteString(name)
	b.WriteString(":")
	if value[0] != '\n' {
		b.WriteString(" ")
	}
	b.WriteString(value)
	b.WriteString("\n")
}

// formatDependency writes a dependency field as dpkg does: "a (>= 1) |
// b, c", with "<" and ">" read as the "<=" and ">=" they used to mean.
func formatDependency(v string) string {
	var groups []string
	for _, g := range strings.Split(v, ",") {
		var alts []string
		for _, a := range strings.Split(g, "|") {
			if a = strings.Join(strings.Fields(a), " "); a != "" {
				alts = append(alts, formatRelation(a))
			}
		}
		if len(alts) > 0 {
			groups = append(groups, strings.Join(alts, " | "))
		}
	}
	return strings.Join(groups, ", ")
}

func formatRelation(a string) string {
	name, rest, ok := strings.Cut(a, "(")
	if !ok {
		return a
	}
	constraint, tail, ok := strings.Cut(rest, ")")
	if !ok {
		return a
	}
	constraint = strings.TrimSpace(constraint)
	op := constraint[:len(constraint)-len(strings.TrimLeft(constraint, "<>="))]
	version := strings.TrimSpace(constraint[len(op):])
	switch op {
	case "<":
		op = "<="
	case ">":
		op = ">="
	}
	s := strings.TrimSpace(name) + " (" + op + " " + version + ")"
	if tail = strings.TrimSpace(tail); tail != "" {
		s += " " + tail
	}
	return s
}
