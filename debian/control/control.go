// Package control reads deb822 files (deb822(5)): the control file of a
// .deb, dpkg's status, apt's Packages and Release indexes, its .sources
// and preferences files. A file is a sequence of paragraphs separated by
// blank lines; a paragraph is a sequence of fields "Name: value", whose
// value goes on over the lines that follow that start with a space or a
// tab. Field names are matched regardless of case.
package control

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// A Reader reads the paragraphs of a deb822 file one at a time. It reads
// a Packages index of 60,000 paragraphs without copying a field it is not
// asked for.
type Reader struct {
	// Comments makes a line that starts with "#" a comment, as in
	// apt's .sources and preferences files. Without it, such a line is
	// a field whose name starts with "#".
	Comments bool
	// Name labels errors, "NAME:LINE: …"; without it they say "line
	// LINE: …".
	Name string

	r     *bufio.Reader
	line  int // lines read so far
	p     Paragraph
	names map[string]string // field names as written → lower case
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

// newReaderSize returns a Reader of r with a buffer of size bytes, for
// data known to be small.
func newReaderSize(r io.Reader, size int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, size)}
}

// A Paragraph is one paragraph of a deb822 file. A paragraph that Next
// returned is valid until the next call to Next; Clone keeps one longer.
type Paragraph struct {
	Line   int // where its first field is
	buf    []byte
	fields []field
}

// field is where one field's name and value are in a paragraph's buf.
type field struct {
	key            string // the name in lower case (ASCII's)
	k0, k1, v0, v1 int
	line           int
}

// maxNames bounds the field names a Reader remembers.
const maxNames = 512

// Next reads the next paragraph; it returns io.EOF when there is none.
func (r *Reader) Next() (*Paragraph, error) {
	p := &r.p
	p.Line, p.buf, p.fields = 0, p.buf[:0], p.fields[:0]
	for {
		line, err := r.readLine()
		if err != nil && err != io.EOF {
			if r.Name != "" {
				return nil, fmt.Errorf("%s: %w", r.Name, err)
			}
			return nil, err
		}
		if len(line) == 0 && err == io.EOF {
			break
		}
		r.line++
		switch {
		case len(bytes.TrimSpace(line)) == 0:
			if len(p.fields) > 0 {
				return p, nil
			}
		case line[0] == '#' && r.Comments:
		case line[0] == ' ' || line[0] == '\t':
			if len(p.fields) == 0 {
				return nil, r.errorf("continuation line without a field")
			}
			p.buf = append(p.buf, '\n')
			p.buf = append(p.buf, line...)
			p.fields[len(p.fields)-1].v1 = len(p.buf)
		default:
			colon := bytes.IndexByte(line, ':')
			if colon < 0 {
				return nil, r.errorf("%.80q is not a field", line)
			}
			key, ok := r.key(line[:colon])
			if !ok {
				return nil, r.errorf("%.80q is not a field", line)
			}
			if len(p.fields) == 0 {
				p.Line = r.line
			}
			start := len(p.buf)
			p.buf = append(p.buf, line...)
			p.fields = append(p.fields, field{key, start, start + len(key), start + colon + 1, len(p.buf), r.line})
		}
		if err == io.EOF {
			break
		}
	}
	if len(p.fields) > 0 {
		return p, nil
	}
	return nil, io.EOF
}

// ReadAll reads all the paragraphs left.
func (r *Reader) ReadAll() ([]*Paragraph, error) {
	var all []*Paragraph
	for {
		p, err := r.Next()
		if err == io.EOF {
			return all, nil
		}
		if err != nil {
			return nil, err
		}
		all = append(all, p.Clone())
	}
}

// errorf returns an error at the line last read.
func (r *Reader) errorf(format string, args ...any) error {
	if r.Name != "" {
		return fmt.Errorf("%s:%d: %s", r.Name, r.line, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("line %d: %s", r.line, fmt.Sprintf(format, args...))
}

// key returns the field name that name, the text before a colon, holds,
// in lower case, and whether it is one: not empty, and without blanks
// but those that may follow it. It allocates nothing for a name it has
// seen.
func (r *Reader) key(name []byte) (string, bool) {
	if k, ok := r.names[string(name)]; ok {
		return k, true
	}
	trimmed := bytes.TrimRight(name, " \t")
	if len(trimmed) == 0 || bytes.ContainsAny(trimmed, " \t") {
		return "", false
	}
	k := []byte(string(trimmed))
	for i, c := range k {
		if 'A' <= c && c <= 'Z' {
			k[i] = c + 'a' - 'A'
		}
	}
	if r.names == nil {
		r.names = map[string]string{}
	}
	if len(r.names) < maxNames {
		r.names[string(name)] = string(k)
	}
	return string(k), true
}

// readLine returns the next line without its line ending. The result is
// valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	line, err := r.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = r.r.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, err
}

// Parse reads the first paragraph of data, a control file, in which
// "#" starts a comment line. data holding no field is an error.
func Parse(data []byte) (*Paragraph, error) {
	r := newReaderSize(bytes.NewReader(data), min(len(data)+1, 64<<10))
	r.Comments = true
	p, err := r.Next()
	if err == io.EOF {
		return &Paragraph{}, nil
	}
	if err != nil {
		return nil, err
	}
	return p.Clone(), nil
}

// Clone returns a copy of p that stays valid.
func (p *Paragraph) Clone() *Paragraph {
	return &Paragraph{Line: p.Line, buf: bytes.Clone(p.buf), fields: append([]field(nil), p.fields...)}
}

// Len returns the number of fields of p, one given twice counted twice.
func (p *Paragraph) Len() int { return len(p.fields) }

// Key returns the name of field i in lower case, to match it by.
func (p *Paragraph) Key(i int) string { return p.fields[i].key }

// Name returns the name of field i as written.
func (p *Paragraph) Name(i int) string {
	f := p.fields[i]
	return string(p.buf[f.k0:f.k1])
}

// FieldLine returns the line field i starts on.
func (p *Paragraph) FieldLine(i int) int { return p.fields[i].line }

// Value returns the value of field i: its lines without leading and
// trailing blanks, joined by "\n", a continuation line "." standing for
// an empty one. An empty first line is left out ("SHA256:" with its list
// on the lines below).
func (p *Paragraph) Value(i int) string {
	f := p.fields[i]
	v := p.buf[f.v0:f.v1]
	nl := bytes.IndexByte(v, '\n')
	if nl < 0 {
		return string(bytes.TrimSpace(v))
	}
	var b strings.Builder
	b.Grow(len(v))
	first := bytes.TrimSpace(v[:nl])
	b.Write(first)
	for n, line := range bytes.Split(v[nl+1:], []byte("\n")) {
		if n > 0 || len(first) > 0 {
			b.WriteByte('\n')
		}
		if line = bytes.TrimSpace(line); len(line) != 1 || line[0] != '.' {
			b.Write(line)
		}
	}
	return b.String()
}

// Text returns the value of field i as written, as dpkg keeps it: its
// first line without leading and trailing blanks, then its continuation
// lines with their leading blanks and without trailing ones, each after
// a "\n".
func (p *Paragraph) Text(i int) string {
	f := p.fields[i]
	v := p.buf[f.v0:f.v1]
	nl := bytes.IndexByte(v, '\n')
	if nl < 0 {
		return string(bytes.Trim(v, " \t"))
	}
	var b strings.Builder
	b.Grow(len(v))
	b.Write(bytes.Trim(v[:nl], " \t"))
	for line := range bytes.SplitSeq(v[nl+1:], []byte("\n")) {
		b.WriteByte('\n')
		b.Write(bytes.TrimRight(line, " \t"))
	}
	return b.String()
}

// Index returns the place of the first field named name, in any case, or
// -1.
func (p *Paragraph) Index(name string) int {
	for i := range p.fields {
		if strings.EqualFold(p.fields[i].key, name) {
			return i
		}
	}
	return -1
}

// Get returns the Value of the first field named name, in any case, or ""
// for none.
func (p *Paragraph) Get(name string) string {
	if i := p.Index(name); i >= 0 {
		return p.Value(i)
	}
	return ""
}

// Repeated returns the place of the first field whose name an earlier
// field has, or -1.
func (p *Paragraph) Repeated() int {
	for i := range p.fields {
		for j := range i {
			if p.fields[j].key == p.fields[i].key {
				return i
			}
		}
	}
	return -1
}
