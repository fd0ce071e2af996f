package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// entries lists dir, to see that no temporary file is left.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := WriteFile(name, []byte("new"), Options{Sync: true, ModTime: mtime}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(name); string(data) != "new" {
		t.Errorf("content %q", data)
	}
	if fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(mtime) {
		t.Errorf("mode %v, mtime %v; want 0644, %v", fi.Mode(), fi.ModTime(), mtime)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Errorf("left %q", got)
	}
}

// A failed write leaves the old file and no temporary file.
func TestWriteFails(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(name, Options{}, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Write: %v, want %v", err, boom)
	}
	if data, _ := os.ReadFile(name); string(data) != "old" {
		t.Errorf("content %q, want the old", data)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Errorf("left %q", got)
	}
	// A directory is not replaced, even empty.
	sub := filepath.Join(dir, "d")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(sub, []byte("x"), Options{}); err == nil {
		t.Error("replaced a directory")
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Errorf("directory: %v, %v", fi, err)
	}
}

// A file created first and named later (a download named by its hash once
// verified) is put in place by Commit; Discard after Commit is a no-op,
// Discard alone removes it.
func TestCreateCommitDiscard(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(dir, ".tmp-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Discard()
	f.Write([]byte("data"))
	name := filepath.Join(dir, "entry")
	if err := f.Commit(name, Options{}); err != nil {
		t.Fatal(err)
	}
	f.Discard()
	if data, err := os.ReadFile(name); err != nil || string(data) != "data" {
		t.Errorf("entry: %q, %v", data, err)
	}
	if err := f.Commit(name, Options{}); err == nil {
		t.Error("committed twice")
	}

	g, err := Create(dir, ".tmp-")
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("more"))
	g.Discard()
	if got := entries(t, dir); len(got) != 1 || got[0] != "entry" {
		t.Errorf("left %q", got)
	}
}
