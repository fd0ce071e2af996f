package control

import (
	"reflect"
	"testing"

	"pault.ag/go/debian/dependency"
)

// RelationParser must give exactly what dependency.Parse gives.
var depCases = []string{
	"", " ", ",", "a", " a ", "a,b", "a, b", "a | b", "a|b|c, d", "a,, b", "a, | b", "a (= 1)",
	"a (>= 1.0)", "a(>=1.0)", "a ( >= 1.0 )", "a (<< 2:1.0-1~bpo1)", "a (<= 1) | b (>> 2)",
	"a:any", "a:any (>= 1)", "a:amd64", "a:native, b", "python3:any (>= 3.11~), libc6 (>= 2.34)",
	"a (> 1)", "a (>= 1", "a (= 1) (= 2)", "a b", "a [amd64]", "a [!i386], b", "a <!nocheck>",
	"${misc:Depends}, a", "${shlibs:Depends", "a\tb", "a,\n b", "a:", "a:bogus-arch-x",
	":any", "a (", "a )", "(= 1)", "a:any[amd64]", "a | ", "| a",
}

func TestRelationParser(t *testing.T) {
	var dp RelationParser
	for _, s := range depCases {
		checkDep(t, &dp, s)
	}
}

func checkDep(t *testing.T, dp *RelationParser, s string) {
	t.Helper()
	want, werr := dependency.Parse(s)
	var got dependency.Dependency
	gerr := dp.Parse(s, &got)
	if (gerr != nil) != (werr != nil) {
		t.Errorf("%q: got error %v, dependency.Parse %v", s, gerr, werr)
		return
	}
	if werr == nil && !reflect.DeepEqual(&got, want) {
		t.Errorf("%q:\ngot  %#v\nwant %#v", s, got, *want)
	}
}

func FuzzRelationParser(f *testing.F) {
	for _, s := range depCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var dp RelationParser
		checkDep(t, &dp, s)
	})
}

func TestSource(t *testing.T) {
	for _, c := range []struct{ field, source, version string }{
		{"", "p", "1"},
		{"src", "src", "1"},
		{"src (2)", "src", "2"},
		{"src  (2) ", "src", "2"},
	} {
		if s, v := Source(c.field, "p", "1"); s != c.source || v != c.version {
			t.Errorf("Source(%q) = %q, %q; want %q, %q", c.field, s, v, c.source, c.version)
		}
	}
}
