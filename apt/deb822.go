package apt

import (
	"fmt"
	"io"

	"github.com/basebuild/basebuild/debian/control"
)

// readParagraphs reads the paragraphs of an apt configuration file in
// deb822 form (.sources, preferences), in which "#" starts a comment
// line. name labels errors, which give the line.
func readParagraphs(r io.Reader, name string) ([]*control.Paragraph, error) {
	cr := control.NewReader(r)
	cr.Comments, cr.Name = true, name
	return cr.ReadAll()
}

// checkRepeated fails for a field of p given twice, unless allowed says
// it may be; the first is the one read. name labels the error.
func checkRepeated(p *control.Paragraph, name string, allowed func(key string) bool) error {
	for i := range p.Len() {
		first := p.Index(p.Key(i))
		if first < i && (allowed == nil || !allowed(p.Key(i))) {
			return fmt.Errorf("%s:%d: field %s given twice", name, p.FieldLine(i), p.Name(first))
		}
	}
	return nil
}

// lookup returns the value and line of p's field key, and whether p has
// it.
func lookup(p *control.Paragraph, key string) (string, int, bool) {
	i := p.Index(key)
	if i < 0 {
		return "", 0, false
	}
	return p.Value(i), p.FieldLine(i), true
}
