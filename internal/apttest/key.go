package apttest

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// keyCreated is the creation time of generated keys. It lies before any
// plausible Release date, so signatures made at the Release date are valid.
var keyCreated = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// NewKey generates a signing key, as an archive would have, and writes its
// public part to a binary keyring in t.TempDir(). Tests use it as the
// unknown signer, or to build a keyring holding several keys.
func NewKey(t testing.TB) (key *openpgp.Entity, keyringPath string) {
	t.Helper()
	key, err := newKey("Test Archive Automatic Signing Key")
	if err != nil {
		t.Fatalf("apttest: generating key: %v", err)
	}
	keyringPath = filepath.Join(t.TempDir(), "archive-keyring.gpg")
	if err := WriteKeyring(keyringPath, key); err != nil {
		t.Fatalf("apttest: %v", err)
	}
	return key, keyringPath
}

// newKey generates an Ed25519 (v4 EdDSA) key: generation is instant,
// unlike RSA, and gpgv and apt accept it.
func newKey(name string) (*openpgp.Entity, error) {
	return openpgp.NewEntity(name, "", "ftpmaster@example.org", &packet.Config{
		Algorithm:   packet.PubKeyAlgoEdDSA,
		Curve:       packet.Curve25519,
		DefaultHash: crypto.SHA512,
		Time:        func() time.Time { return keyCreated },
	})
}

// WriteKeyring writes the public keys of keys to a binary (non-armored)
// keyring file, like /usr/share/keyrings/debian-archive-keyring.gpg.
func WriteKeyring(path string, keys ...*openpgp.Entity) error {
	var buf bytes.Buffer
	for _, k := range keys {
		if err := k.Serialize(&buf); err != nil {
			return err
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0644)
}

// ClearSign returns text clearsigned by key with a SHA512 signature made at
// the given time, as Debian's InRelease files are. Like gpg --clearsign,
// it takes a final newline of text as the one before the signature armor,
// so Release's last line is followed directly by the armor.
func ClearSign(key *openpgp.Entity, text []byte, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, key.PrivateKey, signConfig(when))
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(bytes.TrimSuffix(text, []byte("\n"))); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}

	// go-crypto leaves out the armor's CRC24 line, which gpgv 2.2 (as in
	// bookworm) then fails on: re-armor the signature with it.
	block, _ := clearsign.Decode(buf.Bytes())
	if block == nil {
		return nil, errors.New("apttest: clearsign produced no block")
	}
	sig, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, err
	}
	out := bytes.NewBuffer(buf.Bytes()[:bytes.Index(buf.Bytes(), []byte("-----BEGIN PGP SIGNATURE-----"))])
	aw, err := armor.Encode(out, "PGP SIGNATURE", nil)
	if err != nil {
		return nil, err
	}
	if _, err := aw.Write(sig); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// DetachSign returns an armored detached signature of text by key, as
// Debian's Release.gpg files are.
func DetachSign(key *openpgp.Entity, text []byte, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, key, bytes.NewReader(text), signConfig(when)); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func signConfig(when time.Time) *packet.Config {
	return &packet.Config{DefaultHash: crypto.SHA512, Time: func() time.Time { return when }}
}
