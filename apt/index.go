package apt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// Packages fetches the suite's Packages index for arch in each of the
// repository's components, checks each against rel (size and SHA-256),
// and returns its stanzas with ArchiveURL, Suite and Component filled in.
// An index is decompressed as it downloads, but never beyond the size rel
// gives the uncompressed Packages, and what was parsed is used only once
// the whole file verifies. If rel gives no uncompressed size, the file is
// verified whole before it is decompressed (up to maxIndex), so that only
// the repository's own signed index, not a man in the middle's, is ever
// inflated. rel must come from c.Release for repo.
//
// The index is Packages.xz if the Release lists it, else Packages.gz, else
// Packages. Indexes are cached by content, so one already fetched (a
// snapshot's, or an unchanged one) is not fetched again.
func (c *Client) Packages(ctx context.Context, repo Repository, rel *Release, arch string) ([]Package, error) {
	if rel == nil {
		return nil, fmt.Errorf("suite %q: no Release", repo.Suite)
	}
	if len(rel.Architectures) > 0 && !slices.Contains(rel.Architectures, arch) {
		return nil, fmt.Errorf("suite %q: architecture %q not in Release (%s)", repo.Suite, arch, strings.Join(rel.Architectures, " "))
	}
	var pkgs []Package
	for _, comp := range repo.components() {
		base := comp + "/binary-" + arch + "/Packages"
		name, want, ok := pickIndex(rel, base)
		if !ok {
			return nil, fmt.Errorf("suite %q: no %s/binary-%s/Packages index in Release", repo.Suite, comp, arch)
		}
		limit, sized := int64(maxIndex), false
		if fh, ok := rel.Files[base]; ok {
			limit, sized = fh.Size, true
		}
		ps, err := c.index(ctx, repo, rel, name, want, limit, sized)
		if err != nil {
			return nil, err
		}
		idx := &IndexFile{
			Origin: rel.Origin, Label: rel.Label, Suite: rel.Suite, Codename: rel.Codename, Version: rel.Version,
			Component: comp, Architecture: arch, Site: repo.site(),
			NotAutomatic: rel.NotAutomatic, ButAutomaticUpgrades: rel.ButAutomaticUpgrades,
			Debian: repo.Debian,
		}
		for i := range ps {
			ps[i].ArchiveURL = repo.root()
			ps[i].Suite = repo.Suite
			ps[i].Component = comp
			ps[i].Index = idx
		}
		pkgs = append(pkgs, ps...)
	}
	return pkgs, nil
}

// pickIndex chooses the best compressed variant of the index base that rel
// lists.
func pickIndex(rel *Release, base string) (string, FileHash, bool) {
	for _, ext := range []string{".xz", ".gz", ""} {
		if fh, ok := rel.Files[base+ext]; ok {
			return base + ext, fh, true
		}
	}
	return "", FileHash{}, false
}

// maxIndex bounds an uncompressed Packages index whose size the Release
// does not give; sid's main/binary-amd64 is under 100 MB.
const maxIndex = 1 << 30

// index fetches, verifies, decompresses and parses one Packages index,
// name being its path under dists/<suite>/. It stops decompressing past
// limit bytes: a compression bomb is refused, not inflated. Unless sized
// (limit is the uncompressed size the Release gives), the file is verified
// before it is decompressed.
func (c *Client) index(ctx context.Context, repo Repository, rel *Release, name string, want FileHash, limit int64, sized bool) ([]Package, error) {
	url := repo.root() + "/dists/" + repo.Suite + "/" + name
	wrap := func(err error) error {
		return fmt.Errorf("suite %q: index %s (%s): %w", repo.Suite, name, url, err)
	}
	if !isLowerSHA256(want.SHA256) {
		return nil, wrap(fmt.Errorf("bad sha256 %q in Release", want.SHA256))
	}
	// With Acquire-By-Hash the file is also at a name that never changes
	// content, so a mirror update between fetching InRelease and the
	// index cannot give a mismatch. Fall back to the plain name without it.
	urls := []string{url}
	if rel.AcquireByHash {
		dir := name[:strings.LastIndexByte(name, '/')+1]
		urls = []string{repo.root() + "/dists/" + repo.Suite + "/" + dir + "by-hash/SHA256/" + want.SHA256, url}
	}

	var pkgs []Package
	parse := func(r io.Reader) error {
		dr, err := Decompress(r, name)
		if err != nil {
			return err
		}
		defer dr.Close()
		lr := &io.LimitedReader{R: dr, N: limit + 1}
		pkgs, err = parsePackages(lr)
		if lr.N == 0 {
			pkgs = nil
			return fmt.Errorf("decompresses to more than %d bytes", limit)
		}
		return err
	}
	var err error
	for _, u := range urls {
		switch {
		case c.Cache == nil:
			var data []byte
			if data, err = c.getVerifiedBytes(ctx, u, want); err == nil {
				err = parse(bytes.NewReader(data))
			}
		default:
			if p, ok := c.Cache.lookup(want); ok {
				err = parseFile(p, parse)
			} else if sized {
				// Decompressed and parsed as it downloads; the result
				// counts only once the whole file verifies.
				_, err = c.getVerifiedStream(ctx, u, want, parse)
			} else {
				var p string
				if p, err = c.getVerified(ctx, u, want); err == nil {
					err = parseFile(p, parse)
				}
			}
		}
		if !errors.Is(err, ErrNotFound) {
			break
		}
		if u != url {
			c.logf("suite %q: %s: %v; trying %s", repo.Suite, u, err, url)
		}
	}
	if err != nil {
		return nil, wrap(err)
	}
	return pkgs, nil
}

// parseFile hands the file at p to parse.
func parseFile(p string, parse func(io.Reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return parse(f)
}

// parsePackages parses a Packages index.
func parsePackages(r io.Reader) ([]Package, error) {
	p := newParagraphReader(r)
	var deps depParser
	var pkgs []Package
	for {
		err := p.next()
		if err == io.EOF {
			return pkgs, nil
		}
		if err != nil {
			return nil, err
		}
		pkg, err := p.pkg(&deps)
		if err != nil {
			return nil, fmt.Errorf("stanza ending at line %d: %w", p.line, err)
		}
		pkgs = append(pkgs, pkg)
	}
}

// pkg decodes the current paragraph as a Packages stanza.
func (p *paragraphReader) pkg(dp *depParser) (Package, error) {
	var pkg Package
	var ver, src, predeps, deps, provides, recommends, size string
	for i := range p.fields {
		switch string(p.key(i)) {
		case "Package":
			pkg.Name = p.value(i)
		case "Version":
			ver = p.value(i)
		case "Architecture":
			pkg.Architecture = p.value(i)
		case "Multi-Arch":
			pkg.MultiArch = p.value(i)
		case "Priority":
			pkg.Priority = p.value(i)
		case "Essential":
			pkg.Essential = p.value(i) == "yes"
		case "Source":
			src = p.value(i)
		case "Pre-Depends":
			predeps = p.value(i)
		case "Depends":
			deps = p.value(i)
		case "Provides":
			provides = p.value(i)
		case "Recommends":
			recommends = p.value(i)
		case "Filename":
			pkg.Filename = p.value(i)
		case "Size":
			size = p.value(i)
		case "SHA256":
			pkg.SHA256 = p.value(i)
			if !isLowerSHA256(pkg.SHA256) {
				pkg.SHA256 = strings.ToLower(pkg.SHA256)
			}
		}
	}
	if pkg.Name == "" {
		return pkg, errors.New("no Package field")
	}
	var err error
	if pkg.Version, err = version.Parse(ver); err != nil {
		return pkg, fmt.Errorf("package %s: Version: %w", pkg.Name, err)
	}
	if size != "" {
		if pkg.Size, err = strconv.ParseInt(size, 10, 64); err != nil {
			return pkg, fmt.Errorf("package %s: Size: %w", pkg.Name, err)
		}
	}
	// Source is "name" or "name (version)"; absent means the binary's own.
	pkg.Source, pkg.SourceVersion = pkg.Name, ver
	if src != "" {
		name, sver, ok := strings.Cut(src, " ")
		pkg.Source = name
		if ok {
			pkg.SourceVersion = strings.Trim(strings.TrimSpace(sver), "()")
		}
	}
	for _, d := range []struct {
		field string
		text  string
		dst   *dependency.Dependency
	}{
		{"Pre-Depends", predeps, &pkg.PreDepends},
		{"Depends", deps, &pkg.Depends},
		{"Provides", provides, &pkg.Provides},
		{"Recommends", recommends, &pkg.Recommends},
	} {
		if d.text == "" {
			continue
		}
		if err := dp.parse(d.text, d.dst); err != nil {
			return pkg, fmt.Errorf("package %s: %s: %w", pkg.Name, d.field, err)
		}
	}
	return pkg, nil
}

// paragraphReader reads deb822 paragraphs (Release files, Packages
// indexes). It keeps each paragraph's raw bytes and the offsets of its
// fields, so a field costs nothing unless asked for: Packages stanzas are
// mostly Description, which is never needed.
type paragraphReader struct {
	r      *bufio.Reader
	line   int // lines read so far
	buf    []byte
	fields []fieldPos
}

type fieldPos struct{ k0, k1, v0, v1 int }

func newParagraphReader(r io.Reader) *paragraphReader {
	return &paragraphReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next reads the next paragraph; it returns io.EOF when there is none.
func (p *paragraphReader) next() error {
	p.buf, p.fields = p.buf[:0], p.fields[:0]
	for {
		line, err := p.readLine()
		if err != nil && err != io.EOF {
			return err
		}
		if len(line) == 0 && err == io.EOF {
			if len(p.fields) > 0 {
				return nil
			}
			return io.EOF
		}
		p.line++
		switch {
		case len(bytes.TrimSpace(line)) == 0:
			if len(p.fields) > 0 {
				return nil
			}
		case line[0] == '#':
			// A comment.
		case line[0] == ' ' || line[0] == '\t':
			if len(p.fields) == 0 {
				return fmt.Errorf("line %d: continuation line without a field", p.line)
			}
			p.buf = append(p.buf, '\n')
			p.buf = append(p.buf, line...)
			p.fields[len(p.fields)-1].v1 = len(p.buf)
		default:
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 {
				return fmt.Errorf("line %d: not a field: %.40q", p.line, line)
			}
			start := len(p.buf)
			p.buf = append(p.buf, line...)
			p.fields = append(p.fields, fieldPos{start, start + colon, start + colon + 1, len(p.buf)})
		}
		if err == io.EOF {
			if len(p.fields) > 0 {
				return nil
			}
			return io.EOF
		}
	}
}

// readLine returns the next line without its line ending. The result is
// valid until the next call.
func (p *paragraphReader) readLine() ([]byte, error) {
	line, err := p.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = p.r.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, err
}

func (p *paragraphReader) key(i int) []byte {
	f := p.fields[i]
	return bytes.TrimSpace(p.buf[f.k0:f.k1])
}

// value returns field i's value, its lines trimmed and joined by "\n".
func (p *paragraphReader) value(i int) string {
	f := p.fields[i]
	v := p.buf[f.v0:f.v1]
	if bytes.IndexByte(v, '\n') < 0 {
		return string(bytes.TrimSpace(v))
	}
	var b strings.Builder
	for n, line := range bytes.Split(v, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if n == 0 && len(line) == 0 {
			continue // "SHA256:" with the list on the lines below
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.Write(line)
	}
	return b.String()
}

// get returns the value of the field named key, or "".
func (p *paragraphReader) get(key string) string {
	for i := range p.fields {
		if string(p.key(i)) == key {
			return p.value(i)
		}
	}
	return ""
}

// depParser parses relationship fields (Depends, …) into the same values
// as dependency.Parse, several times faster: dependency.Parse builds names
// a byte at a time and was most of the time spent on a whole index. It
// handles the forms found in binary indexes (alternatives, version
// relations, :arch qualifiers) and hands anything else (substvars,
// architecture or profile restrictions, errors) to dependency.Parse.
type depParser struct {
	archs map[string]dependency.Arch // parsed :qualifiers
}

func (dp *depParser) parse(s string, dst *dependency.Dependency) error {
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
func (dp *depParser) fast(s string, dst *dependency.Dependency) bool {
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
func (dp *depParser) arch(name string) (dependency.Arch, bool) {
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
