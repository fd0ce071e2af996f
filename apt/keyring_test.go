package apt

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/basebuild/basebuild/internal/apttest"
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

// secretKeyrings returns keyring files that hold key's secret parts:
// SerializePrivate's output binary and armored, the public key followed by
// the secret one in two armored blocks, and the public primary key with a
// secret subkey (as gpg --export-secret-subkeys gives, less the stub).
func secretKeyrings(t *testing.T, key *openpgp.Entity) map[string][]byte {
	t.Helper()
	var bin bytes.Buffer
	if err := key.SerializePrivate(&bin, nil); err != nil {
		t.Fatal(err)
	}
	armored := func(typ string, data []byte) []byte {
		var b bytes.Buffer
		w, err := armor.Encode(&b, typ, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
		return b.Bytes()
	}
	var pub bytes.Buffer
	key.Serialize(&pub)
	var sub bytes.Buffer
	key.PrimaryKey.Serialize(&sub)
	for _, id := range key.Identities {
		id.UserId.Serialize(&sub)
		id.SelfSignature.Serialize(&sub)
	}
	for _, s := range key.Subkeys {
		if err := s.PrivateKey.Serialize(&sub); err != nil {
			t.Fatal(err)
		}
		s.Sig.Serialize(&sub)
	}
	return map[string][]byte{
		"private.gpg":        bin.Bytes(),
		"private.asc":        armored(openpgp.PrivateKeyType, bin.Bytes()),
		"public+private.asc": append(armored(openpgp.PublicKeyType, pub.Bytes()), armored(openpgp.PrivateKeyType, bin.Bytes())...),
		"subkey.gpg":         sub.Bytes(),
	}
}

func TestLoadKeyringSecret(t *testing.T) {
	key, _ := apttest.NewKey(t)
	if len(key.Subkeys) == 0 {
		t.Fatal("apttest's key has no subkey")
	}
	dir := t.TempDir()
	for name, data := range secretKeyrings(t, key) {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyring(path)
		if want := "keyring " + path + ": holds a secret key: give the public keys only"; err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", name, err, want)
		}
	}
}

// TestPublicKeyring: what the image gets of a keyring is its public keys
// as parsed: for apttest's key the very bytes, and for Debian's keyring
// one with which gpgv, as apt runs it, still checks Debian's InRelease.
func TestPublicKeyring(t *testing.T) {
	_, path := apttest.NewKey(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ReadKeyring(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := PublicKeyring(keys); err != nil || !bytes.Equal(got, data) {
		t.Errorf("%s: PublicKeyring differs from the file (%v)", path, err)
	}

	keys = nil
	for _, k := range []string{"bookworm", "trixie"} {
		kr, err := LoadKeyring("testdata/inrelease/" + k + "-automatic.gpg")
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, kr...)
	}
	public, err := PublicKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	keyring := filepath.Join(t.TempDir(), "debian.gpg")
	if err := os.WriteFile(keyring, public, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gpgv", "--homedir", t.TempDir(), "--keyring", keyring, "testdata/inrelease/bookworm-updates.InRelease").CombinedOutput(); err != nil {
		t.Errorf("gpgv with the public keyring: %v\n%s", err, out)
	}
}
