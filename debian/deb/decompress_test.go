package deb

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func TestDecompress(t *testing.T) {
	text := []byte(strings.Repeat("Package: foo\nVersion: 1.0\n\n", 1000))
	compress := map[string]func(io.Writer) (io.WriteCloser, error){
		"Packages.xz": func(w io.Writer) (io.WriteCloser, error) { return xz.NewWriter(w) },
		"Packages.gz": func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriter(w), nil },
		"Packages.zst": func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w)
		},
		"dir.d/Packages": func(w io.Writer) (io.WriteCloser, error) { return nopWriteCloser{w}, nil },
	}
	for name, newWriter := range compress {
		var buf bytes.Buffer
		w, err := newWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(text)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Decompress(&buf, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, text) {
			t.Errorf("%s: got %d bytes, %v", name, len(got), err)
		}
	}

	if _, err := Decompress(strings.NewReader("x"), "Packages.bz2"); err == nil || !strings.Contains(err.Error(), "Packages.bz2") {
		t.Errorf("bz2: got %v, want an error naming the file", err)
	}
	r, err := Decompress(strings.NewReader("not xz"), "Packages.xz")
	if err == nil {
		_, err = io.ReadAll(r)
	}
	if err == nil {
		t.Error("corrupt xz: no error")
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
