// Package changelog reads Debian changelogs (deb-changelog(5)), as
// dpkg-parsechangelog does: the entries, the ones between two versions,
// the CVE identifiers they name, and the changelog a binary package's
// .deb carries.
package changelog

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"pault.ag/go/debian/version"
)

// An Entry is one entry of a changelog: its header, its change lines and
// its trailer.
type Entry struct {
	Source        string   `json:"source"`
	Version       string   `json:"version"`
	Distributions []string `json:"distributions"`
	Urgency       string   `json:"urgency,omitempty"`
	// Text is the change lines as written, indentation included, with
	// the blank lines around them left out.
	Text       string    `json:"text"`
	Maintainer string    `json:"maintainer,omitempty"` // "Name <email>"
	Date       time.Time `json:"date,omitzero"`        // zero when the trailer is missing or its date unreadable
}

// String returns e as deb-changelog(5) writes it; without its trailer
// when its date is unknown.
func (e Entry) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) %s;", e.Source, e.Version, strings.Join(e.Distributions, " "))
	if e.Urgency != "" {
		fmt.Fprintf(&b, " urgency=%s", e.Urgency)
	}
	b.WriteString("\n\n")
	// A trailer without its date would not read back as one.
	dated := !e.Date.IsZero()
	if e.Text != "" {
		b.WriteString(e.Text + "\n")
		if dated {
			b.WriteString("\n")
		}
	}
	if dated {
		fmt.Fprintf(&b, " -- %s  %s\n", e.Maintainer, e.Date.Format(time.RFC1123Z))
	}
	return b.String()
}

// The lines of a changelog, as dpkg's Dpkg::Changelog::Entry::Debian
// matches them.
var (
	header  = regexp.MustCompile(`(?i)^(\w[-+0-9a-z.]*) \(([^() \t]+)\)((?:\s+[-+0-9a-z.]+)+);(.*?)\s*$`)
	trailer = regexp.MustCompile(`^ -- (.*) <(.*)>  ?(?:(?:\w+,\s*)?(\d{1,2})\s+(\w+)\s+(\d{4})\s+(\d{1,2}):(\d\d):(\d\d)\s+([-+]\d{4}))\s*$`)
	// dpkg reads the rest of a file from the first line in the
	// changelog format of old verbatim, as no entry.
	oldFormat = regexp.MustCompile(`(?i)^(?:` +
		`\w+\s+\w+\s+\d{1,2} \d{1,2}:\d{1,2}:\d{1,2}\s+[\w\s]*\d{4}\s+.*\s+[<(].*[)>]` +
		`|\w+\s+\w+\s+\d{1,2},?\s*\d{4}\s+.*\s+[<(].*[)>]` +
		`|\w[-+0-9a-z.]* \([^() \t]+\);?` +
		`|[\w.+-]+(?:-| )\S+ Debian \S+` +
		`|Changes from version .* to .*:` +
		`|Changes for [\w.+-]+-[\w.+-]+:?\s*$` +
		`|Old Changelog:\s*$` +
		`|(?:\d+:)?\w[\w.+~-]*:?\s*$)`)
	endOfFile = regexp.MustCompile(`(?i)^(?:(?:;;\s*)?Local variables:|vim:)`)
	ignored   = regexp.MustCompile(`^(?:\$\w+:.*\$|# |/\*.*\*/)`)
	change    = regexp.MustCompile(`^\s{2,}\S`)
	blank     = regexp.MustCompile(`^\s*$`)
)

// Parse returns the entries of the changelog text, newest first as
// written. It never fails: like dpkg-parsechangelog it skips the lines it
// cannot read (a stray line, a badly formatted trailer, change lines
// outside an entry) and stops at editor settings and at the old
// changelog format.
func Parse(text []byte) []Entry {
	var (
		entries []Entry
		e       *Entry
		lines   []string // e's change lines
		blanks  int      // blank lines since the last change line
		done    bool     // e has its trailer
	)
	flush := func() {
		if e != nil {
			e.Text = strings.Join(lines, "\n")
			entries = append(entries, *e)
		}
		e, lines, blanks, done = nil, nil, 0, false
	}
	for line := range strings.Lines(string(text)) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case header.MatchString(line):
			flush()
			m := header.FindStringSubmatch(line)
			e = &Entry{Source: m[1], Version: m[2], Distributions: strings.Fields(m[3]), Urgency: option(m[4], "urgency")}
		case endOfFile.MatchString(line):
			flush()
			return entries
		case ignored.MatchString(line):
		case oldFormat.MatchString(line):
			flush()
			return entries
		case trailer.MatchString(line):
			if e != nil && !done {
				m := trailer.FindStringSubmatch(line)
				e.Maintainer = m[1] + " <" + m[2] + ">"
				e.Date = date(m[3:])
				done = true
			}
		case change.MatchString(line):
			if e != nil && !done {
				for ; blanks > 0 && len(lines) > 0; blanks-- {
					lines = append(lines, "")
				}
				blanks = 0
				lines = append(lines, line)
			}
		case blank.MatchString(line):
			blanks++
		}
		// Anything else (a stray heading, a badly formatted trailer,
		// a line indented by one space) is skipped, as dpkg does after
		// warning.
	}
	flush()
	return entries
}

// option returns the value of the option key in a header's
// "key=value, …" options, lower-cased as dpkg does for urgency.
func option(opts, key string) string {
	for o := range strings.SplitSeq(strings.TrimSpace(opts), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(o), "=")
		if ok && strings.EqualFold(k, key) {
			return strings.ToLower(strings.TrimSpace(v))
		}
	}
	return ""
}

// date reads a trailer's day, month, year, hour, minute, second and zone;
// the zero time when they make no date.
func date(m []string) time.Time {
	text := fmt.Sprintf("%s %s %s %s:%s:%s %s", m[0], m[1], m[2], m[3], m[4], m[5], m[6])
	for _, layout := range []string{"2 Jan 2006 15:04:05 -0700", "2 January 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, text); err == nil {
			return t
		}
	}
	return time.Time{}
}

// Between returns the entries whose versions are newer than old and not
// newer than new, in their order; entries whose version is no Debian
// version are left out. An old or new that is no version is an error.
func Between(entries []Entry, old, new string) ([]Entry, error) {
	from, err := version.Parse(old)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", old, err)
	}
	to, err := version.Parse(new)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", new, err)
	}
	var between []Entry
	for _, e := range entries {
		v, err := version.Parse(e.Version)
		if err == nil && version.Compare(v, from) > 0 && version.Compare(v, to) <= 0 {
			between = append(between, e)
		}
	}
	return between, nil
}

var cve = regexp.MustCompile(`(?i)\bCVE-(\d{4})-(\d{4,})\b`)

// CVEs returns the CVE identifiers text names ("CVE-2024-1234", however
// cased), each once, by year and then number. The number has four digits,
// leading zeros included, or more without any, so the longer is the
// greater.
func CVEs(text string) []string {
	type id struct{ year, number string }
	var ids []id
	for _, m := range cve.FindAllStringSubmatch(text, -1) {
		ids = append(ids, id{m[1], m[2]})
	}
	slices.SortFunc(ids, func(a, b id) int {
		return cmp.Or(strings.Compare(a.year, b.year), cmp.Compare(len(a.number), len(b.number)), strings.Compare(a.number, b.number))
	})
	ids = slices.Compact(ids)
	names := make([]string, len(ids))
	for i, c := range ids {
		names[i] = "CVE-" + c.year + "-" + c.number
	}
	return names
}
