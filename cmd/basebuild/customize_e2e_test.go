package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/rootfs"
)

// TestCustomizeBookworm builds bookworm's rootfs with --apt-conf, --copy
// and --customize, and beside it one whose hook fails, through the binary.
func TestCustomizeBookworm(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.SnapshotServer(t)
	start := time.Now()
	src := filepath.Join(t.TempDir(), "site")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "bin"), 0o750))
	must(os.Chmod(filepath.Join(src, "bin"), 0o750))
	must(os.Chmod(src, 0o755))
	must(os.WriteFile(filepath.Join(src, "index.html"), []byte("<p>site</p>\n"), 0o640))
	must(os.Chmod(filepath.Join(src, "index.html"), 0o640))
	must(os.WriteFile(filepath.Join(src, "bin", "serve"), []byte("#!/bin/sh\necho serving\n"), 0o755))
	must(os.Chmod(filepath.Join(src, "bin", "serve"), 0o755))
	must(os.Symlink("bin/serve", filepath.Join(src, "serve")))
	// A host file not owned by root comes out root-owned.
	must(os.Chown(filepath.Join(src, "index.html"), 1000, 1000))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "bin", "serve"), old, old))

	common := []string{"--suite", "bookworm", "--arch", "amd64", "--cache-dir", sharedCache}

	t.Run("bad-copy", func(t *testing.T) {
		for arg, want := range map[string]string{
			src + "/missing:/opt/x": "missing",
			src + ":/../etc":        "escapes",
			src + ":opt/x":          "absolute",
			src:                     "SRC:DST",
		} {
			dir := filepath.Join(t.TempDir(), "rootfs")
			_, _, err := runCLI(t, append(common, "--rootfs", dir, "--copy", arg)...)
			oneLineError(t, "--copy "+arg, err, want)
			if !errors.Is(err, errUsage) {
				t.Errorf("--copy %s: %v is not a usage error (exit status 2)", arg, err)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("--copy %s: %s made", arg, dir)
			}
		}
	})

	t.Run("group", func(t *testing.T) {
		t.Run("failing-hook", func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			dir := filepath.Join(parent, "rootfs")
			_, stderr, err := runBinary(t, append(common, "--rootfs", dir, "--customize", "echo bad; exit 3")...)
			oneLineError(t, "failing hook", err, "exit status 3")
			// "bad" is in the command too: the last line of output ends the error.
			oneLineError(t, "failing hook", err, "exit status 3: bad")
			oneLineError(t, "failing hook", err, `customize hook 1 (sha256:e25635c5e4a9571e8e852de871f7e9431a917c7b8ab72c461e9e19a56a954cea)`)
			if err != nil && strings.Contains(err.Error(), "exit 3") {
				t.Errorf("failing hook: the error quotes the hook's text: %v", err)
			}
			if exitCode(err) != 1 {
				t.Errorf("failing hook: exit status %d, want 1", exitCode(err))
			}
			checkNoLeftovers(t, parent)
			if t.Failed() {
				t.Logf("build log:\n%s", stderr)
			}
		})
		t.Run("customized", func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "rootfs")
			_, stderr, err := runBinary(t, append(common, "--rootfs", dir,
				"--apt-conf", `APT::Install-Recommends "false";`,
				"--apt-conf", `APT::Get::Assume-Yes "true";`,
				"--copy", src+":/opt/site",
				"--customize", "echo hi > /etc/site-hook",
				"--customize", "test -x /opt/site/serve && /opt/site/serve > /etc/site-served")...)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, stderr)
			}
			if mounts := mountsUnder(t, dir); len(mounts) > 0 {
				t.Fatalf("mounts left after the build: %v", mounts)
			}
			checkCustomized(t, dir, start, old)
		})
	})
}

func checkCustomized(t *testing.T, dir string, start, old time.Time) {
	for name, want := range map[string]string{
		"etc/apt/apt.conf.d/99basebuild": "APT::Install-Recommends \"false\";\nAPT::Get::Assume-Yes \"true\";\n",
		"opt/site/index.html":            "<p>site</p>\n",
		"opt/site/bin/serve":             "#!/bin/sh\necho serving\n",
		"etc/site-hook":                  "hi\n",
		"etc/site-served":                "serving\n",
	} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	hook, err := os.Lstat(filepath.Join(dir, "etc/site-hook"))
	if err != nil {
		t.Fatal(err)
	}
	epoch := hook.ModTime()
	if !epoch.Before(start) {
		t.Errorf("etc/site-hook's mtime %v not clamped to the epoch", epoch)
	}
	for rel, mode := range map[string]os.FileMode{
		"opt/site":            os.ModeDir | 0o755,
		"opt/site/index.html": 0o640,
		"opt/site/bin":        os.ModeDir | 0o750,
		"opt/site/bin/serve":  0o755,
		"opt/site/serve":      os.ModeSymlink | 0o777,
	} {
		fi, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: owner %d:%d, want 0:0", rel, st.Uid, st.Gid)
		}
		switch {
		case fi.ModTime().After(epoch):
			t.Errorf("%s: mtime %v after the epoch %v", rel, fi.ModTime(), epoch)
		case rel == "opt/site/bin/serve" && !fi.ModTime().Equal(old):
			t.Errorf("%s: mtime %v, want its source's %v", rel, fi.ModTime(), old)
		case rel != "opt/site/bin/serve" && !fi.ModTime().Equal(epoch):
			t.Errorf("%s: mtime %v, want the epoch %v", rel, fi.ModTime(), epoch)
		}
	}
	if target, _ := os.Readlink(filepath.Join(dir, "opt/site/serve")); target != "bin/serve" {
		t.Errorf("opt/site/serve links to %q, want bin/serve", target)
	}

	ch, err := rootfs.EnterChroot(context.Background(), dir, rootfs.ChrootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var out bytes.Buffer
	if err := ch.Run(context.Background(), &out, "/bin/sh", "-c", "apt-config dump | grep Install-Recommends"); err != nil {
		t.Fatalf("apt-config dump: %v\n%s", err, out.String())
	}
	if got := strings.TrimSpace(out.String()); got != `APT::Install-Recommends "false";` {
		t.Errorf("apt-config dump: %q, want APT::Install-Recommends \"false\";", got)
	}
}
