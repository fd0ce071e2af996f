package control

import (
	"strings"

	"pault.ag/go/debian/dependency"
)

// A RelationParser parses relationship fields (Depends, …) into the same
// values as dependency.Parse, several times faster: dependency.Parse
// builds names a byte at a time and was most of the time spent on a whole
// Packages index. It handles the forms found in binary indexes
// (alternatives, version relations, :arch qualifiers) and hands anything
// else (substvars, architecture or profile restrictions, errors) to
// dependency.Parse. Its zero value is ready to use; it is not safe for
// concurrent use.
type RelationParser struct {
	archs map[string]dependency.Arch // parsed :qualifiers
}

// ParseRelations parses one relationship field.
func ParseRelations(s string) (dependency.Dependency, error) {
	var d dependency.Dependency
	err := new(RelationParser).Parse(s, &d)
	return d, err
}

// Parse parses the relationship field s into dst.
func (dp *RelationParser) Parse(s string, dst *dependency.Dependency) error {
	if dp.fast(s, dst) {
		return nil
	}
	d, err := dependency.Parse(s)
	if err != nil {
		return err
	}
	*dst = *d
	return nil
}

// fast parses s into dst if it can, following dependency.Parse's grammar
// and its quirks (a version number keeps any spaces before ')').
func (dp *RelationParser) fast(s string, dst *dependency.Dependency) bool {
	for i := range len(s) {
		// dependency.Parse takes NUL for the end, and turns other
		// bytes into runes.
		if s[i] == 0 || s[i] >= 0x80 {
			return false
		}
	}
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	i := 0
	skip := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	// Allocate in one go what dependency.Parse allocates piecemeal: an
	// ArchSet for every possibility, and the possibilities, of which
	// there are at most one more than the separators.
	nrel := 1 + strings.Count(s, ",")
	nposs := nrel + strings.Count(s, "|")
	sets := make([]dependency.ArchSet, nposs)
	possBuf := make([]dependency.Possibility, 0, nposs)
	d := dependency.Dependency{Relations: make([]dependency.Relation, 0, nrel)}
	skip()
	for i < len(s) {
		if s[i] == ',' {
			i++
			skip()
			continue
		}
		// A relation: possibilities separated by '|'.
		first := len(possBuf)
		skip()
		for i < len(s) && s[i] != ',' {
			if s[i] == '|' {
				i++
				skip()
				continue
			}
			skip()
			if i < len(s) && s[i] == '$' {
				return false
			}
			as := &sets[0]
			sets = sets[1:]
			as.Architectures = []dependency.Arch{}
			poss := dependency.Possibility{Architectures: as, StageSets: []dependency.StageSet{}}
			start := i
		name:
			for ; i < len(s); i++ {
				switch c := s[i]; c {
				case ':', ',', '|', ' ', '(':
					break name
				case '[', '<', '\t', '\r', '\n':
					return false
				}
			}
			poss.Name = s[start:i]
			if i < len(s) && s[i] == ':' {
				i++
				start = i
			qual:
				for ; i < len(s); i++ {
					switch s[i] {
					case ',', '|', ' ', '(', '[', '<':
						break qual
					}
				}
				arch, ok := dp.arch(s[start:i])
				if !ok {
					return false
				}
				poss.Arch = &arch
			}
			for i < len(s) && (isSpace(s[i]) || s[i] == '(') {
				skip()
				if i == len(s) || s[i] == ',' || s[i] == '|' {
					break
				}
				if s[i] != '(' || poss.Version != nil {
					return false
				}
				i++
				skip()
				var op string
				switch {
				case strings.HasPrefix(s[i:], "="):
					op = "="
				case strings.HasPrefix(s[i:], ">="), strings.HasPrefix(s[i:], "<="),
					strings.HasPrefix(s[i:], ">>"), strings.HasPrefix(s[i:], "<<"):
					op = s[i : i+2]
				default:
					return false
				}
				i += len(op)
				skip()
				end := strings.IndexByte(s[i:], ')')
				if end < 0 {
					return false
				}
				poss.Version = &dependency.VersionRelation{Number: s[i : i+end], Operator: op}
				i += end + 1
			}
			if i < len(s) && s[i] != ',' && s[i] != '|' {
				return false
			}
			if poss.Name != "" {
				possBuf = append(possBuf, poss)
			}
		}
		// Cap each relation's slice so that appending to one cannot
		// overwrite the next.
		d.Relations = append(d.Relations, dependency.Relation{Possibilities: possBuf[first:len(possBuf):len(possBuf)]})
	}
	*dst = d
	return true
}

// arch parses a :qualifier, remembering the result.
func (dp *RelationParser) arch(name string) (dependency.Arch, bool) {
	if a, ok := dp.archs[name]; ok {
		return a, true
	}
	a, err := dependency.ParseArch(name)
	if err != nil {
		return dependency.Arch{}, false
	}
	if dp.archs == nil {
		dp.archs = make(map[string]dependency.Arch)
	}
	dp.archs[name] = *a
	return *a, true
}

// Source returns the source package and its version that a binary
// package's Source field gives: "name" or "name (version)", the binary's
// own name and version for what it leaves out.
func Source(field, pkg, version string) (source, sourceVersion string) {
	name, v, _ := strings.Cut(strings.TrimSpace(field), " ")
	v = strings.Trim(strings.TrimSpace(v), "()")
	if name == "" {
		name = pkg
	}
	if v == "" {
		v = version
	}
	return name, v
}
