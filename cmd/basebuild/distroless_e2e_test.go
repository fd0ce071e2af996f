package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/debian"
	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
)

// distrolessBuild is one distroless image the test built: its tree
// (--rootfs), its OCI layout and tag, its digest and its packages.
type distrolessBuild struct {
	tree, layout, tag, digest string
	packages                  []string // "name version arch", as --dry-run prints them
}

// buildDistroless builds suite's variant with flags, once as a tree and
// an image, from the host's mirror through the shared cache.
func buildDistroless(t *testing.T, suite, variant string, flags ...string) distrolessBuild {
	t.Helper()
	// podman names an image of an OCI layout after its path, which must
	// be lower case: t.TempDir's holds the test's name.
	dir, err := os.MkdirTemp("", "basebuild-distroless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	common := append([]string{"--suite", suite, "--arch", "amd64", "--cache-dir", sharedCache, "--variant", variant}, flags...)
	list, stderr, err := runBinary(t, append(common, "--dry-run")...)
	if err != nil {
		t.Fatalf("--variant %s --dry-run: %v\n%s", variant, err, stderr)
	}
	b := distrolessBuild{tree: filepath.Join(dir, "rootfs"), layout: filepath.Join(dir, "oci")}
	out, stderr, err := runBinary(t, append(common, "--rootfs", b.tree, "--output", "oci:"+b.layout)...)
	if err != nil {
		t.Fatalf("--variant %s: %v\n%s", variant, err, stderr)
	}
	b.packages = strings.Split(strings.TrimSuffix(list, "\n"), "\n")
	b.digest = lastLine(out)
	b.tag = debian.DistrolessTag(variant, suite, slices.Contains(flags, "--nonroot"))
	return b
}

// TestDistrolessBookworm builds each distroless variant of bookworm once
// and checks it against distroless's definition: the packages (distroless's
// and what they depend on), each one recorded in status.d with the sums
// of exactly the files the tree has, no dpkg status and no shell,
// distroless's generated files, the CA bundle byte for byte as the
// default image's update-ca-certificates makes it from the same archive,
// the image config; then that programs run in them under podman (a static
// Go binary in static, Debian's hello in base, a C++ program in cc), and
// that a rebuild gives the same digest.
func TestDistrolessBookworm(t *testing.T) {
	testenv.RequireRoot(t)
	podman := testenv.LookPath(t, "podman")
	testenv.LookPath(t, "runc")
	gxx := testenv.LookPath(t, "g++")
	bins := t.TempDir()

	// A static Go binary that reads the CA bundle, and a C++ program.
	gosrc := filepath.Join(bins, "gohello")
	if err := os.MkdirAll(gosrc, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(gosrc, "go.mod"), "module gohello\n\ngo 1.22\n")
	writeFile(t, filepath.Join(gosrc, "main.go"), `package main

import (
	"crypto/x509"
	"fmt"
	"os"
)

func main() {
	pool, err := x509.SystemCertPool()
	if err != nil || len(pool.Subjects()) == 0 {
		fmt.Println("no system certificates:", err)
		os.Exit(1)
	}
	wd, _ := os.Getwd()
	fmt.Printf("go: uid %d in %s\n", os.Getuid(), wd)
}
`)
	gobin := filepath.Join(bins, "gohello.bin")
	build := exec.Command("go", "build", "-o", gobin, ".")
	build.Dir, build.Env = gosrc, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cxxsrc := filepath.Join(bins, "hello.cc")
	writeFile(t, cxxsrc, "#include <iostream>\n#include <string>\nint main() { std::string s = \"c++\"; std::cout << s << \": hello\" << std::endl; }\n")
	cxxbin := filepath.Join(bins, "hello-cc")
	if out, err := exec.Command(gxx, "-O2", "-o", cxxbin, cxxsrc).CombinedOutput(); err != nil {
		t.Fatalf("g++: %v\n%s", err, out)
	}

	static := buildDistroless(t, "bookworm", debian.DistrolessStatic, "--nonroot", "--copy", gobin+":/usr/local/bin/gohello")
	builds := map[string]distrolessBuild{
		debian.DistrolessStatic:    static,
		debian.DistrolessBaseNoSSL: buildDistroless(t, "bookworm", debian.DistrolessBaseNoSSL),
		debian.DistrolessBase:      buildDistroless(t, "bookworm", debian.DistrolessBase, "--include", "hello"),
		debian.DistrolessCC:        buildDistroless(t, "bookworm", debian.DistrolessCC, "--copy", cxxbin+":/usr/local/bin/hello-cc"),
	}
	wantBundle := defaultCABundle(t, "bookworm")

	for _, variant := range debian.DistrolessVariants {
		b := builds[variant]
		t.Run(variant, func(t *testing.T) {
			// distroless's packages are there, and nothing outside their
			// closure: no shell, no dpkg, no debconf.
			want, _ := debian.DistrolessPackages(variant, "bookworm")
			var names []string
			for _, p := range b.packages {
				names = append(names, strings.Fields(p)[0])
			}
			for _, name := range want {
				if !slices.Contains(names, name) {
					t.Errorf("package %s missing from %v", name, names)
				}
			}
			for _, name := range slices.Concat(debian.ScriptOnlyPackages, []string{"bash", "dash", "coreutils", "libc-bin", "mawk", "openssl"}) {
				if slices.Contains(names, name) {
					t.Errorf("package %s installed: %v", name, names)
				}
			}
			if variant == debian.DistrolessStatic && slices.Contains(names, "libc6") {
				t.Errorf("static has libc6: %v", names)
			}
			checkDistrolessTree(t, b, "bookworm", wantBundle)
			checkDistrolessConfig(t, b, variant == debian.DistrolessStatic)
		})
	}

	// Scanners see every package, exactly, as Debian's.
	checkScanners(t, "bookworm", builds, builds[debian.DistrolessBase])

	run := func(b distrolessBuild, args ...string) string {
		t.Helper()
		return podmanRun(t, podman, "oci:"+b.layout+":"+b.tag, args...)
	}
	if got := run(static, "/usr/local/bin/gohello"); got != "go: uid 65532 in /home/nonroot\n" {
		t.Errorf("static: gohello printed %q", got)
	}
	if got := run(builds[debian.DistrolessBase], "/usr/bin/hello"); got != "Hello, world!\n" {
		t.Errorf("base: hello printed %q", got)
	}
	if got := run(builds[debian.DistrolessCC], "/usr/local/bin/hello-cc"); got != "c++: hello\n" {
		t.Errorf("cc: hello-cc printed %q", got)
	}

	// packages reads the attached manifest, diff compares two variants,
	// verify rebuilds one and finds it the same.
	out, stderr, err := runBinary(t, "packages", "oci:"+static.layout+":"+static.tag)
	if err != nil {
		t.Fatalf("packages: %v\n%s", err, stderr)
	}
	var listed []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		listed = append(listed, strings.Join(strings.Fields(l)[:3], " "))
	}
	if !slices.Equal(listed, static.packages) {
		t.Errorf("packages of static:\n%s\nwant\n%s", out, strings.Join(static.packages, "\n"))
	}
	nossl := builds[debian.DistrolessBaseNoSSL]
	out, stderr, err = runBinary(t, "diff", "oci:"+static.layout+":"+static.tag, "oci:"+nossl.layout+":"+nossl.tag)
	if err != nil || !strings.Contains(out, "+ libc6 ") || strings.Contains(out, "- ") {
		t.Errorf("diff static base-nossl: %v\n%s%s", err, out, stderr)
	}
	_, stderr, err = runBinary(t, "verify", "--suite", "bookworm", "--arch", "amd64", "--cache-dir", sharedCache, "--variant", debian.DistrolessStatic,
		"--nonroot", "--copy", gobin+":/usr/local/bin/gohello", "oci:"+static.layout+":"+static.tag)
	if err != nil {
		t.Errorf("verify static: %v\n%s", err, stderr)
	}

	// A program whose library the image lacks is refused, by name.
	_, _, err = runBinary(t, "--suite", "bookworm", "--arch", "amd64", "--cache-dir", sharedCache, "--variant", debian.DistrolessStatic,
		"--copy", cxxbin+":/usr/local/bin/hello-cc", "--output", "oci:"+filepath.Join(t.TempDir(), "oci"))
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "library check: /usr/local/bin/hello-cc needs its interpreter /lib64/ld-linux-x86-64.so.2, libstdc++.so.6") {
		t.Errorf("static with a C++ program: %v, want exit 1 naming the program and libstdc++.so.6", err)
	}

	// Reproducible: the same command line, another build, one digest.
	again := buildDistroless(t, "bookworm", debian.DistrolessStatic, "--nonroot", "--copy", gobin+":/usr/local/bin/gohello")
	if again.digest != static.digest {
		t.Errorf("rebuild of static: digest %s, first build %s", again.digest, static.digest)
	}
}

// defaultCABundle is the CA bundle update-ca-certificates made in the
// default image of suite with ca-certificates, from the same archive the
// distroless builds read.
func defaultCABundle(t *testing.T, suite string) []byte {
	t.Helper()
	def := filepath.Join(t.TempDir(), "rootfs")
	if _, stderr, err := runBinary(t, "--suite", suite, "--arch", "amd64", "--cache-dir", sharedCache, "--include", "ca-certificates", "--rootfs", def); err != nil {
		t.Fatalf("default image of %s: %v\n%s", suite, err, stderr)
	}
	bundle, err := os.ReadFile(filepath.Join(def, "etc/ssl/certs/ca-certificates.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return bundle
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// podmanRun runs args in image under podman with runc (crun does not
// work on the test hosts) and returns its stdout; the image is removed
// from podman's storage afterwards.
func podmanRun(t *testing.T, podman, image string, args ...string) string {
	t.Helper()
	// podman's default ulimits are above what the test hosts allow.
	base := []string{"--runtime", "runc", "--cgroup-manager=cgroupfs"}
	pull := exec.Command(podman, append(base, "pull", "-q", image)...)
	var pullErr bytes.Buffer
	pull.Stderr = &pullErr
	id, err := pull.Output()
	if err != nil {
		t.Fatalf("podman pull %s: %v\n%s", image, err, pullErr.String())
	}
	imageID := strings.TrimSpace(string(id))
	defer exec.Command(podman, append(base, "rmi", "-f", imageID)...).Run()
	cmd := exec.Command(podman, append(append(base, "run", "--rm", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", imageID), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("podman run %s %v: %v\n%s", image, args, err, stderr.String())
	}
	return stdout.String()
}

// checkDistrolessTree checks b's tree of the release codename as
// distroless makes it; wantBundle is the CA bundle.
func checkDistrolessTree(t *testing.T, b distrolessBuild, codename string, wantBundle []byte) {
	t.Helper()
	read := func(name string) []byte {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(b.tree, name))
		if err != nil {
			t.Error(err)
		}
		return data
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		"etc/group":  "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n",
		"etc/os-release": fmt.Sprintf(`PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="%[1]s"
VERSION="Debian GNU/Linux %[1]s (%[2]s)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"
BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"
`, debian.Version(codename), codename),
	}
	files["etc/ssl/certs/ca-certificates.crt"] = string(wantBundle)
	for name, want := range files {
		if got := string(read(name)); got != want {
			t.Errorf("%s differs:\n%s", name, lineDiff(want, got))
		}
	}
	if !bytes.Contains(read("etc/nsswitch.conf"), []byte("\nhosts:          files dns\n")) {
		t.Errorf("etc/nsswitch.conf: %q", read("etc/nsswitch.conf"))
	}
	for name, want := range map[string]struct {
		mode     fs.FileMode
		uid, gid uint32
	}{
		"root":                              {fs.ModeDir | 0o700, 0, 0},
		"home/nonroot":                      {fs.ModeDir | 0o700, 65532, 65532},
		"tmp":                               {fs.ModeDir | fs.ModeSticky | 0o777, 0, 0},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0},
		"usr/share/doc/ca-certificates/copyright": {0o644, 0, 0},
	} {
		fi, err := os.Lstat(filepath.Join(b.tree, name))
		if err != nil {
			t.Error(err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != want.mode || st.Uid != want.uid || st.Gid != want.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", name, fi.Mode(), st.Uid, st.Gid, want.mode, want.uid, want.gid)
		}
	}
	for _, name := range []string{"bin/sh", "usr/bin/sh", "bin/bash", "var/lib/dpkg/status", "usr/share/ca-certificates", "usr/sbin/update-ca-certificates", "etc/ca-certificates.conf"} {
		if _, err := os.Lstat(filepath.Join(b.tree, name)); err == nil {
			t.Errorf("%s is in the image", name)
		}
	}

	// status.d: the control file of each package and nothing else, and
	// sums that are exactly those of files present.
	entries, err := os.ReadDir(filepath.Join(b.tree, "var/lib/dpkg/status.d"))
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, e := range entries {
		name := e.Name()
		if sums, ok := strings.CutSuffix(name, ".md5sums"); ok {
			checkSums(t, b.tree, sums, read("var/lib/dpkg/status.d/"+name))
			continue
		}
		control := string(read("var/lib/dpkg/status.d/" + name))
		var version, arch string
		for line := range strings.Lines(control) {
			if v, ok := strings.CutPrefix(line, "Version: "); ok {
				version = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "Architecture: "); ok {
				arch = strings.TrimSpace(v)
			}
		}
		if !strings.HasPrefix(control, "Package: "+name+"\n") {
			t.Errorf("status.d/%s: %q", name, control)
		}
		recorded = append(recorded, name+" "+version+" "+arch)
	}
	if !slices.Equal(recorded, b.packages) {
		t.Errorf("status.d records\n%s\nthe build installed\n%s", strings.Join(recorded, "\n"), strings.Join(b.packages, "\n"))
	}
}

// checkSums checks that each line of pkg's md5sums names a regular file
// of tree with that sum.
func checkSums(t *testing.T, tree, pkg string, sums []byte) {
	t.Helper()
	if len(sums) == 0 {
		t.Errorf("status.d/%s.md5sums is empty", pkg)
	}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Errorf("status.d/%s.md5sums: line %q", pkg, sc.Text())
			continue
		}
		data, err := os.ReadFile(filepath.Join(tree, name))
		if err != nil {
			t.Errorf("status.d/%s.md5sums lists %s: %v", pkg, name, err)
			continue
		}
		if got := fmt.Sprintf("%x", md5.Sum(data)); got != sum {
			t.Errorf("status.d/%s.md5sums: %s has md5 %s, listed %s", pkg, name, got, sum)
		}
	}
}

// checkDistrolessConfig checks b's image config: distroless's, root in /,
// or nonroot in its home.
func checkDistrolessConfig(t *testing.T, b distrolessBuild, nonroot bool) {
	t.Helper()
	src, err := oci.Open(context.Background(), "oci:"+b.layout+":"+b.tag, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := src.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		User:       "0",
		WorkingDir: "/",
	}
	if nonroot {
		want.User, want.WorkingDir = "65532", "/home/nonroot"
	}
	got := cfg.Config
	if !slices.Equal(got.Env, want.Env) || got.User != want.User || got.WorkingDir != want.WorkingDir || got.Cmd != nil || got.Entrypoint != nil {
		t.Errorf("config: Env %q User %q WorkingDir %q Cmd %q Entrypoint %q; want Env %q User %q WorkingDir %q and no command",
			got.Env, got.User, got.WorkingDir, got.Cmd, got.Entrypoint, want.Env, want.User, want.WorkingDir)
	}
	if src.Digest.String() != b.digest {
		t.Errorf("%s: digest %s, the build printed %s", b.tag, src.Digest, b.digest)
	}
}

// TestDistrolessTrixie builds trixie's base, whose packages differ from
// bookworm's (libssl3t64, libzstd1, zlib1g, tzdata-legacy), with Debian's
// hello, and checks its tree (the CA bundle as the default trixie image's
// update-ca-certificates makes it), that syft and trivy list exactly its
// packages as Debian 13's, and that hello runs.
func TestDistrolessTrixie(t *testing.T) {
	testenv.RequireRoot(t)
	podman := testenv.LookPath(t, "podman")
	testenv.LookPath(t, "runc")
	b := buildDistroless(t, "trixie", debian.DistrolessBase, "--include", "hello")
	for _, name := range []string{"libssl3t64", "libzstd1", "zlib1g", "tzdata-legacy", "hello"} {
		if !slices.ContainsFunc(b.packages, func(p string) bool { return strings.HasPrefix(p, name+" ") }) {
			t.Errorf("package %s missing from %v", name, b.packages)
		}
	}
	checkDistrolessTree(t, b, "trixie", defaultCABundle(t, "trixie"))
	checkDistrolessConfig(t, b, false)
	checkScanners(t, "trixie", map[string]distrolessBuild{debian.DistrolessBase: b}, b)
	if got := podmanRun(t, podman, "oci:"+b.layout+":"+b.tag, "/usr/bin/hello"); got != "Hello, world!\n" {
		t.Errorf("hello printed %q", got)
	}
}

// TestDistrolessRefusesScripts builds distroless's base with mawk, whose
// postinst makes /usr/bin/awk with update-alternatives: the build fails
// naming the package and what its script makes, and writes nothing.
func TestDistrolessRefusesScripts(t *testing.T) {
	testenv.RequireRoot(t)
	server := testenv.SnapshotServer(t)
	dir := t.TempDir()
	out, tree := filepath.Join(dir, "oci"), filepath.Join(dir, "rootfs")
	_, stderr, err := runBinary(t, "--suite", "bookworm", "--snapshot", mirrorSnapshot, "--snapshot-server", server, "--arch", "amd64",
		"--cache-dir", sharedCache, "--variant", debian.DistrolessBase, "--include", "mawk", "--output", "oci:"+out, "--rootfs", tree)
	want := "basebuild: --include mawk: its postinst makes /usr/bin/awk (update-alternatives); a distroless image runs no scripts"
	if exitCode(err) != 1 || !strings.HasSuffix(stderr, "\n"+want+"\n") {
		t.Errorf("--include mawk: %v, want exit 1 and the last line\n%s\nstderr:\n%s", err, want, stderr)
	}
	for _, name := range []string{out, tree} {
		if _, err := os.Lstat(name); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want nothing there", name, err)
		}
	}
	left, err := os.ReadDir(dir)
	if err != nil || len(left) != 0 {
		t.Errorf("%s holds %v (%v), want nothing", dir, left, err)
	}
}

// TestDistrolessScriptOnlyAlternative: gzip depends on "dpkg |
// install-info", which apt meets with dpkg, a package only maintainer
// scripts use: a distroless image with gzip leaves both out, and the
// build says so.
func TestDistrolessScriptOnlyAlternative(t *testing.T) {
	testenv.RequireRoot(t)
	server := testenv.SnapshotServer(t)
	common := []string{"--suite", "bookworm", "--snapshot", mirrorSnapshot, "--snapshot-server", server, "--arch", "amd64",
		"--cache-dir", sharedCache, "--variant", debian.DistrolessBase, "--include", "gzip"}
	out, stderr, err := runBinary(t, append(common, "--dry-run")...)
	if err != nil || !strings.Contains(out, "\ngzip ") || strings.Contains(out, "\ndpkg ") || strings.Contains(out, "\ntar ") || strings.Contains(out, "install-info") {
		t.Fatalf("--include gzip --dry-run: %v, want gzip without dpkg, tar or install-info:\n%s%s", err, out, stderr)
	}
	_, stderr, err = runBinary(t, append(common, "--output", "oci:"+filepath.Join(t.TempDir(), "gzip"))...)
	if err != nil || !strings.Contains(stderr, "gzip depends on dpkg (>= 1.15.4) | install-info") {
		t.Errorf("--include gzip: %v, want a note that gzip's dependency on dpkg | install-info was left out:\n%s", err, stderr)
	}
}
