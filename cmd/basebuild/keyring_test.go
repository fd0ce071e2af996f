package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/basebuild/basebuild/internal/apttest"
)

// TestSecretKeyring: --keyring and --repo's signed-by holding a secret key
// (armored here) are refused before anything is fetched, in one line
// naming the file and showing nothing of the key.
func TestSecretKeyring(t *testing.T) {
	a := tinyArchive(t)
	key, _ := apttest.NewKey(t)
	var arm bytes.Buffer
	w, _ := armor.Encode(&arm, openpgp.PrivateKeyType, nil)
	if err := key.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	priv := filepath.Join(t.TempDir(), "acme.asc")
	if err := os.WriteFile(priv, arm.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--suite", "bookworm", "--arch", "amd64", "--mirror", a.URL("debian"),
		"--security-mirror", a.URL("debian-security"), "--cache-dir", t.TempDir(), "--dry-run"}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--keyring", priv}, 1, "keyring " + priv + ": holds a secret key: give the public keys only"},
		{[]string{"--keyring", a.KeyringPath, "--repo", "deb [signed-by=" + priv + "] " + a.URL("debian") + " bookworm main"}, 2,
			"signed-by " + priv + ": holds a secret key: give the public keys only"},
	} {
		_, stderr, err := runCLI(t, append(base, tc.args...)...)
		if exitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v (exit %d); want exit %d and one line containing %q", tc.args, err, exitCode(err), tc.code, tc.want)
		}
		if err != nil && strings.Contains(stderr+err.Error(), "PGP PRIVATE") {
			t.Errorf("%q: the key is in the output", tc.args)
		}
	}
	if n := a.Requests("debian/dists/bookworm/InRelease"); n != 0 {
		t.Errorf("%d requests reached the archive", n)
	}
}
