package apt

import (
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"pault.ag/go/debian/version"

	"github.com/basebuild/basebuild/debian/control"
)

// NeverPin is the priority of "Pin-Priority: never".
const NeverPin = math.MinInt16

// Preferences are the pins of an apt_preferences(5) file, in the order
// written. The zero value has none: every suite gets apt's default
// priority.
type Preferences struct {
	pins []pin
}

type pinType int

const (
	pinRelease pinType = iota + 1
	pinOrigin
	pinVersion
)

// A pin is one stanza of a preferences file. Stanzas with "Package: *"
// pin index files (apt's "default" pins); the others pin versions of
// the packages named.
type pin struct {
	names    []namePattern // nil: "Package: *"
	typ      pinType
	priority int

	// Pin: version
	version       string
	versionPrefix bool
	// Pin: release (all: "Pin: release *")
	all                                                   bool
	relVersion                                            string
	relVersionPrefix                                      bool
	origin, archive, codename, release, label, comp, arch string
	// Pin: origin
	site string
}

// A namePattern is one word of a Package field: a name, a glob or a
// /regex/, optionally "src:" (the source package's name) and ":ARCH".
type namePattern struct {
	pattern string
	source  bool
	arch    string
}

// ParsePreferences reads an apt_preferences(5) file; name labels errors.
// It understands what apt does: Package with names, globs (*, ?, [...])
// and /regular expressions/, "src:" and ":arch" qualifiers; Pin: release
// (a bare archive or codename, a version, or o=, a=, n=, l=, c=, v=, b=),
// Pin: origin and Pin: version (globs, a trailing * as prefix); and
// Pin-Priority, "never" only for Package: *. Where apt would warn and
// ignore a stanza (an unknown pin type, "version" for Package: *), this is
// an error, so that a mistyped pin does not silently pin nothing.
func ParsePreferences(r io.Reader, name string) (*Preferences, error) {
	paragraphs, err := readParagraphs(r, name)
	if err != nil {
		return nil, err
	}
	prefs := &Preferences{}
	for _, st := range paragraphs {
		// apt reads the first of a field given twice; only
		// Explanation and other fields it ignores may be.
		if err := checkRepeated(st, name, func(key string) bool {
			return key != "package" && key != "pin" && key != "pin-priority"
		}); err != nil {
			return nil, err
		}
		p, err := newPin(st, name)
		if err != nil {
			return nil, err
		}
		prefs.pins = append(prefs.pins, *p)
	}
	return prefs, nil
}

// newPin makes the pin of one stanza of the file name.
func newPin(st *control.Paragraph, name string) (*pin, error) {
	get := func(key string) (string, int, bool) { return lookup(st, key) }
	stanza := st.Line
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	pkgs, pkgLine, ok := get("package")
	if !ok || pkgs == "" {
		return nil, fail(stanza, "stanza without a Package field")
	}
	p := &pin{}
	if pkgs != "*" {
		for _, w := range strings.Fields(pkgs) {
			np := namePattern{pattern: w}
			if s, ok := strings.CutPrefix(np.pattern, "src:"); ok {
				np.pattern, np.source = s, true
			}
			if i := strings.LastIndexByte(np.pattern, ':'); i >= 0 {
				np.pattern, np.arch = np.pattern[:i], np.pattern[i+1:]
			}
			if isRegex(np.pattern) {
				if _, err := regexp.Compile(np.pattern[1 : len(np.pattern)-1]); err != nil {
					return nil, fail(pkgLine, "Package %s: %v", w, err)
				}
			}
			p.names = append(p.names, np)
		}
	}
	spec, pinLine, ok := get("pin")
	if !ok || spec == "" {
		return nil, fail(stanza, "stanza without a Pin field")
	}
	kind, data, _ := strings.Cut(strings.Replace(spec, "\t", " ", 1), " ")
	data = strings.TrimSpace(data)
	switch strings.ToLower(kind) {
	case "release":
		p.typ = pinRelease
		p.parseRelease(data)
	case "origin":
		p.typ = pinOrigin
		p.site = data
		if len(data) >= 2 && data[0] == '"' && data[len(data)-1] == '"' {
			p.site = data[1 : len(data)-1]
		}
	case "version":
		if p.names == nil {
			return nil, fail(pinLine, "Pin: version needs package names, not Package: *")
		}
		p.typ = pinVersion
		p.version, p.versionPrefix = strings.CutSuffix(data, "*")
	default:
		return nil, fail(pinLine, "Pin: %q: want release, origin or version", kind)
	}
	if p.typ != pinVersion && data == "" {
		return nil, fail(pinLine, "Pin: %s needs a value", kind)
	}

	prio, prioLine, ok := get("pin-priority")
	switch {
	case !ok || prio == "":
		return nil, fail(stanza, "stanza without a Pin-Priority field")
	case prio == "never":
		if p.names != nil {
			return nil, fail(prioLine, "Pin-Priority: never is only for Package: *")
		}
		p.priority = NeverPin
	default:
		n, err := strconv.Atoi(prio)
		switch {
		case err != nil:
			return nil, fail(prioLine, "Pin-Priority %q is not a number", prio)
		case n < math.MinInt16 || n > math.MaxInt16:
			return nil, fail(prioLine, "Pin-Priority %d is outside %d to %d", n, math.MinInt16, math.MaxInt16)
		case n == 0:
			return nil, fail(prioLine, "Pin-Priority 0 pins nothing")
		case n == NeverPin:
			n++ // as apt: only the word "never" is never
		}
		p.priority = n
	}
	return p, nil
}

// parseRelease reads the data of "Pin: release" as apt's pkgVersionMatch
// does.
func (p *pin) parseRelease(data string) {
	if data == "*" {
		p.all = true
		return
	}
	if !strings.Contains(data, "=") {
		if data != "" && data[0] >= '0' && data[0] <= '9' {
			p.relVersion, p.relVersionPrefix = strings.CutSuffix(data, "*")
		} else {
			p.release = data
		}
		return
	}
	for _, frag := range strings.Split(data, ",") {
		frag = strings.TrimFunc(frag, unicode.IsSpace)
		if len(frag) < 3 || frag[1] != '=' {
			continue
		}
		v := frag[2:]
		switch unicode.ToLower(rune(frag[0])) {
		case 'v':
			p.relVersion = v
		case 'o':
			p.origin = v
		case 'a':
			p.archive = v
		case 'n':
			p.codename = v
		case 'l':
			p.label = v
		case 'c':
			p.comp = v
		case 'b':
			p.arch = v
		}
	}
	p.relVersion, p.relVersionPrefix = strings.CutSuffix(p.relVersion, "*")
}

// matchesFile reports whether the index file f meets a release or origin
// pin (pkgVersionMatch::FileMatch).
func (p *pin) matchesFile(f *IndexFile) bool {
	if f == nil {
		return false
	}
	switch p.typ {
	case pinOrigin:
		return expressionMatches(p.site, f.Site)
	case pinRelease:
		if p.all {
			return true
		}
		if p.relVersion == "" && p.origin == "" && p.archive == "" && p.label == "" &&
			p.release == "" && p.codename == "" && p.comp == "" && p.arch == "" {
			return false
		}
		switch {
		case p.relVersion != "" && !matchVersion(f.Version, p.relVersion, p.relVersionPrefix) && !expressionMatches(p.relVersion, f.Version),
			p.origin != "" && !expressionMatches(p.origin, f.Origin),
			p.archive != "" && !expressionMatches(p.archive, f.Suite),
			p.codename != "" && !expressionMatches(p.codename, f.Codename),
			p.release != "" && !expressionMatches(p.release, f.Suite) && !expressionMatches(p.release, f.Codename),
			p.label != "" && !expressionMatches(p.label, f.Label),
			p.comp != "" && !expressionMatches(p.comp, f.Component),
			p.arch != "" && !expressionMatches(p.arch, f.Architecture):
			return false
		}
		return true
	}
	return false
}

// matchesVersion reports whether a version pin's data, or a release or
// origin pin's files, match the version ver found in files.
func (p *pin) matchesVersion(ver string, files []*Package) bool {
	if p.typ == pinVersion {
		return matchVersion(ver, p.version, p.versionPrefix) || expressionMatches(p.version, ver)
	}
	for _, f := range files {
		if p.matchesFile(f.Index) {
			return true
		}
	}
	return false
}

// matchesName reports whether the pin names the package of pkg.
func (p *pin) matchesName(pkg *Package, native string) bool {
	for _, np := range p.names {
		if np.arch != "" && np.arch != native && np.arch != "any" && np.arch != pkg.Architecture {
			continue
		}
		name := pkg.Name
		if np.source {
			name = pkg.Source
		}
		if isRegex(np.pattern) || strings.ContainsAny(np.pattern, "*?[") {
			// apt expands a pattern to the names it matches, but never to
			// a name spelled like the pattern itself.
			if np.pattern != name && expressionMatches(np.pattern, name) {
				return true
			}
		} else if np.pattern == name {
			return true
		}
	}
	return false
}

func isRegex(s string) bool { return len(s) >= 2 && s[0] == '/' && s[len(s)-1] == '/' }

// expressionMatches is apt's ExpressionMatches: a /regex/ (extended,
// case-insensitive, unanchored) or a case-insensitive glob.
func expressionMatches(pattern, s string) bool {
	if isRegex(pattern) {
		re, err := regexp.Compile("(?i)" + pattern[1:len(pattern)-1])
		return err == nil && re.MatchString(s)
	}
	ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(s))
	return err == nil && ok
}

// matchVersion is apt's MatchVer: case-insensitive equality, or prefix.
func matchVersion(v, want string, prefix bool) bool {
	if len(v) < len(want) || (!prefix && len(v) != len(want)) {
		return false
	}
	return strings.EqualFold(v[:len(want)], want)
}

// A Policy gives versions apt's priorities under a preferences file and
// picks candidates as apt's pkgPolicy does.
type Policy struct {
	prefs  *Preferences
	native string
	files  map[*IndexFile]int
}

// NewPolicy returns the policy of prefs (nil: no preferences) for the
// native architecture.
func NewPolicy(prefs *Preferences, native string) *Policy {
	if prefs == nil {
		prefs = &Preferences{}
	}
	return &Policy{prefs: prefs, native: native, files: map[*IndexFile]int{}}
}

// statusPriority is the priority of dpkg's status file, which holds the
// installed version.
const statusPriority = 100

// FilePriority is the priority of an index file: 500, or 1 for a
// NotAutomatic suite, 100 for ButAutomaticUpgrades, unless a "Package: *"
// pin matches it (the first one does, but a never pin always wins).
func (pl *Policy) FilePriority(f *IndexFile) int {
	if prio, ok := pl.files[f]; ok {
		return prio
	}
	prio := 500
	switch {
	case f.ButAutomaticUpgrades:
		prio = 100
	case f.NotAutomatic:
		prio = 1
	}
	fixed := false
	for i := range pl.prefs.pins {
		p := &pl.prefs.pins[i]
		if p.names != nil || (fixed && p.priority != NeverPin) || prio == NeverPin || !p.matchesFile(f) {
			continue
		}
		prio, fixed = p.priority, true
	}
	pl.files[f] = prio
	return prio
}

// Priority is the priority of the version ver, found in files (the same
// package in one or more indexes), as apt's GetPriority: the first pin
// naming the package whose data matches the version, unless every file is
// never-pinned; else the highest of its files' priorities, the status
// file's among them if ver is the installed version.
func (pl *Policy) Priority(files []*Package, installed bool) int {
	ver := files[0].Version.String()
	for i := range pl.prefs.pins {
		p := &pl.prefs.pins[i]
		if p.names == nil || !p.matchesName(files[0], pl.native) || !p.matchesVersion(ver, files) {
			continue
		}
		for _, f := range files {
			if f.Index == nil || pl.FilePriority(f.Index) != NeverPin {
				return p.priority
			}
		}
		break
	}
	prio := math.MinInt
	if installed {
		prio = statusPriority
	}
	for _, f := range files {
		switch f.Index {
		case statusFile:
			// The installed version's status priority, above.
		case nil:
			prio = max(prio, 500)
		default:
			prio = max(prio, pl.FilePriority(f.Index))
		}
	}
	if prio == math.MinInt {
		return 0
	}
	return prio
}

// Candidate returns the version apt would install of a package, given its
// versions (each a list of the same package in one or more indexes),
// highest version first, and the installed one (-1: none): the one of
// highest priority, the higher version among equals, never one of
// priority 0 or below, and never one older than the installed version
// unless its priority is 1000 or more. It returns -1 when no version
// qualifies; apt then keeps the installed version, if any.
func (pl *Policy) Candidate(versions [][]*Package, installed int) int {
	cand, candPrio := -1, -1
	for i, files := range versions {
		prio := pl.Priority(files, i == installed)
		if prio == 0 || prio <= candPrio {
			continue
		}
		if installed >= 0 && prio < 1000 && version.Compare(files[0].Version, versions[installed][0].Version) < 0 {
			continue
		}
		cand, candPrio = i, prio
	}
	return cand
}
