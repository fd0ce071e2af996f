package apt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/basebuild/basebuild/apt/apttest"
)

func TestLoadKeyring(t *testing.T) {
	key, binary := apttest.NewKey(t)
	kr, err := LoadKeyring(binary)
	if err != nil || len(kr) != 1 || kr[0].PrimaryKey.KeyId != key.PrimaryKey.KeyId {
		t.Fatalf("binary: %v, %v", kr, err)
	}

	armored := filepath.Join(t.TempDir(), "key.asc")
	f, err := os.Create(armored)
	if err != nil {
		t.Fatal(err)
	}
	w, err := armor.Encode(f, "PGP PUBLIC KEY BLOCK", nil)
	if err != nil {
		t.Fatal(err)
	}
	key.Serialize(w)
	w.Close()
	f.Close()
	kr, err = LoadKeyring(armored)
	if err != nil || len(kr) != 1 || kr[0].PrimaryKey.KeyId != key.PrimaryKey.KeyId {
		t.Fatalf("armored: %v, %v", kr, err)
	}

	// Debian's own keyring format: several keys with signing subkeys.
	kr, err = LoadKeyring("testdata/inrelease/bookworm-automatic.gpg")
	if err != nil || len(kr) != 1 || len(kr[0].Subkeys) != 1 {
		t.Fatalf("debian: %v, %v", kr, err)
	}

	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.gpg")
	os.WriteFile(garbage, []byte("not a key"), 0o644)
	empty := filepath.Join(dir, "empty.gpg")
	os.WriteFile(empty, nil, 0o644)
	for _, path := range []string{filepath.Join(dir, "missing.gpg"), garbage, empty} {
		if _, err := LoadKeyring(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v, want an error naming the file", path, err)
		}
	}
}
