package audit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"pault.ag/go/debian/version"

	"github.com/basebuild/basebuild/debian/changelog"
	"github.com/basebuild/basebuild/plan"
)

// A Review is how one package set moved to another, by source package:
// each source's versions, its binary packages that changed, and the
// changelog entries between its versions with the CVEs they name. It is
// what basebuild lock --update reports, the body of a pull request.
type Review struct {
	OldEpoch time.Time      `json:"oldEpoch"`
	NewEpoch time.Time      `json:"newEpoch"`
	Packages int            `json:"packages"` // in the new set
	Sources  []SourceChange `json:"sources"`  // sorted by name
}

// A SourceChange is one source package whose binary packages changed.
type SourceChange struct {
	Source string `json:"source"`
	// From is the lowest source version of its binary packages that
	// moved, as they were ("" when the source is new); To the highest,
	// as they are ("" when it is gone).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Binaries are the binary packages that were added, removed or
	// changed, by name and architecture.
	Binaries []BinaryChange `json:"binaries"`
	// Changelog holds the entries newer than From up to To, newest
	// first, with a binNMU's own entries.
	Changelog []changelog.Entry `json:"changelog"`
	CVEs      []string          `json:"cves"` // named by Changelog
	// Note says why Changelog is empty or partial, when it is.
	Note string `json:"note,omitempty"`

	// since and until bound the changelog entries: as From and To, or
	// a binNMU's own versions.
	since, until string
}

// A BinaryChange is one binary package that was added (From is ""),
// removed (To is "") or changed.
type BinaryChange struct {
	Name         string `json:"name"`
	Architecture string `json:"architecture"`
	From         string `json:"from,omitempty"`
	To           string `json:"to,omitempty"`
}

// Summary counts what a Review holds.
type Summary struct {
	Sources int `json:"sources"`
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
	CVEs    int `json:"cves"` // distinct, across the sources
}

// NewReview returns how the packages moved from old to new, by source
// package, without changelogs: SetChangelog adds each source's.
func NewReview(old, new *plan.Plan) *Review {
	r := &Review{OldEpoch: old.Epoch.UTC(), NewEpoch: new.Epoch.UTC(), Packages: len(new.Packages), Sources: []SourceChange{}}
	// Each source's binary packages that moved, as they were and as
	// they are: what its versions are read from.
	type source struct {
		*SourceChange
		was, is []plan.Package
	}
	bySource := map[string]*source{}
	get := func(name string) *source {
		if s, ok := bySource[name]; ok {
			return s
		}
		s := &source{SourceChange: &SourceChange{Source: name, Binaries: []BinaryChange{}, Changelog: []changelog.Entry{}, CVEs: []string{}}}
		bySource[name] = s
		return s
	}
	changes := plan.Diff(old, new)
	for _, p := range changes.Added {
		s := get(p.Source)
		s.Binaries = append(s.Binaries, BinaryChange{Name: p.Name, Architecture: p.Architecture, To: p.Version})
		s.is = append(s.is, p)
	}
	for _, p := range changes.Removed {
		s := get(p.Source)
		s.Binaries = append(s.Binaries, BinaryChange{Name: p.Name, Architecture: p.Architecture, From: p.Version})
		s.was = append(s.was, p)
	}
	for _, c := range changes.Changed {
		s := get(c.To.Source)
		s.Binaries = append(s.Binaries, BinaryChange{Name: c.To.Name, Architecture: c.To.Architecture, From: c.From.Version, To: c.To.Version})
		s.was, s.is = append(s.was, c.From), append(s.is, c.To)
	}
	for _, s := range bySource {
		// A source that only gained binaries has its version in old
		// from those it kept; one that only lost some, in new.
		if len(s.was) == 0 {
			s.was = ofSource(old, s.Source)
		}
		if len(s.is) == 0 {
			s.is = ofSource(new, s.Source)
		}
		s.From, s.since = versions(s.was, false)
		s.To, s.until = versions(s.is, true)
		slices.SortFunc(s.Binaries, func(a, b BinaryChange) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Architecture, b.Architecture))
		})
		switch {
		case s.From == "":
			s.Note = "new in the set"
		case s.To == "":
			s.Note = "gone from the set"
		}
		r.Sources = append(r.Sources, *s.SourceChange)
	}
	slices.SortFunc(r.Sources, func(a, b SourceChange) int { return strings.Compare(a.Source, b.Source) })
	return r
}

// ofSource returns the binary packages of source in set.
func ofSource(set *plan.Plan, source string) []plan.Package {
	var pkgs []plan.Package
	for _, p := range set.Packages {
		if p.Source == source {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

// versions returns the lowest source version of pkgs, binary packages of
// one source, or the highest, and the lowest or highest version that
// bounds their changelog: a binNMU's own version ("2.36-9+b1" of source
// version "2.36-9"), whose changelog has an entry of it, else the source
// version. Both are "" when there are no pkgs. The lowest of the old and
// the highest of the new versions show every entry that a binary package
// which moved gained.
func versions(pkgs []plan.Package, highest bool) (src, bound string) {
	better := func(a, b string) bool { return b == "" || newer(a, b) == highest && a != b }
	for _, p := range pkgs {
		b := p.SourceVersion
		if strings.HasPrefix(p.Version, p.SourceVersion+"+b") {
			b = p.Version
		}
		if better(p.SourceVersion, src) {
			src = p.SourceVersion
		}
		if better(b, bound) {
			bound = b
		}
	}
	return src, bound
}

// newer says whether the version a is newer than b; a version that does
// not parse is older than any that does.
func newer(a, b string) bool {
	va, errA := version.Parse(a)
	vb, errB := version.Parse(b)
	switch {
	case errA != nil:
		return false
	case errB != nil:
		return true
	}
	return version.Compare(va, vb) > 0
}

// WantsChangelog says whether the source is in both sets, so that its
// changelog has entries between them to show.
func (s *SourceChange) WantsChangelog() bool { return s.From != "" && s.To != "" }

// SetChangelog sets the entries of the source's changelog, read from a
// binary package of its new version, that lie between its old and new
// versions, and the CVEs they name.
func (s *SourceChange) SetChangelog(entries []changelog.Entry) {
	between, err := changelog.Between(entries, s.since, s.until)
	switch {
	case err != nil:
		s.Note = "changelog: " + err.Error()
	case len(between) == 0 && newer(s.since, s.until):
		s.Note = "downgraded"
	case len(between) == 0:
		s.Note = "no changelog entries between the versions"
	}
	s.Changelog = append([]changelog.Entry{}, between...)
	var text strings.Builder
	for _, e := range between {
		text.WriteString(e.Text + "\n")
	}
	s.CVEs = append([]string{}, changelog.CVEs(text.String())...)
}

// UpToDate says whether nothing moved: the epoch and every package are
// the same.
func (r *Review) UpToDate() bool { return r.OldEpoch.Equal(r.NewEpoch) && len(r.Sources) == 0 }

// Summary counts the sources, the binary packages added, removed and
// changed, and the distinct CVEs the changelogs name.
func (r *Review) Summary() Summary {
	sum := Summary{Sources: len(r.Sources)}
	cves := map[string]bool{}
	for _, s := range r.Sources {
		for _, b := range s.Binaries {
			switch {
			case b.From == "":
				sum.Added++
			case b.To == "":
				sum.Removed++
			default:
				sum.Changed++
			}
		}
		for _, c := range s.CVEs {
			cves[c] = true
		}
	}
	sum.CVEs = len(cves)
	return sum
}

// MarshalJSON writes r with whether it is up to date and its summary,
// and a maintainer's "<" as it is, not as "\u003c".
func (r *Review) MarshalJSON() ([]byte, error) {
	type review Review // without this method
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		*review
		UpToDate bool    `json:"upToDate"`
		Summary  Summary `json:"summary"`
	}{(*review)(r), r.UpToDate(), r.Summary()})
	return b.Bytes(), err
}

// WriteMarkdown writes r as the body of a pull request: the epoch when it
// moved, a section per source package (its versions, its binary packages
// that changed, the CVEs, the changelog entries in a code block), and a
// summary line last. What the archive says (versions, changelogs) is
// quoted as code, so that no markup of a package's reaches the reader.
func (r *Review) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	if !r.OldEpoch.Equal(r.NewEpoch) {
		fmt.Fprintf(&b, "Epoch: %s -> %s\n\n", r.OldEpoch.Format(time.RFC3339), r.NewEpoch.Format(time.RFC3339))
	}
	for _, s := range r.Sources {
		fmt.Fprintf(&b, "### %s\n\n", code(fmt.Sprintf("%s %s -> %s", s.Source, cmp.Or(s.From, "(none)"), cmp.Or(s.To, "(none)"))))
		for _, p := range s.Binaries {
			name := p.Name + ":" + p.Architecture
			switch {
			case p.From == "":
				fmt.Fprintf(&b, "- added %s\n", code(name+" "+p.To))
			case p.To == "":
				fmt.Fprintf(&b, "- removed %s\n", code(name+" "+p.From))
			default:
				fmt.Fprintf(&b, "- %s\n", code(name+" "+p.From+" -> "+p.To))
			}
		}
		b.WriteString("\n")
		if len(s.CVEs) > 0 {
			fmt.Fprintf(&b, "CVEs: %s\n\n", strings.Join(s.CVEs, ", "))
		}
		if s.Note != "" {
			fmt.Fprintf(&b, "(%s)\n\n", s.Note)
		}
		if len(s.Changelog) > 0 {
			var text strings.Builder
			for i, e := range s.Changelog {
				if i > 0 {
					text.WriteString("\n")
				}
				text.WriteString(e.String())
			}
			fence := strings.Repeat("`", max(3, longestRun(text.String(), '`')+1))
			fmt.Fprintf(&b, "%s\n%s%s\n\n", fence, text.String(), fence)
		}
	}
	sum := r.Summary()
	fmt.Fprintf(&b, "%d source package%s: %d binary packages added, %d removed, %d changed; %d CVEs named\n",
		sum.Sources, plural(sum.Sources), sum.Added, sum.Removed, sum.Changed, sum.CVEs)
	_, err := io.WriteString(w, b.String())
	return err
}

// code quotes s as inline code, whatever backticks it holds.
func code(s string) string {
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	longest, run := 0, 0
	for i := range len(s) {
		if s[i] == c {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
