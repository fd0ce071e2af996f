package oci

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/basebuild/basebuild/internal/testenv"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// testRepo is a repository of its own on registry for this test and run.
func testRepo(t *testing.T, registry string) string {
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	return fmt.Sprintf("%s/basebuild-test/%s-%s", registry, base, strings.ToLower(rand.Text()[:8]))
}

func testImage(t *testing.T) (v1.Image, v1.Hash) {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, d
}

// fastOptions retry once, quickly, and log to the test.
func fastOptions(t *testing.T) PushOptions {
	return PushOptions{Retries: 1, Backoff: 10 * time.Millisecond, Log: t.Logf}
}

// headDigest is the digest ref's tag points to, as the registry says.
func headDigest(ctx context.Context, t *testing.T, ref string, opts ...remote.Option) (v1.Hash, error) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r, append(opts, remote.WithContext(ctx))...)
	if err != nil {
		return v1.Hash{}, err
	}
	return d.Digest, nil
}

func checkOneLine(t *testing.T, err error, ref string, want ...string) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if !strings.HasPrefix(msg, "push "+ref+": ") {
		t.Errorf("error does not start with %q: %s", "push "+ref+": ", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q: %s", w, msg)
		}
	}
}

func TestPushPlain(t *testing.T) {
	reg := testenv.Registry(t)
	ctx := testContext(t)
	img, want := testImage(t)
	ref := testRepo(t, reg) + ":bookworm"

	got, err := Push(ctx, img, ref, fastOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Push returned %s, want the image's digest %s", got, want)
	}
	if d, err := headDigest(ctx, t, ref); err != nil || d != want {
		t.Errorf("registry has %s at %s (%v), want %s", ref, d, err, want)
	}
}

func TestPushAuth(t *testing.T) {
	reg, config := testenv.RegistryAuth(t)
	ctx := testContext(t)
	img, want := testImage(t)
	ref := testRepo(t, reg) + ":bookworm"

	t.Setenv("DOCKER_CONFIG", config)
	got, err := Push(ctx, img, ref, fastOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Push returned %s, want the image's digest %s", got, want)
	}

	// Another client sees the image under the tag.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(sctx, "skopeo", "inspect", "--tls-verify=false",
		"--authfile", filepath.Join(config, "config.json"), "docker://"+ref).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	var inspect struct{ Digest string }
	if err := json.Unmarshal(out, &inspect); err != nil {
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	if inspect.Digest != want.String() {
		t.Errorf("skopeo says %s is %s, want %s", ref, inspect.Digest, want)
	}

	// Without credentials the registry refuses, and the error says why.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	_, err = Push(ctx, img, ref, fastOptions(t))
	if err == nil {
		t.Fatalf("push %s without credentials succeeded", ref)
	}
	t.Log(err)
	checkOneLine(t, err, ref, "401 Unauthorized", "no credentials for "+reg)
}

// dockerLogin reads the user and password for registry from the docker
// config in dir.
func dockerLogin(t *testing.T, dir, registry string) (user, password string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Auths map[string]struct{ Auth string }
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatal(err)
	}
	a, err := base64.StdEncoding.DecodeString(cf.Auths[registry].Auth)
	if err != nil {
		t.Fatal(err)
	}
	user, password, ok := strings.Cut(string(a), ":")
	if !ok {
		t.Fatalf("%s: no login for %s", dir, registry)
	}
	return user, password
}

func writeDockerConfig(t *testing.T, registry, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	b, err := json.Marshal(map[string]any{"auths": map[string]any{registry: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPushWrongPassword(t *testing.T) {
	reg, config := testenv.RegistryAuth(t)
	ctx := testContext(t)
	user, password := dockerLogin(t, config, reg)
	good := remote.WithAuth(&authn.Basic{Username: user, Password: password})
	repo := testRepo(t, reg)
	old, oldDigest := testImage(t)
	img, _ := testImage(t)

	t.Setenv("DOCKER_CONFIG", config)
	if _, err := Push(ctx, old, repo+":bookworm", fastOptions(t)); err != nil {
		t.Fatal(err)
	}

	t.Setenv("DOCKER_CONFIG", writeDockerConfig(t, reg, user, password+"x"))
	for _, tag := range []string{"bookworm", "trixie"} {
		ref := repo + ":" + tag
		_, err := Push(ctx, img, ref, fastOptions(t))
		if err == nil {
			t.Fatalf("push %s with a wrong password succeeded", ref)
		}
		t.Log(err)
		checkOneLine(t, err, ref, "401 Unauthorized", reg+" rejected the credentials")
		var te *transport.Error
		if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
			t.Errorf("error does not unwrap to a 401 transport.Error: %#v", err)
		}
	}

	// The existing tag stays, and the new one was not created.
	if d, err := headDigest(ctx, t, repo+":bookworm", good); err != nil || d != oldDigest {
		t.Errorf("%s:bookworm is %s (%v), want the old %s", repo, d, err, oldDigest)
	}
	var te *transport.Error
	if _, err := headDigest(ctx, t, repo+":trixie", good); !errors.As(err, &te) || te.StatusCode != http.StatusNotFound {
		t.Errorf("%s:trixie: got %v, want 404", repo, err)
	}
}

func TestPushUnreachable(t *testing.T) {
	// A loopback port that nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx := testContext(t)
	img, _ := testImage(t)
	ref := addr + "/debian:bookworm"
	var retries int
	o := PushOptions{Retries: 2, Backoff: 10 * time.Millisecond, Log: func(f string, a ...any) {
		retries++
		t.Logf(f, a...)
	}}
	start := time.Now()
	_, err = Push(ctx, img, ref, o)
	if err == nil {
		t.Fatalf("push %s succeeded", ref)
	}
	t.Log(err)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("push took %v to fail", d)
	}
	checkOneLine(t, err, ref, "registry "+addr+" unreachable after 3 attempts: connection refused")
	if retries != 2 {
		t.Errorf("logged %d retries, want 2", retries)
	}
}

func TestPushCancelledDuringBackoff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	img, _ := testImage(t)
	ref := addr + "/debian:bookworm"
	start := time.Now()
	_, err = Push(ctx, img, ref, PushOptions{Backoff: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("push took %v to notice its context's deadline", d)
	}
	checkOneLine(t, err, ref, "context deadline exceeded waiting to retry: registry "+addr+" unreachable: connection refused")
}

// countingProxy is a reverse proxy on loopback in front of a registry that
// counts uploads and can fail requests.
type countingProxy struct {
	addr string

	mu           sync.Mutex
	uploads      int // requests under /blobs/uploads/
	manifestPuts int
	fail         func(*http.Request) bool
}

func newCountingProxy(t *testing.T, registry string) *countingProxy {
	p := &countingProxy{}
	target := &url.URL{Scheme: "http", Host: registry}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// The registry builds upload locations from Host: keep the
			// client coming back through the proxy.
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{}, // no proxy from the environment
		// Aborted uploads (see TestPushFailedBlobKeepsTag) are expected.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		if strings.Contains(r.URL.Path, "/blobs/uploads/") {
			p.uploads++
		}
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			p.manifestPuts++
		}
		fail := p.fail != nil && p.fail(r)
		p.mu.Unlock()
		if fail {
			http.Error(w, "injected failure", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	// The client's ping tries HTTPS first; its handshake errors are noise.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	p.addr = srv.Listener.Addr().String()
	return p
}

// counts returns and resets the counters.
func (p *countingProxy) counts() (uploads, manifestPuts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	uploads, manifestPuts = p.uploads, p.manifestPuts
	p.uploads, p.manifestPuts = 0, 0
	return uploads, manifestPuts
}

func TestPushSkipsExistingBlobs(t *testing.T) {
	p := newCountingProxy(t, testenv.Registry(t))
	ctx := testContext(t)
	img, want := testImage(t)
	repo := testRepo(t, p.addr)

	for i, tc := range []struct {
		tag                string
		uploads, manifests bool
	}{
		{"bookworm", true, true},
		{"bookworm", false, false}, // the same image again: nothing to do
		{"latest", false, true},    // another tag: only the manifest
	} {
		got, err := Push(ctx, img, repo+":"+tc.tag, fastOptions(t))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("push %d returned %s, want %s", i+1, got, want)
		}
		uploads, manifests := p.counts()
		t.Logf("push %d to %s: %d upload requests, %d manifest PUTs", i+1, tc.tag, uploads, manifests)
		if (uploads > 0) != tc.uploads || (manifests > 0) != tc.manifests {
			t.Errorf("push %d to %s: %d upload requests and %d manifest PUTs, want uploads %v and manifest %v",
				i+1, tc.tag, uploads, manifests, tc.uploads, tc.manifests)
		}
	}
}

func TestPushFailedBlobKeepsTag(t *testing.T) {
	p := newCountingProxy(t, testenv.Registry(t))
	ctx := testContext(t)
	old, oldDigest := testImage(t)
	img, _ := testImage(t)
	ref := testRepo(t, p.addr) + ":bookworm"

	if _, err := Push(ctx, old, ref, fastOptions(t)); err != nil {
		t.Fatal(err)
	}
	p.counts()

	// Blob data uploads fail; the registry is otherwise fine.
	p.mu.Lock()
	p.fail = func(r *http.Request) bool { return r.Method == http.MethodPatch }
	p.mu.Unlock()
	var retries int
	o := fastOptions(t)
	o.Log = func(f string, a ...any) {
		retries++
		t.Logf(f, a...)
	}
	_, err := Push(ctx, img, ref, o)
	if err == nil {
		t.Fatalf("push %s succeeded through failing blob uploads", ref)
	}
	t.Log(err)
	checkOneLine(t, err, ref, "giving up after 2 attempts: 503 Service Unavailable")
	if retries != 1 {
		t.Errorf("logged %d retries, want 1", retries)
	}
	if _, manifests := p.counts(); manifests != 0 {
		t.Errorf("%d manifest PUTs after failed blob uploads, want none", manifests)
	}
	if d, err := headDigest(ctx, t, ref); err != nil || d != oldDigest {
		t.Errorf("%s is %s (%v), want the old %s", ref, d, err, oldDigest)
	}
}

// TestPushProxyFromEnvironment runs itself again in a child process, since
// http.ProxyFromEnvironment reads the environment once per process: the
// child pushes to a registry behind the proxy and to loopback ones.
func TestPushProxyFromEnvironment(t *testing.T) {
	reg := testenv.Registry(t)
	if os.Getenv("BASEBUILD_PUSH_PROXY_CHILD") != "" {
		pushProxyChild(t, reg)
		return
	}

	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.Host)
		mu.Unlock()
		http.Error(w, "test proxy: no way out", http.StatusBadGateway)
	}))
	defer proxy.Close()

	ctx := testContext(t)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPushProxyFromEnvironment$", "-test.v")
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasSuffix(strings.ToLower(k), "_proxy") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "BASEBUILD_PUSH_PROXY_CHILD=1", "DOCKER_CONFIG="+t.TempDir(),
		"HTTP_PROXY="+proxy.URL, "HTTPS_PROXY="+proxy.URL)
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if want := []string{"CONNECT registry.invalid:443"}; !slices.Equal(seen, want) {
		t.Errorf("proxy saw %q, want %q", seen, want)
	}
}

func pushProxyChild(t *testing.T, reg string) {
	ctx := testContext(t)
	img, want := testImage(t)

	ref := "registry.invalid/basebuild/proxy:test"
	_, err := Push(ctx, img, ref, PushOptions{Retries: -1})
	if err == nil {
		t.Fatalf("push %s through a proxy that refuses succeeded", ref)
	}
	t.Log(err)
	checkOneLine(t, err, ref)

	_, port, _ := net.SplitHostPort(reg)
	for _, r := range []string{reg, "localhost:" + port} {
		ref := testRepo(t, r) + ":bookworm"
		got, err := Push(ctx, img, ref, fastOptions(t))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("push %s returned %s, want %s", ref, got, want)
		}
	}
}

func TestParseReference(t *testing.T) {
	for _, tc := range []struct {
		ref      string
		insecure bool
		scheme   string
	}{
		{"registry.example/debian:bookworm", false, "https"},
		{"registry.example/debian:bookworm", true, "http"},
		{"127.0.0.1:5000/debian:bookworm", false, "http"},
		{"127.0.0.2:5000/debian:bookworm", false, "http"},
		{"localhost:5000/debian:bookworm", false, "http"},
		{"[::1]:5000/debian:bookworm", false, "http"},
		{"10.0.0.1:5000/debian:bookworm", false, "http"}, // go-containerregistry's private-network rule, which guard overrules
		{"debian:bookworm", false, "https"},
	} {
		r, err := ParseReference(tc.ref, tc.insecure)
		if err != nil {
			t.Errorf("ParseReference(%q, %v): %v", tc.ref, tc.insecure, err)
			continue
		}
		if got := r.Context().Scheme(); got != tc.scheme {
			t.Errorf("ParseReference(%q, %v) scheme %s, want %s", tc.ref, tc.insecure, got, tc.scheme)
		}
	}
	if _, err := ParseReference("Registry.example/Debian", false); err == nil {
		t.Error("ParseReference accepted an upper-case repository")
	}
}

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000":       true,
		"127.1.2.3":            true,
		"localhost:5000":       true,
		"localhost":            true,
		"[::1]:5000":           true,
		"::1":                  true,
		"registry.example":     false,
		"10.0.0.1:5000":        false,
		"localhost.example":    false,
		"index.docker.io":      false,
		"[2001:db8::1]:5000":   false,
		"128.0.0.1:5000":       false,
		"registry.example:443": false,
	} {
		if got := loopback(host); got != want {
			t.Errorf("loopback(%q) = %v, want %v", host, got, want)
		}
	}
}
