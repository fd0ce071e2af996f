package deb

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/apttest"
)

func buildDeb(t testing.TB, compression string) []byte {
	t.Helper()
	data, err := apttest.BuildDeb(apttest.Deb{Name: "foo", Version: "1.0-1", Compression: compression,
		Fields:  map[string]string{"Depends": "libc6 (>= 2.36)"},
		Scripts: map[string]string{"postinst": "#!/bin/sh\n", "conffiles": "/etc/foo.conf\n"},
		Files:   []apttest.File{{Path: "etc/foo.conf", Body: "x=1\n"}, {Path: "usr/bin/foo", Body: "#!/bin/sh\n", Mode: 0o755}}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRead(t *testing.T) {
	for _, comp := range []string{"xz", "gz", "zst", "none"} {
		data := buildDeb(t, comp)
		pkg, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		if ctl := string(pkg.Control["control"].Data); !strings.Contains(ctl, "Package: foo\n") || !strings.Contains(ctl, "Depends: libc6 (>= 2.36)\n") {
			t.Errorf("%s: control %q", comp, ctl)
		}
		if pm := pkg.Control["postinst"]; string(pm.Data) != "#!/bin/sh\n" || pm.ModTime.IsZero() {
			t.Errorf("%s: postinst %+v", comp, pm)
		}
		zr, err := pkg.Data.Open()
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		var names []string
		err = WalkTar(zr, pkg.Data.Name, func(h *tar.Header, r io.Reader) error {
			names = append(names, h.Name)
			return nil
		})
		zr.Close()
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		if got := strings.Join(names, " "); !strings.Contains(got, "./usr/bin/foo") || !strings.Contains(got, "./etc/foo.conf") {
			t.Errorf("%s: data.tar has %s", comp, got)
		}
	}
}

func TestReadErrors(t *testing.T) {
	good := buildDeb(t, "gz")
	members, err := ReadAr(bytes.NewReader(good), int64(len(good)))
	if err != nil || len(members) != 3 {
		t.Fatalf("ReadAr: %d members, %v", len(members), err)
	}
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"empty":     {nil, "not an ar archive: unexpected EOF"},
		"not ar":    {[]byte("hello, world"), "not an ar archive"},
		"truncated": {good[:len(good)-10], "unexpected EOF"},
		"bad size":  {append([]byte("!<arch>\n"), []byte("debian-binary   0           0     0     100644  x         `\n")...), `bad size`},
		"members":   {append([]byte("!<arch>\n"), []byte("debian-binary   0           0     0     100644  4         `\n2.0\n")...), "not a binary package"},
		"version": {
			bytes.Replace(good, []byte("2.0\n"), []byte("3.0\n"), 1),
			"debian-binary: unsupported format version",
		},
	} {
		_, err := Read(bytes.NewReader(c.data), int64(len(c.data)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

// plainDeb is buildDeb's deb with an uncompressed control.tar and
// data.tar: a seed the fuzzer can change at every byte, where a
// compressed member would mostly fail its checksum.
func plainDeb(t testing.TB) []byte {
	t.Helper()
	data := buildDeb(t, "none")
	pkg, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var ctl bytes.Buffer
	tw := tar.NewWriter(&ctl)
	for _, name := range []string{"control", "postinst", "conffiles"} {
		f := pkg.Control[name]
		tw.WriteHeader(&tar.Header{Name: "./" + name, Mode: f.Mode, Size: int64(len(f.Data)), ModTime: f.ModTime})
		tw.Write(f.Data)
	}
	tw.Close()
	var tarData bytes.Buffer
	tw = tar.NewWriter(&tarData)
	tw.WriteHeader(&tar.Header{Name: "./usr/bin/foo", Mode: 0o755, Size: 3})
	tw.Write([]byte("foo"))
	tw.Close()
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar", ctl.Bytes()}, {"data.tar", tarData.Bytes()}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.data))
		ar.Write(m.data)
		if len(m.data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	return ar.Bytes()
}

func TestPlainDeb(t *testing.T) {
	data := plainDeb(t)
	pkg, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil || len(pkg.Control) != 3 || pkg.Data.Name != "data.tar" {
		t.Fatalf("%+v, %v", pkg, err)
	}
}

// Read never panics, and never lists a member outside the archive.
func FuzzRead(f *testing.F) {
	f.Add(plainDeb(f))
	for _, comp := range []string{"gz"} {
		f.Add(buildDeb(f, comp))
	}
	f.Add([]byte("!<arch>\n"))
	f.Add([]byte("!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		members, err := ReadAr(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, m := range members {
			if m.Size() < 0 || m.Size() > int64(len(data)) {
				t.Fatalf("member %q of %d bytes in %d", m.Name, m.Size(), len(data))
			}
		}
		pkg, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if _, ok := pkg.Control["control"]; !ok {
			t.Fatal("no control file")
		}
		zr, err := pkg.Data.Open()
		if err != nil {
			return
		}
		defer zr.Close()
		WalkTar(zr, pkg.Data.Name, func(*tar.Header, io.Reader) error { return nil })
	})
}
