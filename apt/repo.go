package apt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/basebuild/basebuild/snapshots"
)

// A Repo is an extra apt repository (--repo, --sources), such as an
// organisation's own. Its suites are verified with its own keyring, as
// Debian's are with theirs, and its packages join the resolution; the
// image gets its sources and key, so that apt inside the image trusts it.
type Repo struct {
	Source
	Name    string // the image's /etc/apt/sources.list.d/NAME.sources
	Key     []byte // the binary keyring, public keys only, as the image holds it
	KeyPath string // where the image holds Key, absolute
	keyring openpgp.EntityList
}

// keyringDir is where the image keeps the repositories' keys, as apt's
// documentation says local keys go; a signed-by path there is kept.
// (/usr/share/keyrings belongs to packages, debian-archive-keyring's
// among them, so a key from there goes here too.)
const keyringDir = "/etc/apt/keyrings/"

// ParseRepo parses a one-line source ("deb [signed-by=FILE …] URL SUITE
// COMPONENT…") and reads its keyring. Errors name the line, redacted.
func ParseRepo(line string) (Repo, error) {
	src, err := ParseSourceLine(line)
	if err == nil {
		var r Repo
		if r, err = NewRepo(src); err == nil {
			return r, nil
		}
	}
	return Repo{}, fmt.Errorf("%q: %w", snapshots.Redact(line), err)
}

// ReadSourcesFile reads the repositories of a deb822 .sources file and
// their keyrings. Errors name the file.
func ReadSourcesFile(file string) ([]Repo, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, pathless(err))
	}
	defer f.Close()
	srcs, err := ParseSources(f, file)
	if err != nil {
		return nil, err
	}
	var repos []Repo
	for _, src := range srcs {
		r, err := NewRepo(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		repos = append(repos, r)
	}
	return repos, nil
}

// CheckRepos refuses repositories whose keys would collide in the image:
// repositories sharing a name share a sources file, and so their key.
func CheckRepos(repos []Repo) error {
	for i, r := range repos {
		for _, q := range repos[:i] {
			if q.Name == r.Name && (q.KeyPath != r.KeyPath || !bytes.Equal(q.Key, r.Key)) {
				return fmt.Errorf("repositories %s and %s: different keys named %q; give the key files different names", q.URIs[0], r.URIs[0], r.Name)
			}
			if q.Name != r.Name && q.KeyPath == r.KeyPath && !bytes.Equal(q.Key, r.Key) {
				return fmt.Errorf("repositories %s and %s: different keys for %s", q.URIs[0], r.URIs[0], r.KeyPath)
			}
		}
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// NewRepo reads src's keyring and names the repository after it.
func NewRepo(src Source) (Repo, error) {
	r := Repo{Source: src}
	var data []byte
	if strings.HasPrefix(src.SignedBy, "-----BEGIN PGP") {
		// deb822's inline key: named after the first URI's host.
		data = []byte(src.SignedBy + "\n")
		h := src.URIs[0]
		if i := strings.Index(h, "://"); i >= 0 {
			h = h[i+3:]
		}
		h, _, _ = strings.Cut(h, "/")
		h, _, _ = strings.Cut(h, ":")
		r.Name = h
	} else {
		var err error
		if data, err = os.ReadFile(src.SignedBy); err != nil {
			return Repo{}, fmt.Errorf("signed-by: %w", err)
		}
		base := filepath.Base(src.SignedBy)
		r.Name = strings.TrimSuffix(base, path.Ext(base))
	}
	r.Name = strings.Trim(unsafeName.ReplaceAllString(r.Name, "-"), "-.")
	switch r.Name {
	case "":
		r.Name = "repository"
	case "debian":
		// sources.list.d/debian.sources is the image's own.
		r.Name = "debian-extra"
	}
	// The image gets the keys' public parts as parsed, never the bytes
	// given.
	var err error
	if r.keyring, err = ReadKeyring(data); err != nil {
		return Repo{}, fmt.Errorf("signed-by %s: %w", keyName(src.SignedBy), err)
	}
	if r.Key, err = PublicKeyring(r.keyring); err != nil {
		return Repo{}, fmt.Errorf("signed-by %s: %w", keyName(src.SignedBy), err)
	}
	r.KeyPath = keyringDir + r.Name + ".gpg"
	if p := path.Clean(src.SignedBy); path.Dir(p)+"/" == keyringDir && path.Ext(p) == ".gpg" {
		r.KeyPath = p
	}
	return r, nil
}

// keyName is how errors name a signed-by value: the path, or "(inline key)".
func keyName(signedBy string) string {
	if strings.HasPrefix(signedBy, "-----BEGIN PGP") {
		return "(inline key)"
	}
	return signedBy
}

// Repositories returns the apt repositories of r used for arch: one per
// URI and suite, each with r's keyring. A repository restricted to other
// architectures gives none.
func (r *Repo) RepositoriesFor(arch string) []Repository {
	if len(r.Architectures) > 0 && !slices.Contains(r.Architectures, arch) {
		return nil
	}
	repos := r.Source.Repositories()
	for i := range repos {
		repos[i].Keyring = r.keyring
	}
	return repos
}

// Line is r as a one-line source with its key in the image, and the key's
// SHA-256: what the image's inputs record of it.
func (r *Repo) Line() string {
	opts := "signed-by=" + r.KeyPath
	if len(r.Architectures) > 0 {
		opts += " arch=" + strings.Join(r.Architectures, ",")
	}
	sum := sha256.Sum256(r.Key)
	return fmt.Sprintf("deb [%s] %s %s %s key:sha256:%s", opts, strings.Join(r.URIs, ","), strings.Join(r.Suites, ","),
		strings.Join(r.Components, " "), hex.EncodeToString(sum[:]))
}

// A File is one that apt in the image reads: a key, a sources file,
// preferences.
type File struct {
	Path string // absolute, in the image
	Data []byte
}

// ImageFiles returns the files the image gets for repos: each key, and one
// deb822 sources file per name, its stanzas in the order given.
func ImageFiles(repos []Repo) []File {
	var files []File
	byName := map[string]*bytes.Buffer{}
	var names []string
	for _, r := range repos {
		if !slices.ContainsFunc(files, func(f File) bool { return f.Path == r.KeyPath }) {
			files = append(files, File{Path: r.KeyPath, Data: r.Key})
		}
		b := byName[r.Name]
		if b == nil {
			b = &bytes.Buffer{}
			byName[r.Name] = b
			names = append(names, r.Name)
		} else {
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n", strings.Join(r.URIs, " "), strings.Join(r.Suites, " "), strings.Join(r.Components, " "))
		if len(r.Architectures) > 0 {
			fmt.Fprintf(b, "Architectures: %s\n", strings.Join(r.Architectures, " "))
		}
		fmt.Fprintf(b, "Signed-By: %s\n", r.KeyPath)
	}
	for _, n := range names {
		files = append(files, File{Path: "/etc/apt/sources.list.d/" + n + ".sources", Data: byName[n].Bytes()})
	}
	return files
}

// PreferencesFile is --apt-preferences FILE[:NAME]: an apt_preferences(5)
// file the resolution honours, installed in the image as
// /etc/apt/preferences.d/NAME.
type PreferencesFile struct {
	Name  string
	Data  []byte
	Prefs *Preferences
}

// DefaultPreferencesName is the name --apt-preferences installs its file
// under in /etc/apt/preferences.d.
const DefaultPreferencesName = "basebuild"

// apt reads the files of preferences.d named so, and ignores others.
var preferencesName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// ReadPreferencesFile reads --apt-preferences FILE[:NAME].
func ReadPreferencesFile(arg string) (*PreferencesFile, error) {
	file, name := arg, DefaultPreferencesName
	if i := strings.LastIndex(arg, ":"); i >= 0 {
		file, name = arg[:i], arg[i+1:]
	}
	ext := path.Ext(name)
	if !preferencesName.MatchString(name) || (ext != "" && ext != ".pref") || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("%q: NAME %q: apt reads only names of letters, digits, _, - and ., with no extension or .pref", arg, name)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, pathless(err))
	}
	prefs, err := ParsePreferences(bytes.NewReader(data), file)
	if err != nil {
		return nil, err
	}
	return &PreferencesFile{Name: name, Data: data, Prefs: prefs}, nil
}

// File is the file the image holds.
func (p *PreferencesFile) File() File { return File{p.Path(), p.Data} }

// Path is where the image holds the file.
func (p *PreferencesFile) Path() string { return "/etc/apt/preferences.d/" + p.Name }

// Digest is the SHA-256 of the file's content.
func (p *PreferencesFile) Digest() string {
	sum := sha256.Sum256(p.Data)
	return hex.EncodeToString(sum[:])
}

// pathless drops a PathError's operation and path: the caller names the
// file as the user gave it.
func pathless(err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
