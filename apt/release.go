package apt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/basebuild/basebuild/debian/control"
	"github.com/basebuild/basebuild/internal/cache"
)

// Repository is one apt source.
type Repository struct {
	URL        string   // archive root, e.g. "http://mirror.example/debian"
	Suite      string   // e.g. "bookworm", "bookworm-security"
	Components []string // default ["main"]
	Keyring    openpgp.EntityList

	// Snapshot marks an immutable archive (snapshot.debian.org) read as
	// of a past time: its InRelease is cached by URL, and signatures are
	// checked as of the Release's Date (see Release).
	Snapshot bool

	// Debian marks Debian's own archive (the build's mirror, security
	// mirror or snapshot), as against an extra repository: only its
	// packages are recorded as Debian's, whatever a Release says.
	Debian bool

	// Optional makes a missing suite (404 on InRelease) a note via Log
	// rather than an error. It is never remembered: the next build asks
	// again.
	Optional bool

	// Pin is the SHA-256 of the InRelease a lock pins for the suite, or
	// "": then Release reads that file from the cache before the network
	// (see Release).
	Pin string
}

func (r Repository) root() string { return strings.TrimRight(r.URL, "/") }

// site is the repository's host without port: apt's "Pin: origin".
func (r Repository) site() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func (r Repository) components() []string {
	if len(r.Components) == 0 {
		return []string{"main"}
	}
	return r.Components
}

// InReleaseURL is the URL of the suite's InRelease file.
func (r Repository) InReleaseURL() string {
	return r.root() + "/dists/" + r.Suite + "/InRelease"
}

// Release is the verified content of a suite's InRelease file.
type Release struct {
	Suite, Codename string
	// Origin, Label and Version are what apt's preferences match as o=,
	// l= and v=; NotAutomatic and ButAutomaticUpgrades lower the suite's
	// default priority (to 1 and 100), as for backports and experimental.
	Origin, Label, Version             string
	NotAutomatic, ButAutomaticUpgrades bool
	Date                               time.Time
	ValidUntil                         time.Time // zero when the Release has none
	Architectures                      []string
	Components                         []string
	AcquireByHash                      bool                // indexes are also served under by-hash/SHA256/<hex>
	Files                              map[string]FileHash // by path relative to dists/<suite>/
	SHA256                             string              // of the InRelease file, signature included
}

// FileHash is a file's size and SHA-256 (lowercase hex) as listed in a
// Release.
type FileHash struct {
	Size   int64
	SHA256 string
}

// Release fetches the suite's InRelease, verifies its OpenPGP signature
// against repo.Keyring and parses it. Nothing from a file that fails
// verification is used.
//
// now is the time the archive is read as of: the present, or for a
// repo.Snapshot the snapshot's time. The Release must be valid then: its
// Valid-Until, if any, not before now, and, for a snapshot, its Date not
// after now (a Release from after the snapshot is not the snapshot's;
// without a snapshot, an older Release is the mirror's to serve).
//
// Without repo.Snapshot, signatures are checked as of now. With it, each
// signature is checked as of the Release's Date (or the signature's
// creation time if later, since the archive signs moments after writing
// Date), so that an archive signed by a key that has expired since still
// verifies; the InRelease is then cached by URL.
//
// With repo.Pin, the InRelease of that SHA-256 is read from the cache
// first, with no request: the lock that pins it names the bytes, so its
// signatures are checked as of its Date, as a snapshot's are, and an
// old lock's Valid-Until may have passed. Without it in the cache, or if
// it no longer verifies, the file is fetched as usual.
//
// Every InRelease that verifies is cached by its SHA-256, for later pins.
//
// A missing suite (404) is an error wrapping ErrNotFound, or, for an
// Optional repository, a nil *Release and a nil error.
func (c *Client) Release(ctx context.Context, repo Repository, now time.Time) (*Release, error) {
	url := repo.InReleaseURL()
	if len(repo.Keyring) == 0 {
		return nil, fmt.Errorf("suite %q (%s): no keyring", repo.Suite, url)
	}
	if repo.Pin != "" && c.Cache != nil {
		if p, ok := c.Cache.Lookup(repo.Pin, -1); ok {
			data, err := os.ReadFile(p)
			if err == nil {
				var rel *Release
				if rel, err = readRelease(data, repo, now, true); err == nil {
					return rel, nil
				}
			}
			c.logf("the pinned InRelease sha256:%s: %v; fetching it", repo.Pin, err)
		}
	}
	if repo.Snapshot && c.Cache != nil {
		if data, ok := c.Cache.URL(url); ok {
			if rel, err := readRelease(data, repo, now, false); err == nil {
				// By content too, for a cache filled before it was.
				if err := c.Cache.Put(data); err != nil {
					c.logf("%v", err)
				}
				return rel, nil
			}
			// A cached copy that no longer verifies (say, the keyring
			// changed) is refetched rather than trusted.
		}
	}
	data, err := c.get(ctx, url)
	if errors.Is(err, ErrNotFound) && repo.Optional {
		c.logf("suite %q: no InRelease at %s; skipping it, as allowed", repo.Suite, url)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("suite %q (%s): InRelease: %w", repo.Suite, url, err)
	}
	rel, err := readRelease(data, repo, now, false)
	if err != nil {
		return nil, err
	}
	if c.Cache != nil {
		if err := c.Cache.Put(data); err != nil {
			c.logf("%v", err)
		}
		if repo.Snapshot {
			if err := c.Cache.PutURL(url, data); err != nil {
				c.logf("cache: %v", err)
			}
		}
	}
	return rel, nil
}

// readRelease verifies and parses an InRelease file fetched for repo, or
// pinned by a lock.
func readRelease(data []byte, repo Repository, now time.Time, pinned bool) (*Release, error) {
	url := repo.InReleaseURL()
	asOfDate := repo.Snapshot || pinned
	var date time.Time
	if asOfDate {
		// Read from the text not yet verified, Date only chooses the time
		// to verify at; the signature covers it.
		date = releaseDate(signedText(data))
	}
	body, err := verifyInRelease(data, repo.Keyring, func(sig *packet.Signature) time.Time {
		switch {
		case !asOfDate:
			return now
		case sig.CreationTime.After(date):
			return sig.CreationTime
		}
		return date
	})
	if err != nil {
		return nil, fmt.Errorf("suite %q (%s): InRelease: %w", repo.Suite, url, err)
	}
	rel, err := parseRelease(body)
	if err != nil {
		return nil, fmt.Errorf("suite %q (%s): InRelease: %w", repo.Suite, url, err)
	}
	// A validly signed Release of another suite must not stand in for
	// this one (an old suite served in place of a new one, say).
	if repo.Suite != rel.Suite && repo.Suite != rel.Codename {
		return nil, fmt.Errorf("suite %q (%s): InRelease is for suite %q, codename %q", repo.Suite, url, rel.Suite, rel.Codename)
	}
	// An old, validly signed Release replayed in place of the current
	// one would roll back security updates: Valid-Until bounds that, and
	// a snapshot's time bounds its Date.
	if repo.Snapshot {
		if rel.Date.After(now) {
			return nil, fmt.Errorf("suite %q (%s): InRelease dated %s, after the snapshot time %s", repo.Suite, url, rel.Date.Format(time.RFC1123), now.UTC().Format(time.RFC1123))
		}
		if !rel.ValidUntil.IsZero() && now.After(rel.ValidUntil) {
			return nil, fmt.Errorf("suite %q (%s): InRelease expired before the snapshot time %s: Valid-Until %s", repo.Suite, url, now.UTC().Format(time.RFC1123), rel.ValidUntil.Format(time.RFC1123))
		}
	} else if !pinned && !rel.ValidUntil.IsZero() && now.After(rel.ValidUntil) {
		return nil, fmt.Errorf("suite %q (%s): InRelease expired: Valid-Until %s", repo.Suite, url, rel.ValidUntil.Format(time.RFC1123))
	}
	sum := sha256.Sum256(data)
	rel.SHA256 = hex.EncodeToString(sum[:])
	return rel, nil
}

// signedText returns the signed text of a clearsigned file, unverified, or
// nil.
func signedText(data []byte) []byte {
	b, _ := clearsign.Decode(data)
	if b == nil {
		return nil
	}
	return b.Plaintext
}

// releaseDate returns the Date field of a Release body, or the zero time.
func releaseDate(body []byte) time.Time {
	p, err := releaseParagraph(body)
	if err != nil {
		return time.Time{}
	}
	t, _ := parseDate(p.Get("Date"))
	return t
}

// verifyInRelease checks the clearsigned data and returns the signed text.
// InRelease files carry one signature per archive key; it is enough that
// one of them is by a key in keyring and verifies as of the time verifyAt
// returns for it.
func verifyInRelease(data []byte, keyring openpgp.EntityList, verifyAt func(*packet.Signature) time.Time) ([]byte, error) {
	// Clearsign decoding would skip text around the signed message;
	// refuse it rather than have anything unsigned near what we use.
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		return nil, errors.New("not a clearsigned message")
	}
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, errors.New("not a clearsigned message")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("data after the signature")
	}
	sigData, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}

	// Each signature is kept with the bytes it was read from, so that
	// exactly the packet checked below is the one verified.
	var sigs []*packet.Signature
	var raws [][]byte
	r := bytes.NewReader(sigData)
	pr := packet.NewReader(r)
	for {
		start := len(sigData) - r.Len()
		p, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("signature: %w", err)
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("signature: unexpected %T packet", p)
		}
		sigs = append(sigs, sig)
		raws = append(raws, sigData[start:len(sigData)-r.Len()])
	}
	if len(sigs) == 0 {
		return nil, errors.New("no signature")
	}

	// openpgp.CheckDetachedSignature verifies the first signature whose
	// issuer is in the keyring it is given: give it each signature alone,
	// with a keyring of its issuer alone.
	var errs []string
	var unknown []string
	for i, sig := range sigs {
		if sig.IssuerKeyId == nil {
			continue
		}
		id := *sig.IssuerKeyId
		var issuer openpgp.EntityList
		for _, k := range keyring.KeysById(id) {
			if !slices.Contains(issuer, k.Entity) {
				issuer = append(issuer, k.Entity)
			}
		}
		if len(issuer) == 0 {
			unknown = append(unknown, fmt.Sprintf("%016X", id))
			continue
		}
		// apt (2.6 on) refuses these digests: a collision would let
		// another text carry the signature.
		if weakHash(sig.Hash) {
			errs = append(errs, fmt.Sprintf("key %016X: %s digest, too weak", id, sig.Hash))
			continue
		}
		t := verifyAt(sig)
		config := &packet.Config{Time: func() time.Time { return t }}
		_, err := openpgp.CheckDetachedSignature(issuer, bytes.NewReader(block.Bytes), bytes.NewReader(raws[i]), config)
		if err == nil {
			return block.Plaintext, nil
		}
		errs = append(errs, fmt.Sprintf("key %016X: %v", id, err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no signature by a key in the keyring (signed by %s)", strings.Join(unknown, ", "))
	}
	return nil, fmt.Errorf("bad signature (%s)", strings.Join(errs, "; "))
}

// weakHash reports whether apt refuses signatures made with h.
func weakHash(h crypto.Hash) bool {
	switch h {
	case crypto.MD5, crypto.SHA1, crypto.RIPEMD160:
		return true
	}
	return false
}

// parseRelease parses the (verified) text of a Release file.
func parseRelease(body []byte) (*Release, error) {
	p, err := releaseParagraph(body)
	if err == io.EOF {
		return nil, errors.New("empty")
	}
	if err != nil {
		return nil, err
	}
	rel := &Release{
		Suite:                p.Get("Suite"),
		Codename:             p.Get("Codename"),
		Origin:               p.Get("Origin"),
		Label:                p.Get("Label"),
		Version:              p.Get("Version"),
		NotAutomatic:         releaseFlag(p.Get("NotAutomatic")),
		ButAutomaticUpgrades: releaseFlag(p.Get("ButAutomaticUpgrades")),
		Architectures:        strings.Fields(p.Get("Architectures")),
		Components:           strings.Fields(p.Get("Components")),
		AcquireByHash:        p.Get("Acquire-By-Hash") == "yes",
		Files:                make(map[string]FileHash),
	}
	if rel.Date, err = parseDate(p.Get("Date")); err != nil {
		return nil, fmt.Errorf("Date: %w", err)
	}
	if v := p.Get("Valid-Until"); v != "" {
		if rel.ValidUntil, err = parseDate(v); err != nil {
			return nil, fmt.Errorf("Valid-Until: %w", err)
		}
	}
	for _, line := range strings.Split(p.Get("SHA256"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || !cache.IsSHA256(strings.ToLower(f[0])) {
			return nil, fmt.Errorf("SHA256: bad line %q", line)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("SHA256: bad size in %q", line)
		}
		rel.Files[f[2]] = FileHash{Size: size, SHA256: strings.ToLower(f[0])}
	}
	if len(rel.Files) == 0 {
		return nil, errors.New("no SHA256 file list")
	}
	return rel, nil
}

// releaseParagraph reads the paragraph of a Release file.
func releaseParagraph(body []byte) (*control.Paragraph, error) {
	r := control.NewReader(bytes.NewReader(body))
	r.Comments = true
	return r.Next()
}

// releaseFlag reads a Release's yes/no field as apt's StringToBool does.
func releaseFlag(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true", "with", "on", "enable", "1":
		return true
	}
	return false
}

// parseDate parses a Release date, "Sat, 11 Jul 2026 10:16:37 UTC".
func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing")
	}
	for _, layout := range []string{
		time.RFC1123, time.RFC1123Z,
		"Mon, _2 Jan 2006 15:04:05 MST", "Mon, _2 Jan 2006 15:04:05 -0700",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad date %q", s)
}
