package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestStageTree checks that a --rootfs tree is built where no other user
// reaches it, a 0755 tree in a 0700 directory, and is renamed into place
// 0755 only when complete; a failed build leaves nothing behind.
func TestStageTree(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "rootfs")
	err := stageTree(dir, func(tree string) error {
		for p, want := range map[string]os.FileMode{filepath.Dir(tree): 0o700, tree: 0o755} {
			if fi, err := os.Stat(p); err != nil || fi.Mode() != os.ModeDir|want {
				t.Errorf("while building, %s: %v %v, want %v", p, fi.Mode(), err, os.ModeDir|want)
			}
		}
		if filepath.Dir(filepath.Dir(tree)) != parent {
			t.Errorf("tree %s is not built beside %s", tree, dir)
		}
		return os.WriteFile(filepath.Join(tree, "su"), []byte("su"), 0o4755)
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode() != os.ModeDir|0o755 {
		t.Errorf("%s: %v %v, want drwxr-xr-x", dir, fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "su")); err != nil {
		t.Error(err)
	}

	failed := filepath.Join(parent, "failed")
	boom := errors.New("boom")
	if err := stageTree(failed, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("failed build: %v", err)
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 || ents[0].Name() != "rootfs" {
		t.Errorf("left beside the trees: %v", ents)
	}
}
