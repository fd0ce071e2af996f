package control

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

func readAll(t *testing.T, text string, comments bool) []*Paragraph {
	t.Helper()
	r := NewReader(strings.NewReader(text))
	r.Comments = comments
	ps, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestReader(t *testing.T) {
	text := "# a comment\r\n" +
		"Package: a\r\n" +
		"Description: short\n" +
		" long line one\n" +
		" .\n" +
		"   indented  \n" +
		"SHA256:\n" +
		" aa 1 x\n" +
		" bb 2 y\n" +
		"pre-DEPENDS : b\n" +
		"\n \t\n\n" +
		"Package: b\n" +
		"Empty:\n" // no final blank line
	ps := readAll(t, text, true)
	if len(ps) != 2 {
		t.Fatalf("%d paragraphs", len(ps))
	}
	a, b := ps[0], ps[1]
	if a.Line != 2 || b.Line != 14 || a.Len() != 4 || b.Len() != 2 {
		t.Errorf("lines %d, %d; lengths %d, %d", a.Line, b.Line, a.Len(), b.Len())
	}
	for _, c := range []struct{ got, want string }{
		{a.Get("PACKAGE"), "a"},
		{a.Get("description"), "short\nlong line one\n\nindented"},
		{a.Text(1), "short\n long line one\n .\n   indented"},
		{a.Get("sha256"), "aa 1 x\nbb 2 y"},
		{a.Get("Pre-Depends"), "b"},
		{a.Name(3), "pre-DEPENDS"},
		{a.Key(3), "pre-depends"},
		{b.Get("empty"), ""},
		{b.Get("absent"), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if a.FieldLine(2) != 7 || a.Index("sha256") != 2 || a.Index("x") != -1 {
		t.Errorf("SHA256 at line %d, index %d", a.FieldLine(2), a.Index("sha256"))
	}

	// Without Comments, "#" starts a field's name.
	if ps := readAll(t, "#x: 1\nA: 2\n", false); ps[0].Key(0) != "#x" {
		t.Errorf("without comments: %q", ps[0].Key(0))
	}
	if ps := readAll(t, "A: 1\nB: 2\na: 3\n", false); ps[0].Repeated() != 2 || ps[0].Get("a") != "1" {
		t.Errorf("Repeated = %d", ps[0].Repeated())
	}
}

func TestReaderErrors(t *testing.T) {
	for text, want := range map[string]string{
		" x\nPackage: a\n":      "f:1: continuation line without a field",
		"Package: a\nVersion 1": `f:2: "Version 1" is not a field`,
		"A: 1\n: 2\n":           `f:2: ": 2" is not a field`,
		"A: 1\nB C: 2\n":        `f:2: "B C: 2" is not a field`,
	} {
		r := NewReader(strings.NewReader(text))
		r.Name = "f"
		_, err := r.ReadAll()
		if err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %s", text, err, want)
		}
	}
	r := NewReader(strings.NewReader("Package: a\nVersion 1\n"))
	if _, err := r.Next(); err == nil || err.Error() != `line 2: "Version 1" is not a field` {
		t.Errorf("unnamed: %v", err)
	}
	if _, err := NewReader(strings.NewReader("\n\n")).Next(); err != io.EOF {
		t.Errorf("empty: %v", err)
	}
}

func TestParse(t *testing.T) {
	p, err := Parse([]byte("Package: a\n# comment\nVersion: 1\n\nPackage: b\n"))
	if err != nil || p.Len() != 2 || p.Get("version") != "1" {
		t.Errorf("Parse = %v, %v", p, err)
	}
	if p, err := Parse(nil); err != nil || p.Len() != 0 {
		t.Errorf("Parse(nil) = %v, %v", p, err)
	}
}

var fuzzSeeds = []string{
	"Package: a\nVersion: 1\n\nPackage: b\nDepends: a\n",
	"A: 1\n b\n .\n\n#c\nB:\n x\n",
	" x\n",
	"A 1\n",
	"A: 1\r\nB: 2\r\n\r\n",
	"\n\n\nA:\n",
}

// The reader never panics, and what it reads reads the same again when
// written out.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, text string, comments bool) {
		r := NewReader(strings.NewReader(text))
		r.Comments = comments
		ps, err := r.ReadAll()
		if err != nil {
			return
		}
		var b strings.Builder
		for _, p := range ps {
			for i := range p.Len() {
				b.WriteString(p.Name(i) + ": " + p.Text(i) + "\n")
			}
			b.WriteString("\n")
		}
		again := NewReader(strings.NewReader(b.String()))
		again.Comments = comments
		qs, err := again.ReadAll()
		if err != nil {
			t.Fatalf("rewritten %q: %v", b.String(), err)
		}
		if len(qs) != len(ps) {
			t.Fatalf("%d paragraphs, rewritten %d", len(ps), len(qs))
		}
		for n, p := range ps {
			q := qs[n]
			if q.Len() != p.Len() {
				t.Fatalf("paragraph %d: %d fields, rewritten %d", n, p.Len(), q.Len())
			}
			for i := range p.Len() {
				if p.Key(i) != q.Key(i) || p.Value(i) != q.Value(i) {
					t.Fatalf("field %q: %q, rewritten %q: %q", p.Name(i), p.Value(i), q.Name(i), q.Value(i))
				}
			}
		}
	})
}

// BenchmarkReader reads $BASEBUILD_PACKAGES (an uncompressed Packages
// file, such as bookworm's main/binary-amd64) if set, or a synthetic
// index, and the fields a Packages parse reads.
func BenchmarkReader(b *testing.B) {
	var data []byte
	if path := os.Getenv("BASEBUILD_PACKAGES"); path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	} else {
		data = []byte(strings.Repeat("Package: p\nVersion: 1\nDepends: a, b (>= 1)\nDescription: x\n long\n .\n more\nSHA256: 00\n\n", 10000))
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := NewReader(bytes.NewReader(data))
		n := 0
		for {
			p, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			for i := range p.Len() {
				switch p.Key(i) {
				case "package", "version", "depends", "sha256":
					_ = p.Value(i)
				}
			}
			n++
		}
		if n == 0 {
			b.Fatal("no paragraphs")
		}
	}
}
