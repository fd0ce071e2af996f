package apt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// LoadKeyring reads an OpenPGP keyring file as ReadKeyring does.
func LoadKeyring(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	keys, err := ReadKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return keys, nil
}

// ErrSecretKey is a keyring that holds secret key material.
var ErrSecretKey = errors.New("holds a secret key: give the public keys only")

// ReadKeyring parses an OpenPGP keyring, binary (as in /usr/share/keyrings)
// or ASCII-armored, in one block or several. One that holds a secret key
// or subkey, readable or not, is refused with ErrSecretKey: a keyring is
// public, and basebuild writes repositories' keyrings into the image.
func ReadKeyring(data []byte) (openpgp.EntityList, error) {
	data, err := dearmor(data)
	if err != nil {
		return nil, err
	}
	if err := noSecretKeys(data); err != nil {
		return nil, err
	}
	keys, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	return keys, nil
}

// PublicKeyring returns keys as a binary keyring, which apt reads from a
// .gpg file: their public parts only, whatever the file they came from
// held besides.
func PublicKeyring(keys openpgp.EntityList) ([]byte, error) {
	var b bytes.Buffer
	for _, k := range keys {
		if err := k.Serialize(&b); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// dearmor returns data, if ASCII-armored, as the binary packets of all its
// blocks; else as it is.
func dearmor(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")) {
		return data, nil
	}
	var out bytes.Buffer
	rest := data
	for {
		i := bytes.Index(rest, []byte("-----BEGIN PGP"))
		if i < 0 {
			return out.Bytes(), nil
		}
		block, err := armor.Decode(bytes.NewReader(rest[i:]))
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(&out, block.Body); err != nil {
			return nil, err
		}
		end := bytes.Index(rest[i:], []byte("-----END PGP"))
		if end < 0 {
			return out.Bytes(), nil
		}
		rest = rest[i+end+len("-----END PGP"):]
	}
}

// noSecretKeys returns ErrSecretKey if the binary packets in data include a
// secret key or subkey, even one whose algorithm or form go-crypto cannot
// read (openpgp.ReadKeyRing skips those).
func noSecretKeys(data []byte) error {
	pr := packet.NewReader(bytes.NewReader(data))
	for {
		p, err := pr.NextWithUnsupported()
		if u, ok := p.(*packet.UnsupportedPacket); ok {
			p = u.IncompletePacket
		}
		if _, ok := p.(*packet.PrivateKey); ok {
			return ErrSecretKey
		}
		var malformed pgperrors.StructuralError
		switch {
		case err == io.EOF:
			return nil
		case err != nil && !errors.As(err, &malformed):
			return err
		}
	}
}
