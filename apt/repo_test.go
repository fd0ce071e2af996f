package apt

import (
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/basebuild/basebuild/internal/apttest"
)

func TestParseRepo(t *testing.T) {
	key, binPath := apttest.NewKey(t)
	dir := t.TempDir()
	bin, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	var arm bytes.Buffer
	w, _ := armor.Encode(&arm, openpgp.PublicKeyType, nil)
	key.Serialize(w)
	w.Close()
	binKey := filepath.Join(dir, "acme-archive.gpg")
	ascKey := filepath.Join(dir, "other.asc")
	os.WriteFile(binKey, bin, 0o644)
	os.WriteFile(ascKey, arm.Bytes(), 0o644)
	sources := filepath.Join(dir, "inline.sources")
	inline := "Types: deb\nURIs: https://apt.inline.example:8443/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n"
	for _, l := range strings.Split(strings.TrimSpace(arm.String()), "\n") {
		if l == "" {
			l = "."
		}
		inline += " " + l + "\n"
	}
	os.WriteFile(sources, []byte(inline), 0o644)

	repos, err := loadRepos([]string{
		"deb [signed-by=" + binKey + "] http://apt.acme.example/debian bookworm main",
		"deb [signed-by=" + binKey + " arch=arm64] http://apt.acme.example/debian bookworm-updates main contrib",
		"deb [signed-by=" + ascKey + "] http://other.example/ stable main",
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main",
	}, []string{sources})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ name, keyPath string }{
		{"acme-archive", "/etc/apt/keyrings/acme-archive.gpg"},
		{"acme-archive", "/etc/apt/keyrings/acme-archive.gpg"},
		{"other", "/etc/apt/keyrings/other.gpg"},
		// A key of /usr/share/keyrings is a package's: not replaced.
		{"debian-archive-keyring", "/etc/apt/keyrings/debian-archive-keyring.gpg"},
		{"apt.inline.example", "/etc/apt/keyrings/apt.inline.example.gpg"},
	} {
		r := repos[i]
		if r.Name != want.name || r.KeyPath != want.keyPath {
			t.Errorf("repo %d: name %q, key %s; want %q, %s", i, r.Name, r.KeyPath, want.name, want.keyPath)
		}
		if len(r.keyring) == 0 {
			t.Errorf("repo %d: no keys", i)
		}
	}
	// Armored keys are written binary, as apt reads a .gpg file.
	for _, i := range []int{2, 4} {
		if !bytes.Equal(repos[i].Key, bin) {
			t.Errorf("repo %d: key not the binary keyring", i)
		}
	}
	if got := len(repos[1].RepositoriesFor("amd64")); got != 0 {
		t.Errorf("arch=arm64 repository used for amd64: %d", got)
	}
	if got := repos[1].RepositoriesFor("arm64"); len(got) != 1 || got[0].Suite != "bookworm-updates" || len(got[0].Components) != 2 {
		t.Errorf("arch=arm64 repository for arm64: %+v", got)
	}

	files := ImageFiles(repos[:3])
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
	}
	if want := "/etc/apt/keyrings/acme-archive.gpg /etc/apt/keyrings/other.gpg /etc/apt/sources.list.d/acme-archive.sources /etc/apt/sources.list.d/other.sources"; strings.Join(names, " ") != want {
		t.Errorf("files %s, want %s", strings.Join(names, " "), want)
	}
	wantSources := "Types: deb\nURIs: http://apt.acme.example/debian\nSuites: bookworm\nComponents: main\nSigned-By: /etc/apt/keyrings/acme-archive.gpg\n\n" +
		"Types: deb\nURIs: http://apt.acme.example/debian\nSuites: bookworm-updates\nComponents: main contrib\nArchitectures: arm64\nSigned-By: /etc/apt/keyrings/acme-archive.gpg\n"
	if got := string(files[2].Data); got != wantSources {
		t.Errorf("acme-archive.sources:\n%s\nwant\n%s", got, wantSources)
	}

	// debian.sources is the image's own.
	debianKey := filepath.Join(dir, "debian.gpg")
	os.WriteFile(debianKey, bin, 0o644)
	if rs, err := loadRepos([]string{"deb [signed-by=" + debianKey + "] http://a.example/ bookworm contrib"}, nil); err != nil || rs[0].Name != "debian-extra" {
		t.Errorf("a key named debian: %v", err)
	}

	// Two different keys by one name.
	other, _ := apttest.NewKey(t)
	var ob bytes.Buffer
	other.Serialize(&ob)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "acme-archive.gpg"), ob.Bytes(), 0o644)
	_, err = loadRepos([]string{
		"deb [signed-by=" + binKey + "] http://a.example/ bookworm main",
		"deb [signed-by=" + filepath.Join(sub, "acme-archive.gpg") + "] http://b.example/ bookworm main",
	}, nil)
	if err == nil || !strings.Contains(err.Error(), `different keys named "acme-archive"`) {
		t.Errorf("two keys by one name: %v", err)
	}
	// A file that is no keyring.
	_, err = loadRepos([]string{"deb [signed-by=" + sources + "] http://a.example/ bookworm main"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), `"deb [signed-by=`+sources) {
		t.Errorf("not a keyring: %v", err)
	}
}

// TestLoadReposSecretKey: a signed-by keyring holding a secret key, binary
// or armored, by path or inline, is refused with one line naming it and
// showing nothing of the key.
func TestLoadReposSecretKey(t *testing.T) {
	key, _ := apttest.NewKey(t)
	var bin, arm bytes.Buffer
	if err := key.SerializePrivate(&bin, nil); err != nil {
		t.Fatal(err)
	}
	w, _ := armor.Encode(&arm, openpgp.PrivateKeyType, nil)
	w.Write(bin.Bytes())
	w.Close()
	dir := t.TempDir()
	binKey := filepath.Join(dir, "acme.gpg")
	ascKey := filepath.Join(dir, "acme.asc")
	os.WriteFile(binKey, bin.Bytes(), 0o600)
	os.WriteFile(ascKey, arm.Bytes(), 0o600)
	sources := filepath.Join(dir, "acme.sources")
	os.WriteFile(sources, []byte("Types: deb\nURIs: https://apt.acme.example/debian\nSuites: bookworm\nComponents: main\nSigned-By: "+binKey+"\n"), 0o644)
	inline := filepath.Join(dir, "inline.sources")
	text := "Types: deb\nURIs: https://apt.acme.example/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n"
	for _, l := range strings.Split(strings.TrimSpace(arm.String()), "\n") {
		text += " " + cmp.Or(l, ".") + "\n"
	}
	os.WriteFile(inline, []byte(text), 0o644)

	const secret = ": holds a secret key: give the public keys only"
	for _, tc := range []struct {
		lines, sources []string
		want           string
	}{
		{[]string{"deb [signed-by=" + binKey + "] https://apt.acme.example/debian bookworm main"}, nil,
			`"deb [signed-by=` + binKey + `] https://apt.acme.example/debian bookworm main": signed-by ` + binKey + secret},
		{[]string{"deb [signed-by=" + ascKey + "] https://apt.acme.example/debian bookworm main"}, nil,
			`"deb [signed-by=` + ascKey + `] https://apt.acme.example/debian bookworm main": signed-by ` + ascKey + secret},
		{nil, []string{sources}, sources + ": signed-by " + binKey + secret},
		{nil, []string{inline}, inline + ": signed-by (inline key)" + secret},
	} {
		_, err := loadRepos(tc.lines, tc.sources)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q %q: got %v, want %s", tc.lines, tc.sources, err, tc.want)
		}
	}
}

// loadRepos reads repositories as the command line does: --repo lines,
// then --sources files, then checks them together.
func loadRepos(lines, files []string) ([]Repo, error) {
	var repos []Repo
	for _, line := range lines {
		r, err := ParseRepo(line)
		if err != nil {
			return nil, err
		}
		repos = append(repos, r)
	}
	for _, file := range files {
		rs, err := ReadSourcesFile(file)
		if err != nil {
			return nil, err
		}
		repos = append(repos, rs...)
	}
	return repos, CheckRepos(repos)
}
