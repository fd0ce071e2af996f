package control

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadStatus(t *testing.T) {
	status := "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nmulti-arch: same\nSource: glibc\nVersion: 2.36-9\n" +
		"Description: GNU C Library\n continuation: not a field\n\n" +
		"Status: install ok installed\n\n" + // no Package: left out
		"Package: libgcc-s1\nStatus: install ok unpacked\nSource: gcc-12 (12.2.0-14)\nVersion: 12.2.0-14+b1\n"
	got, err := ReadStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	want := []StatusEntry{
		{Package: "libc6", Version: "2.36-9", Architecture: "amd64", MultiArch: "same", Source: "glibc", SourceVersion: "2.36-9", Status: "install ok installed"},
		{Package: "libgcc-s1", Version: "12.2.0-14+b1", Source: "gcc-12", SourceVersion: "12.2.0-14", Status: "install ok unpacked"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if _, err := ReadStatus(strings.NewReader("Package: a\nbroken\n")); err == nil || err.Error() != `dpkg status: line 2: "broken" is not a field` {
		t.Errorf("broken status: %v", err)
	}
}
