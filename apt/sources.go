package apt

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/basebuild/basebuild/snapshots"
)

// A Source is one entry of apt's sources: the URIs, suites and components
// of a repository of binary packages, the architectures it is used for
// (none: all) and the keyring its InRelease must be signed by.
type Source struct {
	URIs          []string
	Suites        []string
	Components    []string
	Architectures []string

	// SignedBy is the path of a keyring file, or (deb822 only) an
	// ASCII-armored key block.
	SignedBy string
}

// Repositories returns the repository of each URI and suite, in order.
func (s Source) Repositories() []Repository {
	var out []Repository
	for _, u := range s.URIs {
		for _, suite := range s.Suites {
			out = append(out, Repository{URL: u, Suite: suite, Components: s.Components})
		}
	}
	return out
}

// ParseSourceLine parses a one-line sources.list entry,
//
//	deb [signed-by=FILE arch=ARCH,…] URI SUITE COMPONENT…
//
// Only what a base image needs is accepted: "deb" entries of signed
// repositories with components; deb-src, trusted=yes, flat repositories
// (SUITE ending in "/"), entries with no signed-by and options other than
// signed-by and arch are errors.
func ParseSourceLine(line string) (Source, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return Source{}, errors.New("empty")
	}
	typ := f[0]
	f = f[1:]
	opts := map[string]string{}
	if len(f) > 0 && strings.HasPrefix(f[0], "[") {
		// The options run to the first word ending in "]".
		var words []string
		for len(f) > 0 {
			w := f[0]
			f = f[1:]
			end := strings.HasSuffix(w, "]")
			words = append(words, strings.TrimSuffix(strings.TrimPrefix(w, "["), "]"))
			if end {
				break
			}
			if len(f) == 0 {
				return Source{}, errors.New("options: no closing ]")
			}
		}
		for _, w := range words {
			if w == "" {
				continue
			}
			k, v, ok := strings.Cut(w, "=")
			if !ok || k == "" || v == "" {
				return Source{}, fmt.Errorf("option %q: want NAME=VALUE", w)
			}
			opts[strings.ToLower(k)] = v
		}
	}
	src := Source{}
	for k, v := range opts {
		switch k {
		case "signed-by":
			src.SignedBy = v
		case "arch":
			src.Architectures = strings.Split(v, ",")
		case "trusted":
		default:
			return Source{}, fmt.Errorf("option %s: not supported (signed-by= and arch= are)", k)
		}
	}
	if len(f) < 2 {
		return Source{}, errors.New("want TYPE [OPTIONS] URI SUITE COMPONENT…")
	}
	src.URIs = []string{f[0]}
	src.Suites = []string{f[1]}
	src.Components = f[2:]
	return src, src.check(typ, opts["trusted"])
}

// ParseSources parses a deb822 .sources file (sources.list(5)); name
// labels errors. Stanzas with "Enabled: no" are left out. The rules are
// ParseSourceLine's.
func ParseSources(r io.Reader, name string) ([]Source, error) {
	paragraphs, err := readParagraphs(r, name)
	if err != nil {
		return nil, err
	}
	var out []Source
	for _, p := range paragraphs {
		if err := checkRepeated(p, name, nil); err != nil {
			return nil, err
		}
		if strings.EqualFold(p.Get("enabled"), "no") {
			continue
		}
		src := Source{}
		var typ, trusted string
		for i := range p.Len() {
			v := p.Value(i)
			switch p.Key(i) {
			case "types":
				typ = v
			case "uris":
				src.URIs = strings.Fields(v)
			case "suites":
				src.Suites = strings.Fields(v)
			case "components":
				src.Components = strings.Fields(v)
			case "architectures":
				src.Architectures = strings.Fields(v)
			case "signed-by":
				src.SignedBy = v
			case "trusted":
				trusted = v
			case "enabled":
			default:
				return nil, fmt.Errorf("%s:%d: field %s: not supported (Types, URIs, Suites, Components, Architectures, Signed-By and Enabled are)", name, p.FieldLine(i), p.Name(i))
			}
		}
		if err := src.check(typ, trusted); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, p.Line, err)
		}
		out = append(out, src)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no enabled source", name)
	}
	return out, nil
}

// check applies ParseSourceLine's rules to a parsed entry of type typ.
func (s Source) check(typ, trusted string) error {
	switch {
	case typ == "deb-src" || typ == "deb deb-src" || typ == "deb-src deb":
		return fmt.Errorf("type %q: source packages are not installed; want deb", typ)
	case typ != "deb":
		return fmt.Errorf("type %q: want deb", typ)
	case strings.EqualFold(trusted, "yes"):
		return errors.New("trusted=yes: unsigned repositories are refused; give signed-by")
	case len(s.URIs) == 0:
		return errors.New("no URI")
	case len(s.Suites) == 0:
		return errors.New("no suite")
	case s.SignedBy == "":
		return errors.New("no signed-by: every repository must be verified with its own keyring")
	}
	for _, u := range s.URIs {
		if err := snapshots.CheckURL(u); err != nil {
			return err
		}
	}
	for _, suite := range s.Suites {
		if strings.HasSuffix(suite, "/") {
			return fmt.Errorf("suite %q: flat repositories are not supported; want SUITE COMPONENT…", suite)
		}
		if strings.ContainsAny(suite, " \t") || strings.Contains(suite, "..") {
			return fmt.Errorf("suite %q: not a suite name", suite)
		}
	}
	if len(s.Components) == 0 {
		return errors.New("no component")
	}
	for _, c := range s.Components {
		if strings.Contains(c, "..") || strings.HasPrefix(c, "/") {
			return fmt.Errorf("component %q: not a component name", c)
		}
	}
	return nil
}
