package apt

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// A stanza is one paragraph of a deb822 configuration file (apt's
// preferences, .sources files), its fields by lower-case name.
type stanza struct {
	line   int // where it starts
	fields map[string]stanzaField
	// repeated holds the line of a field's second appearance.
	repeated map[string]int
}

type stanzaField struct {
	name  string // as written
	value string // continuation lines joined with "\n"; a lone "." is an empty line
	line  int
	cont  bool // has continuation lines
}

// checkRepeated fails for a field given twice, unless allowed says it
// may be.
func (s stanza) checkRepeated(name string, allowed func(key string) bool) error {
	for key, line := range s.repeated {
		if allowed == nil || !allowed(key) {
			return fmt.Errorf("%s:%d: field %s given twice", name, line, s.fields[key].name)
		}
	}
	return nil
}

func (s stanza) get(key string) (string, int, bool) {
	f, ok := s.fields[key]
	return f.value, f.line, ok
}

// repeatedKey stands for a field given again while its lines are read.
const repeatedKey = "\x00repeated"

// readStanzas reads the paragraphs of a deb822 configuration file: "#"
// starts a comment line, blank lines separate paragraphs. name labels
// errors, which give the line.
func readStanzas(r io.Reader, name string) ([]stanza, error) {
	var (
		out    []stanza
		cur    *stanza
		key    string
		lineNo int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			cur, key = nil, ""
			continue
		case line[0] == ' ' || line[0] == '\t':
			if key == repeatedKey {
				continue // the lines of a field given again
			}
			if cur == nil || key == "" {
				return nil, fmt.Errorf("%s:%d: continuation line without a field", name, lineNo)
			}
			f := cur.fields[key]
			l := strings.TrimSpace(line)
			if l == "." {
				l = ""
			}
			if f.value != "" || f.cont {
				f.value += "\n"
			}
			f.value += l
			f.cont = true
			cur.fields[key] = f
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: %q is not a field", name, lineNo, line)
		}
		if cur == nil {
			out = append(out, stanza{line: lineNo, fields: map[string]stanzaField{}})
			cur = &out[len(out)-1]
		}
		key = strings.ToLower(k)
		if _, dup := cur.fields[key]; dup {
			// The first is kept; the caller says whether that is
			// an error (apt's preferences may repeat Explanation).
			if cur.repeated == nil {
				cur.repeated = map[string]int{}
			}
			if _, ok := cur.repeated[key]; !ok {
				cur.repeated[key] = lineNo
			}
			key = repeatedKey
			continue
		}
		cur.fields[key] = stanzaField{name: k, value: strings.TrimSpace(v), line: lineNo}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
