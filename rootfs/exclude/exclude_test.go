package exclude

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/basebuild/basebuild/internal/testenv"
)

const debuerreotypeScripts = "/usr/share/debuerreotype/scripts"

func TestMatch(t *testing.T) {
	for name, want := range map[string]bool{
		"./dev/null":                          true,
		"./dev/pts/0":                         true,
		"./dev":                               false,
		"./dev2/x":                            false,
		"./var/cache/apt/sub/x.bin":           true,
		"./var/cache/apt":                     false,
		"./var/lib/apt/lists/x_InRelease":     true,
		"./var/lib/apt/listsx":                false,
		"./run/motd.dynamic":                  true,
		"./run/motd.dynamicx":                 false,
		"./run/motd.dynamic/x":                false,
		"./debuerreotype-epoch":               true,
		"debuerreotype-epoch":                 false, // not a tree name
		"./var/lib/systemd/catalog/database":  true,
		"./etc/passwd":                        false,
		"./var/log/apt/eipp.log.xz":           false,
		"./var/cache/apt/archives/partial/x":  true,
		"./var/cache/apt/archives/partial":    true,
		"./usr/share/doc/dev/proc/sys/x":      false,
		"./var/state/apt/lists/lock":          true,
		"./etc/apt/apt.conf.d/01autoremove-k": false,
	} {
		if got := Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}

// The list is debuerreotype-tar's: every pattern of its .tar-exclude and
// of its own is one of Files or below one of Contents ("DIR/**"), and
// every entry of the list comes from one.
func TestDebuerreotype(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(debuerreotypeScripts, ".tar-exclude"))
	if err != nil {
		testenv.Missing(t, "no debuerreotype: %v", err)
	}
	var patterns []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	script, err := os.ReadFile(filepath.Join(debuerreotypeScripts, "debuerreotype-tar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"./var/cache/apt/**", "./var/lib/apt/lists/**", "./var/state/apt/lists/**", "./dev/**"} {
		if !bytes.Contains(script, []byte("'"+p+"'")) {
			t.Errorf("debuerreotype-tar no longer excludes %s", p)
		}
		patterns = append(patterns, p)
	}
	used := map[string]bool{}
	for _, p := range patterns {
		rel := strings.TrimPrefix(p, "./")
		if dir, ok := strings.CutSuffix(rel, "/**"); ok {
			if !slices.Contains(Contents, dir) {
				t.Errorf("%s: %s not in Contents", p, dir)
			}
			used[dir] = true
			continue
		}
		if slices.Contains(Files, rel) {
			used[rel] = true
			continue
		}
		// A narrower pattern ("./var/cache/apt/*.bin"): within a
		// directory whose contents are out.
		covered := false
		for _, dir := range Contents {
			covered = covered || strings.HasPrefix(rel, dir+"/")
		}
		if !covered {
			t.Errorf("%s: not in Files, nor below one of Contents", p)
		}
	}
	for _, l := range [][]string{Files, Contents} {
		for _, name := range l {
			if !used[name] {
				t.Errorf("%s is no exclusion of debuerreotype's", name)
			}
		}
	}
}
