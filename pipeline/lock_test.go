package pipeline

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/plan"
)

// A lock reads back as the plan it was written from, with the inputs of
// the Spec; a Spec that differs in any input is named by Mismatch.
func TestLockRoundTrip(t *testing.T) {
	o, p := fingerprintInputs()
	o.AptConf = []string{`APT::Install-Recommends "false";`}
	p.Releases = []plan.Release{{URL: "http://mirror.example/debian", Suite: "bookworm", Codename: "bookworm",
		Date: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), SHA256: strings.Repeat("a", 64)}}
	for i := range p.Packages {
		p.Packages[i].URL = "http://mirror.example/debian/pool/" + p.Packages[i].Name + ".deb"
		p.Packages[i].Size = 1000 + int64(i)
		p.Packages[i].SHA256 = strings.Repeat(string(rune('a'+i)), 64)
	}
	p.Packages[0].Required = true
	var b bytes.Buffer
	if err := o.WriteLock(&b, p); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	l, err := ReadLock(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !reflect.DeepEqual(l.Plan, p) {
		t.Errorf("read back %+v, want %+v", l.Plan, p)
	}
	if key, _, _ := l.Mismatch(&o.Spec); key != "" {
		t.Errorf("the lock's own Spec mismatches at %s", key)
	}
	o.AptConf = nil
	if key, locked, given := l.Mismatch(&o.Spec); key != "apt-conf.1" || locked != `APT::Install-Recommends "false";` || given != "" {
		t.Errorf("Mismatch without --apt-conf: %q %q %q", key, locked, given)
	}
	var again bytes.Buffer
	if err := o.WriteLock(&again, p); err != nil || again.String() == text {
		t.Errorf("a different Spec wrote the same lock (%v)", err)
	}
	for _, bad := range []string{
		"",
		strings.Replace(text, "format 1", "format 2", 1),
		strings.Replace(text, "\nepoch ", "\nepoch-not ", 1),
		strings.Replace(text, `"name":"libc6"`, `"name":"a-libc6"`, 1), // out of order
		strings.Replace(text, `"size":1001`, `"size":0`, 1),
		text + "package {\"name\":\"zz\"}\n",
		text + "garbage\n",
	} {
		if _, err := ReadLock(strings.NewReader(bad)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("ReadLock accepted, or gave a multi-line error for:\n%s\n(%v)", bad, err)
		}
	}
}
