package testenv

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CopySource makes a small tree for --copy: a file, an executable, a
// subdirectory and a symlink, all last modified in 2020 (before the
// epochs the tests build at).
func CopySource(t testing.TB) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "site")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "index.html"), []byte("hello\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "sub", "run"), []byte("#!/bin/sh\necho run\n"), 0o755))
	must(os.Chmod(filepath.Join(src, "sub", "run"), 0o750))
	must(os.Symlink("sub/run", filepath.Join(src, "run")))
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []string{"index.html", "sub/run", "sub", "."} {
		must(os.Chtimes(filepath.Join(src, p), old, old))
	}
	return src
}
