package apt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"sha256", "url"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}

	body := []byte("hello")
	want := FileHash{Size: 5, SHA256: sha256hex(body)}
	if _, ok := c.lookup(want); ok {
		t.Error("found in an empty cache")
	}
	f, err := c.create()
	if err != nil {
		t.Fatal(err)
	}
	f.Write(body)
	p, err := c.commit(f, want.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.lookup(want); !ok || got != p || got != filepath.Join(dir, "sha256", want.SHA256) {
		t.Errorf("lookup = %q, %v; want %q", got, ok, p)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("entry mode: %v, %v", fi.Mode(), err)
	}
	// An entry of the wrong size is not a hit.
	if _, ok := c.lookup(FileHash{Size: 6, SHA256: want.SHA256}); ok {
		t.Error("found with the wrong size")
	}
	// Hashes come from remote indexes: never a path.
	if _, ok := c.lookup(FileHash{Size: 5, SHA256: "../../../../etc/passwd"}); ok {
		t.Error("looked up a path")
	}

	// A discarded temporary file leaves nothing.
	f, err = c.create()
	if err != nil {
		t.Fatal(err)
	}
	c.discard(f)
	entries, _ := os.ReadDir(filepath.Join(dir, "sha256"))
	if len(entries) != 1 {
		t.Errorf("got %d entries, want 1", len(entries))
	}

	url := "http://archive.invalid/debian/dists/x/InRelease"
	if _, ok := c.getURL(url); ok {
		t.Error("found a URL in an empty cache")
	}
	if err := c.putURL(url, body); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.getURL(url); !ok || string(got) != "hello" {
		t.Errorf("getURL = %q, %v", got, ok)
	}
	entries, _ = os.ReadDir(filepath.Join(dir, "url"))
	if len(entries) != 1 || strings.HasPrefix(entries[0].Name(), ".") {
		t.Errorf("url dir: %v", entries)
	}
}
