package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"sha256", "url"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}

	body := []byte("hello")
	sum := sha256hex(body)
	if _, ok := c.Lookup(sum, 5); ok {
		t.Error("found in an empty cache")
	}
	f, err := c.Create()
	if err != nil {
		t.Fatal(err)
	}
	f.Write(body)
	p, err := c.Commit(f, sum)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Lookup(sum, 5); !ok || got != p || got != filepath.Join(dir, "sha256", sum) {
		t.Errorf("Lookup = %q, %v; want %q", got, ok, p)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("entry mode: %v, %v", fi.Mode(), err)
	}
	// An entry of the wrong size is not a hit.
	if _, ok := c.Lookup(sum, 6); ok {
		t.Error("found with the wrong size")
	}
	// Hashes come from remote indexes: never a path.
	if _, ok := c.Lookup("../../../../etc/passwd", 5); ok {
		t.Error("looked up a path")
	}

	// A discarded temporary file leaves nothing.
	f, err = c.Create()
	if err != nil {
		t.Fatal(err)
	}
	f.Discard()
	entries, _ := os.ReadDir(filepath.Join(dir, "sha256"))
	if len(entries) != 1 {
		t.Errorf("got %d entries, want 1", len(entries))
	}

	url := "http://archive.invalid/debian/dists/x/InRelease"
	if _, ok := c.URL(url); ok {
		t.Error("found a URL in an empty cache")
	}
	if err := c.PutURL(url, body); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.URL(url); !ok || string(got) != "hello" {
		t.Errorf("URL = %q, %v", got, ok)
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
			if _, err := Open(dir); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, tc.sub)
			if err := tc.change(p); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			if err == nil || !strings.Contains(err.Error(), "cache directory "+p+": "+tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Open = %v, want an error on %s: %s", err, p, tc.want)
			}
		})
	}
	// What Open creates passes its own check, whatever the umask.
	dir := filepath.Join(t.TempDir(), "new")
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	for _, sub := range append([]string{""}, subdirs...) {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s: %v %v", sub, fi.Mode(), err)
		}
	}
}

// TestCacheLookupChecksContent plants entries in sha256/: one whose
// content is not what its name says, and a symlink. Neither is used;
// both are removed with a note.
func TestCacheLookupChecksContent(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	c.Log = func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	body := []byte("hello")
	sum := sha256hex(body)
	p := c.path(sum)

	if err := os.WriteFile(p, []byte("evil!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Lookup(sum, 5); ok {
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
	if _, ok := c.Lookup(sum, 5); ok {
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
		if got, ok := c.Lookup(sum, 5); !ok || got != p {
			t.Errorf("Lookup = %q, %v", got, ok)
		}
	}
}

// TestDataCacheChecked writes a data cache entry and reads it back, then
// plants entries: without the checksum record, with one that does not
// match, damaged. OpenData refuses each before handing out a byte, and
// removes it with a note.
func TestDataCacheChecked(t *testing.T) {
	c, err := Open(t.TempDir())
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

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestSet remembers a set and reads it back; an entry that does not match
// its hash, or that the set's reader refuses, is removed.
func TestSet(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	c.Log = func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	key := sha256hex([]byte("key"))
	var got []byte
	read := func(data []byte) error { got = data; return nil }
	if c.Set(key, read) {
		t.Error("found a set in an empty cache")
	}
	if err := c.PutSet(key, []byte(`{"set":1}`)); err != nil {
		t.Fatal(err)
	}
	if !c.Set(key, read) || string(got) != `{"set":1}` {
		t.Errorf("Set = %q", got)
	}
	if c.Set(key, func([]byte) error { return errors.New("not a set") }) {
		t.Error("a set its reader refused was used")
	}
	if c.Set(key, read) {
		t.Error("a set its reader refused was kept")
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "not a set") {
		t.Errorf("notes %q", notes)
	}
	// Damaged: its content no longer has the hash in its name.
	if err := c.PutSet(key, []byte(`{"set":2}`)); err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(c.Dir, "sets", key+".*.json"))
	if len(paths) != 1 {
		t.Fatalf("entries %q", paths)
	}
	if err := os.WriteFile(paths[0], []byte(`{"set":3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if c.Set(key, read) {
		t.Errorf("a damaged set was used: %q", got)
	}
	if _, err := os.Stat(paths[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the damaged set is still there: %v", err)
	}
}
