package testenv

import (
	"runtime"
	"testing"
)

// recorder is a testing.TB that notes how a check ended the test: as
// testing does, Skip and Fatalf end the goroutine.
type recorder struct {
	testing.TB
	ended string // "skipped" or "failed"
}

func (r *recorder) Helper()               {}
func (r *recorder) Skip(...any)           { r.ended = "skipped"; runtime.Goexit() }
func (r *recorder) Fatalf(string, ...any) { r.ended = "failed"; runtime.Goexit() }

// check runs f with a recorder and returns how it ended the test, "" if
// it did not.
func check(f func(testing.TB)) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.ended
}

// Outside make test a missing requirement skips; under it, it fails.
func TestMissing(t *testing.T) {
	for dir, want := range map[string]string{"": "skipped", "/tmp/basebuild-test": "failed"} {
		t.Setenv("BASEBUILD_TEST_DIR", dir)
		t.Setenv("BASEBUILD_REGISTRY", "")
		for name, f := range map[string]func(testing.TB){
			"Missing":  func(tb testing.TB) { Missing(tb, "no %s", "thing") },
			"LookPath": func(tb testing.TB) { LookPath(tb, "basebuild-no-such-tool") },
			"Registry": func(tb testing.TB) { Registry(tb) },
		} {
			if got := check(f); got != want {
				t.Errorf("BASEBUILD_TEST_DIR=%q: %s %s the test, want %s", dir, name, got, want)
			}
		}
	}
	t.Setenv("BASEBUILD_REGISTRY", "127.0.0.1:5000")
	var got string
	if ended := check(func(tb testing.TB) { got = Registry(tb) }); ended != "" || got != "127.0.0.1:5000" {
		t.Errorf("Registry with BASEBUILD_REGISTRY set: %q, %s the test", got, ended)
	}
}
