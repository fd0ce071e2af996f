package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/rootfs"
)

// A Repo is an extra apt repository (--repo, --sources), such as an
// organisation's own. Its suites are verified with its own keyring, as
// Debian's are with theirs, and its packages join the resolution; the
// image gets its sources and key, so that apt inside the image trusts it.
type Repo struct {
	apt.Source
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

// LoadRepos parses --repo lines and --sources files and reads each
// repository's keyring. The errors name the flag and its value.
func LoadRepos(lines, sourcesFiles []string) ([]Repo, error) {
	var repos []Repo
	for _, line := range lines {
		src, err := apt.ParseSourceLine(line)
		if err != nil {
			return nil, fmt.Errorf("--repo %q: %w", apt.Redact(line), err)
		}
		r, err := newRepo(src)
		if err != nil {
			return nil, fmt.Errorf("--repo %q: %w", apt.Redact(line), err)
		}
		repos = append(repos, r)
	}
	for _, file := range sourcesFiles {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--sources: %w", err)
		}
		srcs, err := apt.ParseSources(f, file)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--sources: %w", err)
		}
		for _, src := range srcs {
			r, err := newRepo(src)
			if err != nil {
				return nil, fmt.Errorf("--sources %s: %w", file, err)
			}
			repos = append(repos, r)
		}
	}
	// Repositories sharing a name share a sources file, and so their key.
	for i, r := range repos {
		for _, q := range repos[:i] {
			if q.Name == r.Name && (q.KeyPath != r.KeyPath || !bytes.Equal(q.Key, r.Key)) {
				return nil, fmt.Errorf("repositories %s and %s: different keys named %q; give the key files different names", q.URIs[0], r.URIs[0], r.Name)
			}
			if q.Name != r.Name && q.KeyPath == r.KeyPath && !bytes.Equal(q.Key, r.Key) {
				return nil, fmt.Errorf("repositories %s and %s: different keys for %s", q.URIs[0], r.URIs[0], r.KeyPath)
			}
		}
	}
	return repos, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// newRepo reads src's keyring and names the repository after it.
func newRepo(src apt.Source) (Repo, error) {
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
	if r.keyring, err = apt.ReadKeyring(data); err != nil {
		return Repo{}, fmt.Errorf("signed-by %s: %w", keyName(src.SignedBy), err)
	}
	if r.Key, err = apt.PublicKeyring(r.keyring); err != nil {
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

// repositories returns the apt repositories of r used for arch: one per
// URI and suite, each with r's keyring. A repository restricted to other
// architectures gives none.
func (r *Repo) repositories(arch string) []apt.Repository {
	if len(r.Architectures) > 0 && !slices.Contains(r.Architectures, arch) {
		return nil
	}
	repos := r.Source.Repositories()
	for i := range repos {
		repos[i].Keyring = r.keyring
	}
	return repos
}

// line is r as a one-line source with its key in the image, and the key's
// SHA-256: what the image's inputs record of it.
func (r *Repo) line() string {
	opts := "signed-by=" + r.KeyPath
	if len(r.Architectures) > 0 {
		opts += " arch=" + strings.Join(r.Architectures, ",")
	}
	sum := sha256.Sum256(r.Key)
	return fmt.Sprintf("deb [%s] %s %s %s key:sha256:%s", opts, strings.Join(r.URIs, ","), strings.Join(r.Suites, ","),
		strings.Join(r.Components, " "), hex.EncodeToString(sum[:]))
}

// repoFiles returns the files the image gets for repos: each key, and one
// deb822 sources file per name, its stanzas in the order given.
func repoFiles(repos []Repo) []rootfs.ConfigFile {
	var files []rootfs.ConfigFile
	byName := map[string]*bytes.Buffer{}
	var names []string
	for _, r := range repos {
		if !slices.ContainsFunc(files, func(f rootfs.ConfigFile) bool { return f.Path == r.KeyPath }) {
			files = append(files, rootfs.ConfigFile{Path: r.KeyPath, Data: r.Key})
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
		files = append(files, rootfs.ConfigFile{Path: "/etc/apt/sources.list.d/" + n + ".sources", Data: byName[n].Bytes()})
	}
	return files
}

// AptPreferences is --apt-preferences FILE[:NAME]: an apt_preferences(5)
// file the resolution honours, installed in the image as
// /etc/apt/preferences.d/NAME.
type AptPreferences struct {
	Name  string
	Data  []byte
	Prefs *apt.Preferences
}

// DefaultPreferencesName is the name --apt-preferences installs its file
// under in /etc/apt/preferences.d.
const DefaultPreferencesName = "basebuild"

// apt reads the files of preferences.d named so, and ignores others.
var preferencesName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// ParseAptPreferences reads --apt-preferences FILE[:NAME].
func ParseAptPreferences(arg string) (*AptPreferences, error) {
	file, name := arg, DefaultPreferencesName
	if i := strings.LastIndex(arg, ":"); i >= 0 {
		file, name = arg[:i], arg[i+1:]
	}
	ext := path.Ext(name)
	if !preferencesName.MatchString(name) || (ext != "" && ext != ".pref") || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("--apt-preferences %q: NAME %q: apt reads only names of letters, digits, _, - and ., with no extension or .pref", arg, name)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--apt-preferences: %w", err)
	}
	prefs, err := apt.ParsePreferences(bytes.NewReader(data), file)
	if err != nil {
		return nil, fmt.Errorf("--apt-preferences: %w", err)
	}
	return &AptPreferences{Name: name, Data: data, Prefs: prefs}, nil
}

// path is where the image holds the file.
func (p *AptPreferences) path() string { return "/etc/apt/preferences.d/" + p.Name }

// digest is the SHA-256 of the file's content.
func (p *AptPreferences) digest() string {
	sum := sha256.Sum256(p.Data)
	return hex.EncodeToString(sum[:])
}
