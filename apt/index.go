package apt

import (
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

	"github.com/basebuild/basebuild/debian/control"
	"github.com/basebuild/basebuild/debian/deb"
	"github.com/basebuild/basebuild/internal/cache"
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
	indexes, err := rel.Indexes(repo, arch)
	if err != nil {
		return nil, err
	}
	var pkgs []Package
	for _, ix := range indexes {
		limit, sized := int64(maxIndex), false
		if fh, ok := rel.Files[ix.base]; ok {
			limit, sized = fh.Size, true
		}
		ps, err := c.index(ctx, repo, rel, ix.Name, ix.FileHash, limit, sized)
		if err != nil {
			return nil, err
		}
		idx := &IndexFile{
			Origin: rel.Origin, Label: rel.Label, Suite: rel.Suite, Codename: rel.Codename, Version: rel.Version,
			Component: ix.Component, Architecture: arch, Site: repo.site(),
			NotAutomatic: rel.NotAutomatic, ButAutomaticUpgrades: rel.ButAutomaticUpgrades,
			Debian: repo.Debian,
		}
		for i := range ps {
			ps[i].ArchiveURL = repo.root()
			ps[i].Suite = repo.Suite
			ps[i].Component = ix.Component
			ps[i].Index = idx
		}
		pkgs = append(pkgs, ps...)
	}
	return pkgs, nil
}

// IndexRef is one Packages index a Release lists, as fetched: Name is its
// path under dists/<suite>/, e.g. "main/binary-amd64/Packages.xz".
type IndexRef struct {
	Name      string
	Component string
	FileHash
	base string // Name without the compression suffix
}

// Indexes returns the Packages indexes of arch that Packages reads from
// rel, the verified Release of repo: one per component, the best
// compressed variant rel lists.
func (rel *Release) Indexes(repo Repository, arch string) ([]IndexRef, error) {
	if rel == nil {
		return nil, fmt.Errorf("suite %q: no Release", repo.Suite)
	}
	if len(rel.Architectures) > 0 && !slices.Contains(rel.Architectures, arch) {
		return nil, fmt.Errorf("suite %q: architecture %q not in Release (%s)", repo.Suite, arch, strings.Join(rel.Architectures, " "))
	}
	var refs []IndexRef
	for _, comp := range repo.components() {
		base := comp + "/binary-" + arch + "/Packages"
		name, want, ok := pickIndex(rel, base)
		if !ok {
			return nil, fmt.Errorf("suite %q: no %s/binary-%s/Packages index in Release", repo.Suite, comp, arch)
		}
		refs = append(refs, IndexRef{Name: name, Component: comp, FileHash: want, base: base})
	}
	return refs, nil
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
	if !cache.IsSHA256(want.SHA256) {
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
		dr, err := deb.Decompress(r, name)
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
			if p, ok := c.Cache.Lookup(want.SHA256, want.Size); ok {
				err = parseFile(p, parse)
			} else if sized {
				// Decompressed and parsed as it downloads; the result
				// counts only once the whole file verifies.
				_, err = c.getVerifiedStream(ctx, u, want, parse, nil)
			} else {
				var p string
				if p, err = c.File(ctx, u, want); err == nil {
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
	cr := control.NewReader(r)
	cr.Comments = true
	var deps control.RelationParser
	// The packages go into chunks of a fixed size, copied once into the
	// result: appending the large structs to one slice copied a whole
	// index's worth each time it grew (30% of the parse).
	var chunks [][]Package
	chunk := make([]Package, 0, packageChunk)
	for {
		p, err := cr.Next()
		if err == io.EOF {
			return slices.Concat(append(chunks, chunk)...), nil
		}
		if err != nil {
			return nil, err
		}
		if len(chunk) == cap(chunk) {
			chunks, chunk = append(chunks, chunk), make([]Package, 0, packageChunk)
		}
		chunk = chunk[:len(chunk)+1]
		if chunk[len(chunk)-1], err = packageOf(p, &deps); err != nil {
			return nil, fmt.Errorf("stanza at line %d: %w", p.Line, err)
		}
	}
}

// packageChunk is how many packages parsePackages collects before it
// starts another chunk.
const packageChunk = 4096

// packageOf decodes a Packages stanza.
func packageOf(p *control.Paragraph, dp *control.RelationParser) (Package, error) {
	var pkg Package
	var ver, src, predeps, deps, provides, recommends, size string
	for i := range p.Len() {
		switch p.Key(i) {
		case "package":
			pkg.Name = p.Value(i)
		case "version":
			ver = p.Value(i)
		case "architecture":
			pkg.Architecture = p.Value(i)
		case "multi-arch":
			pkg.MultiArch = p.Value(i)
		case "priority":
			pkg.Priority = p.Value(i)
		case "essential":
			pkg.Essential = p.Value(i) == "yes"
		case "source":
			src = p.Value(i)
		case "pre-depends":
			predeps = p.Value(i)
		case "depends":
			deps = p.Value(i)
		case "provides":
			provides = p.Value(i)
		case "recommends":
			recommends = p.Value(i)
		case "filename":
			pkg.Filename = p.Value(i)
		case "size":
			size = p.Value(i)
		case "sha256":
			pkg.SHA256 = p.Value(i)
			if !cache.IsSHA256(pkg.SHA256) {
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
	pkg.Source, pkg.SourceVersion = control.Source(src, pkg.Name, ver)
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
		if err := dp.Parse(d.text, d.dst); err != nil {
			return pkg, fmt.Errorf("package %s: %s: %w", pkg.Name, d.field, err)
		}
	}
	return pkg, nil
}
