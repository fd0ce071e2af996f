package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/plan"
)

// LockFormat is the version of the lockfile format WriteLock writes and
// ReadLock reads.
const LockFormat = 1

// A Lock is a lockfile: the inputs that decide an image, one "KEY VALUE"
// line each as in Inputs, and the plan resolved from them.
type Lock struct {
	Inputs []string
	Plan   *plan.Plan
}

// lockInputs are the lines of s's canonical text a lock records: all
// but basebuild's version (a later basebuild builds the same lock), the
// epoch (the plan's) and the packages (the plan's).
func (s *Spec) lockInputs() []string {
	var lines []string
	for l := range strings.Lines(s.Inputs(&plan.Plan{Arch: s.Arch})) {
		l = strings.TrimSuffix(l, "\n")
		key, _, _ := strings.Cut(l, " ")
		if key != "basebuild" && key != "epoch" {
			lines = append(lines, l)
		}
	}
	return lines
}

// WriteLock writes the lockfile of p, resolved as s says: a header, the
// format version, s's inputs, the epoch, each Release the plan was
// verified from and each package, one line each, so that a version bump
// changes one line.
func (s *Spec) WriteLock(w io.Writer, p *plan.Plan) error {
	var b bytes.Buffer
	b.WriteString("# basebuild lockfile: the exact packages of an image; build it with basebuild --lock FILE.\n")
	fmt.Fprintf(&b, "format %d\n", LockFormat)
	for _, l := range s.lockInputs() {
		fmt.Fprintf(&b, "input %s\n", l)
	}
	fmt.Fprintf(&b, "epoch %s\n", p.Epoch.UTC().Format(time.RFC3339))
	for _, r := range p.Releases {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "release %s\n", line)
	}
	for _, pkg := range p.Packages {
		line, err := json.Marshal(pkg)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "package %s\n", line)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ReadLock reads a lockfile WriteLock wrote. Errors give the line.
func ReadLock(r io.Reader) (*Lock, error) {
	l := &Lock{Plan: &plan.Plan{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n, format, epoch := 0, false, false
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		if !format && key != "format" {
			return nil, fmt.Errorf("line %d: want the format line first", n)
		}
		var err error
		switch key {
		case "format":
			if format || value != fmt.Sprint(LockFormat) {
				return nil, fmt.Errorf("line %d: format %q: this basebuild reads format %d", n, value, LockFormat)
			}
			format = true
		case "input":
			if value == "" {
				err = errors.New("empty input")
			}
			l.Inputs = append(l.Inputs, value)
		case "epoch":
			l.Plan.Epoch, err = time.Parse(time.RFC3339, value)
			epoch = err == nil
		case "release":
			var rel plan.Release
			if err = strictJSON(value, &rel); err == nil {
				l.Plan.Releases = append(l.Plan.Releases, rel)
			}
		case "package":
			var pkg plan.Package
			if err = strictJSON(value, &pkg); err == nil {
				err = checkLocked(pkg, l.Plan.Packages)
				l.Plan.Packages = append(l.Plan.Packages, pkg)
			}
		default:
			err = fmt.Errorf("unknown line %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	switch {
	case !format:
		return nil, errors.New("not a basebuild lockfile: no format line")
	case !epoch:
		return nil, errors.New("no epoch line")
	case len(l.Plan.Packages) == 0:
		return nil, errors.New("no packages")
	}
	for _, in := range l.Inputs {
		if key, value, _ := strings.Cut(in, " "); key == "suite" {
			l.Plan.Suite = value
		} else if key == "arch" {
			l.Plan.Arch = value
		}
	}
	return l, nil
}

// strictJSON decodes one JSON object into v, refusing unknown fields.
func strictJSON(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// checkLocked refuses a package line without what a build needs, or out
// of the name order the plan keeps.
func checkLocked(p plan.Package, before []plan.Package) error {
	switch {
	case p.Name == "" || p.Version == "" || p.Architecture == "":
		return errors.New("package without name, version or architecture")
	case p.URL == "" || p.Size <= 0 || !cache.IsSHA256(p.SHA256):
		return fmt.Errorf("package %s %s: no URL, size or SHA-256", p.Name, p.Version)
	case len(before) > 0 && before[len(before)-1].Name >= p.Name:
		return fmt.Errorf("package %s: out of order or given twice", p.Name)
	}
	return nil
}

// Mismatch returns the first of the lock's inputs that s disagrees with,
// by its key ("include", "apt-conf.1", …), with both values ("" where one
// side has no such line); key is "" when they agree. The keys in moving
// may differ (a newer snapshot, say).
func (l *Lock) Mismatch(s *Spec, moving ...string) (key, locked, given string) {
	mine := map[string]string{}
	var keys []string
	for _, in := range s.lockInputs() {
		k, v, _ := strings.Cut(in, " ")
		mine[k] = v
		keys = append(keys, k)
	}
	theirs := map[string]string{}
	for _, in := range l.Inputs {
		k, v, _ := strings.Cut(in, " ")
		theirs[k] = v
		if _, ok := mine[k]; !ok {
			return k, v, ""
		}
	}
	for _, k := range keys {
		if slices.Contains(moving, k) {
			continue
		}
		if v, ok := theirs[k]; !ok || v != mine[k] {
			return k, v, mine[k]
		}
	}
	return "", "", ""
}

// CheckLocked checks the lock's plan, p, against the archive's signed
// indexes, fetched and verified as a build's are: each package must be
// in them with its version, architecture, size and SHA-256. A package a
// hand edit changed is refused, naming it.
func CheckLocked(ctx context.Context, o *Options, c *apt.Client, p *plan.Plan) error {
	universe, err := readUniverse(ctx, o, c)
	if err != nil {
		return err
	}
	type id struct{ name, version, arch string }
	signed := map[id][]apt.Package{}
	for _, u := range universe {
		k := id{u.Name, u.Version.String(), u.Architecture}
		signed[k] = append(signed[k], u)
	}
	for _, pkg := range p.Packages {
		found := false
		for _, u := range signed[id{pkg.Name, pkg.Version, pkg.Architecture}] {
			if u.SHA256 == pkg.SHA256 && u.Size == pkg.Size {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("package %s %s (%s): not in the archive's signed indexes with that size and SHA-256", pkg.Name, pkg.Version, pkg.Architecture)
		}
	}
	return nil
}
