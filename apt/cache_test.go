package apt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
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
	f.Discard()
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

// TestCacheRefusesOthersDirs checks that a cache directory, or one of its
// subdirectories, that another user could write is refused with a
// one-line error naming it.
func TestCacheRefusesOthersDirs(t *testing.T) {
	for name, tc := range map[string]struct {
		sub    string
		change func(p string) error
		want   string
	}{
		"other owner":      {"", func(p string) error { return os.Chown(p, os.Geteuid()+1000, -1) }, "owned by uid"},
		"group-writable":   {"", func(p string) error { return os.Chmod(p, 0o775) }, "writable by group or others (mode 0775)"},
		"world-writable":   {"", func(p string) error { return os.Chmod(p, 0o1777) }, "writable by group or others"},
		"data other owner": {"data", func(p string) error { return os.Chown(p, os.Geteuid()+1000, -1) }, "owned by uid"},
		"sets writable":    {"sets", func(p string) error { return os.Chmod(p, 0o757) }, "writable by group or others"},
		"sha256 symlink": {"sha256", func(p string) error {
			if err := os.Rename(p, p+".real"); err != nil {
				return err
			}
			return os.Symlink(p+".real", p)
		}, "not a directory"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			if _, err := OpenCache(dir); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, tc.sub)
			if err := tc.change(p); err != nil {
				t.Fatal(err)
			}
			_, err := OpenCache(dir)
			if err == nil || !strings.Contains(err.Error(), "cache directory "+p+": "+tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("OpenCache = %v, want an error on %s: %s", err, p, tc.want)
			}
		})
	}
	// What OpenCache creates passes its own check, whatever the umask.
	dir := filepath.Join(t.TempDir(), "new")
	if _, err := OpenCache(dir); err != nil {
		t.Fatal(err)
	}
	for _, sub := range append([]string{""}, cacheDirs...) {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s: %v %v", sub, fi.Mode(), err)
		}
	}
}

// TestCacheLookupChecksContent plants entries in sha256/: one whose
// content is not what its name says, and a symlink. Neither is used;
// both are removed with a note.
func TestCacheLookupChecksContent(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	c.Log = func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	body := []byte("hello")
	want := FileHash{Size: 5, SHA256: sha256hex(body)}
	p := c.path(want.SHA256)

	if err := os.WriteFile(p, []byte("evil!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.lookup(want); ok {
		t.Error("a planted entry of the right size was used")
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the planted entry is still there: %v", err)
	}

	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, body, 0o600)
	if err := os.Symlink(secret, p); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.lookup(want); ok {
		t.Error("a symlink entry was used")
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the symlink entry is still there: %v", err)
	}
	if len(notes) != 2 || !strings.Contains(notes[0], p) || !strings.Contains(notes[1], "symlink") {
		t.Errorf("notes %q, want two naming %s", notes, p)
	}

	// A good entry is found, every time.
	os.WriteFile(p, body, 0o644)
	for range 2 {
		if got, ok := c.lookup(want); !ok || got != p {
			t.Errorf("lookup = %q, %v", got, ok)
		}
	}
}

// TestDataCacheChecked writes a data cache entry and reads it back, then
// plants entries: without the checksum record, with one that does not
// match, damaged. OpenData refuses each before handing out a byte, and
// removes it with a note.
func TestDataCacheChecked(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	c.Log = func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	sum := sha256hex([]byte("deb"))
	tarball := bytes.Repeat([]byte("data.tar "), 10000)
	e := c.NewData(sum)
	e.Write(tarball)
	e.Commit()
	read := func() ([]byte, error) {
		r, err := c.OpenData(sum)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	if got, err := read(); err != nil || !bytes.Equal(got, tarball) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	p := c.dataPath(sum)
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// The record is a skippable frame: zstd tools read an entry whole.
	zr, _ := zstd.NewReader(bytes.NewReader(good))
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, tarball) {
		t.Errorf("a plain zstd reader reads %d bytes, %v", len(got), err)
	}

	zw, _ := zstd.NewWriter(nil)
	evil := zw.EncodeAll([]byte("evil data.tar"), nil)
	forged := append(slices.Clone(evil), good[len(good)-dataTrailerSize:]...)
	damaged := slices.Clone(good)
	damaged[len(damaged)/2] ^= 0xff
	for name, data := range map[string][]byte{"no record": evil, "forged record": forged, "damaged": damaged, "empty": nil} {
		notes = nil
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := read(); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: OpenData = %q, %v; want fs.ErrNotExist", name, got, err)
		}
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: entry still there: %v", name, err)
		}
		if len(notes) != 1 || !strings.Contains(notes[0], p) || !strings.Contains(notes[0], "removed") {
			t.Errorf("%s: notes %q", name, notes)
		}
	}
}
