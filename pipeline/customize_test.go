package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/rootfs"
)

func TestFingerprintDefaultHasNoCustomizeLines(t *testing.T) {
	o, set := fingerprintInputs()
	for l := range strings.Lines(o.Inputs(set)) {
		for _, key := range []string{"apt-conf", "copy", "customize"} {
			if strings.HasPrefix(l, key) {
				t.Errorf("default inputs have %q", l)
			}
		}
	}
	if got := o.createdBy(); strings.Contains(got, "--copy") || strings.Contains(got, "--apt-conf") || strings.Contains(got, "--customize") {
		t.Errorf("default createdBy %q", got)
	}
}

func TestFingerprintCustomizeLines(t *testing.T) {
	src := testenv.CopySource(t)
	c, err := rootfs.ParseCopy(src + ":/opt/site")
	if err != nil {
		t.Fatal(err)
	}
	o, set := fingerprintInputs()
	o.AptConf = []string{`APT::Install-Recommends "false";`, `APT::Get::Assume-Yes "true";`}
	o.Copies = []rootfs.Copy{c}
	o.Customize = []string{"echo hi > /etc/site-hook", "curl -H 'Authorization: Bearer s3cret' https://site/x"}
	in := o.Inputs(set)
	for _, want := range []string{
		"apt-conf.1 APT::Install-Recommends \"false\";\n",
		"apt-conf.2 APT::Get::Assume-Yes \"true\";\n",
		"copy.1 /opt/site sha256:",
		"customize.1 sha256:9327fa41865474d9fa0eb2f35c2c0271c0a859e252c7b7c594dac2bcbee72860\n",
	} {
		if !strings.Contains(in, want) {
			t.Errorf("inputs lack %q:\n%s", want, in)
		}
	}
	if strings.Contains(in, src) {
		t.Errorf("inputs record the host path %s:\n%s", src, in)
	}
	cb := o.createdBy()
	for _, want := range []string{`--apt-conf 'APT::Install-Recommends "false";'`, "--copy sha256:", ":/opt/site", "--customize sha256:9327fa41865474d9fa0eb2f35c2c0271c0a859e252c7b7c594dac2bcbee72860 --customize sha256:"} {
		if !strings.Contains(cb, want) {
			t.Errorf("createdBy %q lacks %q", cb, want)
		}
	}
	// A hook's text may hold a secret: only its digest is recorded.
	for _, s := range []string{"s3cret", "site-hook"} {
		if strings.Contains(in, s) || strings.Contains(cb, s) {
			t.Errorf("inputs or createdBy record hook text %q:\n%s\n%s", s, in, cb)
		}
	}
	base := Fingerprint(in)

	rescan := func(t *testing.T) string {
		t.Helper()
		c, err := rootfs.ParseCopy(src + ":/opt/site")
		if err != nil {
			t.Fatal(err)
		}
		o.Copies = []rootfs.Copy{c}
		return Fingerprint(o.Inputs(set))
	}
	// Times after the epoch are clamped to it: touching the source
	// changes nothing.
	if err := os.Chtimes(filepath.Join(src, "index.html"), time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	touched := rescan(t)
	if err := os.Chtimes(filepath.Join(src, "index.html"), set.Epoch, set.Epoch); err != nil {
		t.Fatal(err)
	}
	if atEpoch := rescan(t); touched != atEpoch {
		t.Errorf("a time after the epoch changes the fingerprint")
	}
	if touched == base {
		t.Errorf("an older time moved to the epoch leaves the fingerprint")
	}
	changes := map[string]func(){
		"content": func() { os.WriteFile(filepath.Join(src, "index.html"), []byte("bye\n"), 0o644) },
		"mode":    func() { os.Chmod(filepath.Join(src, "sub", "run"), 0o755) },
		"link":    func() { os.Remove(filepath.Join(src, "run")); os.Symlink("sub", filepath.Join(src, "run")) },
		"name":    func() { os.Rename(filepath.Join(src, "sub"), filepath.Join(src, "bin")) },
	}
	seen := map[string]string{touched: "touched"}
	for _, what := range []string{"content", "mode", "link", "name"} {
		changes[what]()
		fp := rescan(t)
		if prev, ok := seen[fp]; ok {
			t.Errorf("changing the copy's %s gives the fingerprint of %s", what, prev)
		}
		seen[fp] = what
	}
	o.Copies = nil
	for what, f := range map[string]func(){
		"apt-conf order": func() { o.AptConf[0], o.AptConf[1] = o.AptConf[1], o.AptConf[0] },
		"hook":           func() { o.Customize = []string{"echo ho > /etc/site-hook"} },
	} {
		before := Fingerprint(o.Inputs(set))
		f()
		if Fingerprint(o.Inputs(set)) == before {
			t.Errorf("changing the %s leaves the fingerprint", what)
		}
	}
}
