package apttest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Apt runs the host's apt (apt-get, apt-cache) on sources, preferences
// and a dpkg status file of a test's own, in a directory of its own and
// with none of the host's apt configuration: real apt's answer to compare
// with. The apt package is on every Debian system.
type Apt struct {
	t    testing.TB
	conf string
}

// NewApt sets up apt for sources (one-line sources.list entries, each
// with its signed-by), prefs (an apt_preferences(5) file, or "") and
// status (dpkg status stanzas: the installed packages) for amd64, and
// runs apt-get update.
func NewApt(t testing.TB, sources, prefs, status string) *Apt {
	t.Helper()
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Fatalf("apttest: %v (the apt package is on every Debian system)", err)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{"sources.list": sources, "preferences": prefs, "status": status} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"empty", "lists/partial", "cache/archives/partial", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`Dir::Etc::Parts "%[1]s/empty";
Dir::Etc::SourceList "%[1]s/sources.list";
Dir::Etc::SourceParts "%[1]s/empty";
Dir::Etc::Preferences "%[1]s/preferences";
Dir::Etc::PreferencesParts "%[1]s/empty";
Dir::Etc::TrustedParts "%[1]s/empty";
Dir::State::Lists "%[1]s/lists";
Dir::State::status "%[1]s/status";
Dir::Cache "%[1]s/cache";
Dir::Log "%[1]s/log";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
Acquire::Check-Valid-Until "false";
APT::Sandbox::User "root";
Debug::NoLocking "true";
`, dir)
	a := &Apt{t: t, conf: filepath.Join(dir, "apt.conf")}
	if err := os.WriteFile(a.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	a.Run("apt-get", "update", "-qq")
	return a
}

// Run runs an apt command and returns its standard output, failing the
// test if it fails or warns.
func (a *Apt) Run(args ...string) []byte {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "APT_CONFIG="+a.conf, "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || bytes.Contains(stderr.Bytes(), []byte("W: ")) || bytes.Contains(stderr.Bytes(), []byte("E: ")) {
		a.t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}
