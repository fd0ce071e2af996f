package main

import (
	"archive/tar"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/pipeline"
	"github.com/basebuild/basebuild/rootfs"

	"github.com/basebuild/basebuild/internal/apttest"
	"github.com/basebuild/basebuild/internal/testenv"
)

// bootArchive serves a bookworm for archs (default amd64) that builds an
// image in seconds: a required package holding a static busybox as
// /bin/sh, and stand-ins for ldconfig and dpkg, which configuring runs in
// the chroot (busybox is the host's: a foreign image runs it natively).
// The host must be able to build each of archs.
func bootArchive(t *testing.T, archs ...string) *apttest.Archive {
	t.Helper()
	for _, arch := range archs {
		if err := rootfs.CheckArch(arch); err != nil {
			t.Fatal(err)
		}
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Missing(t, "%v: install busybox-static (scripts/install-deps.sh)", err)
	}
	files := []apttest.File{
		{Path: "bin/busybox", Mode: 0o755, Body: string(busybox)},
		{Path: "bin/sh", Type: tar.TypeSymlink, Linkname: "busybox"},
		{Path: "bin/sed", Type: tar.TypeSymlink, Linkname: "busybox"},
		{Path: "usr/sbin/ldconfig", Mode: 0o755, Body: "#!/bin/sh\n"},
		// dpkg --configure marks every package configured.
		{Path: "usr/bin/dpkg", Mode: 0o755, Body: "#!/bin/sh\nsed -i 's/^Status: install ok .*/Status: install ok installed/' /var/lib/dpkg/status\n"},
	}
	aptFiles := []apttest.File{{Path: "var/lib/apt/lists/", Type: tar.TypeDir}, {Path: "etc/apt/apt.conf.d/", Type: tar.TypeDir},
		{Path: "etc/apt/sources.list.d/", Type: tar.TypeDir}}
	if len(archs) == 0 {
		archs = []string{"amd64"}
	}
	var main, updates, security []apttest.Deb
	for _, arch := range archs {
		// Each suite lists each architecture.
		updates = append(updates, apttest.Deb{Name: "unrelated", Version: "1.0", Arch: arch})
		main = append(main,
			apttest.Deb{Name: "base-files", Version: "12.4", Arch: arch, Fields: map[string]string{"Priority": "required", "Essential": "yes"}, Files: files},
			apttest.Deb{Name: "apt", Version: "2.6.1", Arch: arch, Fields: map[string]string{"Priority": "important", "Depends": "libc6"}, Files: aptFiles},
			apttest.Deb{Name: "libc6", Version: "2.36-9", Arch: arch, Fields: map[string]string{"Priority": "optional"}})
		security = append(security, apttest.Deb{Name: "libc6", Version: "2.36-9+deb12u1", Arch: arch, Fields: map[string]string{"Priority": "optional"},
			Files: []apttest.File{{Path: "usr/share/doc/libc6/README", Body: "libc6\n"}}})
	}
	main = append(main, apttest.Deb{Name: "usr-is-merged", Version: "37", Arch: "all", Fields: map[string]string{"Priority": "optional"}})
	return apttest.New(t,
		apttest.Suite{Name: "bookworm-updates", Debs: updates},
		apttest.Suite{Name: "bookworm", Debs: main},
		apttest.Suite{Archive: "debian-security", Name: "bookworm-security", Debs: security},
	)
}

// TestInputs builds a lock of a live hermetic archive with
// --attach-inputs, pushed to the loopback registry and written to an oci:
// layout, then stops the archive. The lock and the cache the build filled
// build the same image --offline (each InRelease pinned by the lock), and
// verify --inputs-from rebuilds the image from what the registry, or the
// layout, holds alone: exit 0. Flags that disagree with the lock, a deb
// replaced in the layout and an image without inputs are refused with one
// line, exit 2.
func TestInputs(t *testing.T) {
	testenv.RequireRoot(t)
	registry := testenv.Registry(t)
	a := bootArchive(t)
	work := t.TempDir()
	flags := func(mirror string) []string {
		return []string{"--suite", "bookworm", "--mirror", mirror + "/debian", "--security-mirror", mirror + "/debian-security",
			"--keyring", a.KeyringPath, "--arch", "amd64"}
	}
	common := flags(a.Server.URL)
	// Only outputs that hold artifacts take them.
	_, _, err := runBinary(t, append(common, "--attach-inputs", "--output", "docker-archive:"+filepath.Join(work, "x.tar"))...)
	oneLineError(t, "--attach-inputs to docker-archive:", err, "--attach-inputs attaches an artifact, which only --push and --output oci:DIR hold")
	if code := exitCode(err); code != 2 {
		t.Errorf("--attach-inputs to docker-archive: exit %d, want 2", code)
	}
	cacheDir := filepath.Join(work, "cache")
	lock := filepath.Join(work, "bookworm.lock")
	if _, stderr, err := runBinary(t, append([]string{"lock", "--cache-dir", cacheDir, "-o", lock}, common...)...); err != nil {
		t.Fatalf("lock: %v\n%s", err, stderr)
	}
	ref := registry + "/inputs-" + strings.ToLower(rand.Text()[:8]) + "/debian:bookworm"
	layout := filepath.Join(work, "layout")
	out, stderr, err := runBinary(t, append(common, "--cache-dir", cacheDir, "--lock", lock, "--attach-inputs",
		"--push", ref, "--output", "oci:"+layout)...)
	if err != nil {
		t.Fatalf("--attach-inputs build: %v\n%s", err, stderr)
	}
	digest := lastLine(out)
	// Built before the archive stops: an image without inputs.
	bare := filepath.Join(work, "bare")
	if _, stderr, err := runBinary(t, append(common, "--cache-dir", cacheDir, "--output", "oci:"+bare)...); err != nil {
		t.Fatalf("build without inputs: %v\n%s", err, stderr)
	}

	// The artifact: the lock, 3 InRelease files, 3 indexes, 4 debs, each
	// a blob titled by its URL.
	src, err := oci.Open(t.Context(), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	art, err := src.Referrer(pipeline.InputsType)
	if err != nil {
		t.Fatal(err)
	}
	m, err := art.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, d := range m.Layers {
		count[string(d.MediaType)]++
		if d.Annotations[oci.AnnotationTitle] == "" {
			t.Errorf("blob %s has no title", d.Digest)
		}
	}
	want := map[string]int{string(pipeline.LockType): 1, string(pipeline.InReleaseType): 3, string(pipeline.IndexType): 3, string(pipeline.DebType): 4}
	for typ, n := range want {
		if count[typ] != n {
			t.Errorf("%d blobs of type %s, want %d (all: %v)", count[typ], typ, n, count)
		}
	}

	a.Close()
	// A live archive's lock and a filled cache need no network.
	out, stderr, err = runBinary(t, append(common, "--cache-dir", cacheDir, "--lock", lock, "--offline", "--output", "oci:"+filepath.Join(work, "offline"))...)
	if err != nil || lastLine(out) != digest {
		t.Errorf("--lock --offline with the archive stopped: %v, %s, want %s\n%s", err, lastLine(out), digest, stderr)
	}

	// From the registry; from the layout, with another mirror given:
	// the lock pins each suite's InRelease whatever its URL.
	for _, args := range [][]string{
		append(common, "--inputs-from", ref, ref),
		append(flags("http://127.0.0.1:9"), "--inputs-from", "oci:"+layout, "oci:"+layout),
	} {
		out, stderr, err := runBinary(t, append([]string{"verify"}, args...)...)
		if err != nil || !strings.Contains(out, "same image, "+digest) {
			t.Errorf("verify %s: %v\n%s%s", strings.Join(args[len(args)-3:], " "), err, out, stderr)
		}
	}

	// A deb replaced in a copy of the layout.
	tampered := filepath.Join(work, "tampered")
	if err := os.CopyFS(tampered, os.DirFS(layout)); err != nil {
		t.Fatal(err)
	}
	var deb string
	for _, d := range m.Layers {
		if d.MediaType == pipeline.DebType && strings.Contains(d.Annotations[oci.AnnotationTitle], "/libc6_") {
			deb = d.Annotations[oci.AnnotationTitle]
			if err := os.WriteFile(filepath.Join(tampered, "blobs", "sha256", d.Digest.Hex), make([]byte, d.Size), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(common, "--include", "usr-is-merged", "--inputs-from", ref, ref), "--inputs-from " + ref + `: --include: the lock has "", the command line "usr-is-merged"`},
		{append(common, "--inputs-from", "oci:"+tampered, "oci:"+tampered), "image oci:" + tampered + ": inputs: " + deb + ": blob sha256:"},
		{append(common, "--inputs-from", "oci:"+bare, "oci:"+bare), "no artifact attached of type " + pipeline.InputsType},
	} {
		_, _, err := runBinary(t, append([]string{"verify"}, tc.args...)...)
		oneLineError(t, tc.want, err, tc.want)
		if code := exitCode(err); code != 2 {
			t.Errorf("%s: exit %d, want 2", tc.want, code)
		}
	}
}

// TestInputsMultiArch builds an index of amd64 and arm64 with
// --attach-inputs: each image gets the inputs of its architecture, verify
// --inputs-from rebuilds the index, each image from its own inputs, from
// the layout alone, and verify --arch ARCH --inputs-from one image of it.
func TestInputsMultiArch(t *testing.T) {
	testenv.RequireRoot(t)
	archs := []string{"amd64", "arm64"}
	a := bootArchive(t, archs...)
	work := t.TempDir()
	common := []string{"--suite", "bookworm", "--mirror", a.URL("debian"), "--security-mirror", a.URL("debian-security"), "--keyring", a.KeyringPath}
	layout := "oci:" + filepath.Join(work, "layout")
	out, stderr, err := runBinary(t, append(common, "--arch", "amd64,arm64", "--cache-dir", filepath.Join(work, "cache"),
		"--attach-inputs", "--output", layout)...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	index := lastLine(out)
	a.Close()
	var digests []string
	for _, arch := range archs {
		p, err := oci.Platform(arch)
		if err != nil {
			t.Fatal(err)
		}
		src, err := oci.OpenPlatform(t.Context(), layout, false, &p)
		if err != nil {
			t.Fatal(err)
		}
		art, err := src.Referrer(pipeline.InputsType)
		if err != nil {
			t.Fatal(err)
		}
		m, err := art.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range m.Layers {
			title := d.Annotations[oci.AnnotationTitle]
			if d.MediaType == pipeline.DebType && !strings.HasSuffix(title, "_"+arch+".deb") && !strings.HasSuffix(title, "_all.deb") {
				t.Errorf("%s: inputs hold %s", arch, title)
			}
		}
		digests = append(digests, src.Digest.String())
	}
	// The whole index, each image from its own inputs; one image of it.
	out, stderr, err = runBinary(t, append([]string{"verify"}, append(common, "--inputs-from", layout, layout)...)...)
	if err != nil || !strings.Contains(out, layout+": same index, "+index+"\n") ||
		!strings.Contains(out, "(amd64): same image, "+digests[0]) || !strings.Contains(out, "(arm64): same image, "+digests[1]) {
		t.Errorf("verify --inputs-from of the index: %v\n%s%s", err, out, stderr)
	}
	out, stderr, err = runBinary(t, append([]string{"verify"}, append(common, "--arch", "arm64", "--inputs-from", layout, layout)...)...)
	if err != nil || out != layout+": same image, "+digests[1]+"\n" {
		t.Errorf("verify --arch arm64: %v\n%s%s", err, out, stderr)
	}
}

// TestInputsSnapshot builds bookworm from the snapshot server with
// --attach-inputs, pushed to the loopback registry, and verify
// --inputs-from rebuilds it from the registry alone, offline, with a
// snapshot server that does not answer.
func TestInputsSnapshot(t *testing.T) {
	server := testenv.SnapshotServer(t)
	testenv.RequireRoot(t)
	registry := testenv.Registry(t)
	flags := func(server string) []string {
		return []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot, "--snapshot-server", server}
	}
	ref := registry + "/inputs-" + strings.ToLower(rand.Text()[:8]) + "/debian:bookworm"
	start := time.Now()
	out, stderr, err := runBinary(t, append(flags(server), "--cache-dir", sharedCache, "--attach-inputs", "--push", ref)...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	digest := lastLine(out)
	t.Logf("build --attach-inputs --push: %s", time.Since(start).Round(100*time.Millisecond))
	src, err := oci.Open(t.Context(), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	art, err := src.Referrer(pipeline.InputsType)
	if err != nil {
		t.Fatal(err)
	}
	m, err := art.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	size := map[string]int64{}
	count := map[string]int{}
	for _, d := range m.Layers {
		size[string(d.MediaType)] += d.Size
		count[string(d.MediaType)]++
	}
	t.Logf("inputs: %v blobs, %v bytes by type", count, size)
	start = time.Now()
	out, stderr, err = runBinary(t, append([]string{"verify"}, append(flags("http://127.0.0.1:9"), "--inputs-from", ref, ref)...)...)
	if err != nil || !strings.Contains(out, "same image, "+digest) {
		t.Errorf("verify --inputs-from: %v\n%s%s", err, out, stderr)
	}
	t.Logf("verify --inputs-from: %s", time.Since(start).Round(100*time.Millisecond))
}
