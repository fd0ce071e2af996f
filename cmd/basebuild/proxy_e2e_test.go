package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/basebuild/basebuild/internal/testenv"
)

// forwardProxy is an HTTP proxy on loopback that serves names under
// .basebuild.test, which resolve nowhere, from 127.0.0.1: a client that
// reaches such a name went through it. It records each request.
type forwardProxy struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string // "METHOD host/path"
}

const fakeDomain = ".basebuild.test"

func newForwardProxy(t *testing.T) *forwardProxy {
	p := &forwardProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		_, port, _ := strings.Cut(r.In.URL.Host, ":")
		r.Out.URL.Scheme = "http"
		r.Out.URL.Host = "127.0.0.1:" + port
		r.Out.Host = r.In.URL.Host
	}, Transport: &http.Transport{Proxy: nil}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.URL.Host, ":")
		if r.Method == http.MethodConnect || !r.URL.IsAbs() || !strings.HasSuffix(host, fakeDomain) {
			http.Error(w, "not a proxy request for *"+fakeDomain, http.StatusBadGateway)
			return
		}
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+r.URL.Host+r.URL.Path)
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// count returns how many requests to host had a path containing part,
// for method ("" any).
func (p *forwardProxy) count(method, host, part string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.requests {
		m, rest, _ := strings.Cut(r, " ")
		if (method == "" || m == method) && strings.HasPrefix(rest, host+"/") && strings.Contains(rest, part) {
			n++
		}
	}
	return n
}

// TestProxyAndTags builds bookworm, in a child process whose http_proxy
// and https_proxy name a loopback proxy, from the snapshot server and
// into the registry, both addressed by names only the proxy resolves, and
// pushes two tags made of placeholders. Nothing of the proxy may end up
// in the image.
func TestProxyAndTags(t *testing.T) {
	server := testenv.SnapshotServer(t)
	registry := testenv.Registry(t)
	testenv.RequireRoot(t)
	proxy := newForwardProxy(t)
	bin := testenv.Binary(t)
	_, serverPort, _ := strings.Cut(strings.TrimPrefix(server, "http://"), ":")
	_, registryPort, _ := strings.Cut(registry, ":")
	archiveHost := "archive" + fakeDomain + ":" + serverPort
	registryHost := "registry" + fakeDomain + ":" + registryPort
	out := filepath.Join(t.TempDir(), "out")
	// A repository of its own, so that the registry has none of its blobs.
	name := fmt.Sprintf("proxied%d", time.Now().UnixNano())
	repo := registryHost + "/" + name + "/{suite}"
	args := []string{"--suite", "bookworm", "--arch", "amd64", "--snapshot", mirrorSnapshot, "--snapshot-server", "http://" + archiveHost,
		"--cache-dir", filepath.Join(t.TempDir(), "cache"), "--insecure-registry",
		"--push", repo + ":{date}", "--push", repo + ":latest", "--output", "oci:" + out + "-{snapshot}"}
	cmd := exec.Command(bin, args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return strings.EqualFold(k, "http_proxy") || strings.EqualFold(k, "https_proxy") || strings.EqualFold(k, "no_proxy")
	})
	cmd.Env = append(cmd.Env, "http_proxy="+proxy.URL, "HTTPS_PROXY="+proxy.URL, "no_proxy=example.invalid")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("basebuild %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	t.Logf("built and pushed through the proxy in %s", time.Since(start).Round(time.Second))
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	digest := lines[len(lines)-1]

	// The proxy carried the archive's and the registry's requests.
	for _, c := range []struct{ method, host, part string }{
		{"GET", archiveHost, "/dists/bookworm/InRelease"},
		{"GET", archiveHost, "/main/binary-amd64/"},
		{"GET", archiveHost, ".deb"},
		{"PUT", registryHost, "/manifests/" + mirrorDate},
		{"PUT", registryHost, "/manifests/latest"},
	} {
		if proxy.count(c.method, c.host, c.part) == 0 {
			t.Errorf("no %s %s…%s through the proxy", c.method, c.host, c.part)
		}
	}
	if t.Failed() {
		proxy.mu.Lock()
		t.Logf("requests: %q", proxy.requests)
		proxy.mu.Unlock()
	}
	// Both tags, but each blob uploaded once: the layer, the config and
	// the three audit artifacts' (the package manifest, the SPDX and the
	// CycloneDX SBOMs; the artifacts share the empty config).
	if n := proxy.count("POST", registryHost, "/blobs/uploads/"); n == 0 || n > 6 {
		t.Errorf("%d blob uploads for two tags, want each blob once", n)
	}
	for _, tag := range []string{mirrorDate, "latest"} {
		if got := skopeoDigest(t, "docker://"+registry+"/"+name+"/bookworm:"+tag, "--tls-verify=false"); got != digest {
			t.Errorf("tag %s: digest %s, want %s", tag, got, digest)
		}
	}

	// Nothing of the proxy in the image: not in its config or
	// annotations, not in any file of its layer.
	idx, err := layout.ImageIndexFromPath(out + "-" + mirrorSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawConfigFile()
	manifest, _ := img.RawManifest()
	needles := []string{proxy.Listener.Addr().String(), fakeDomain, "_proxy", "_PROXY"}
	for _, n := range needles {
		if bytes.Contains(raw, []byte(n)) || bytes.Contains(manifest, []byte(n)) {
			t.Errorf("the image's config or manifest names %q", n)
		}
	}
	var cfg struct {
		Config struct{ Env []string } `json:"config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil || len(cfg.Config.Env) != 1 || !strings.HasPrefix(cfg.Config.Env[0], "PATH=") {
		t.Errorf("config env %q, %v; want PATH only", cfg.Config.Env, err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v, %d", err, len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		files++
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles[:2] {
			if bytes.Contains(data, []byte(n)) {
				t.Errorf("%s names %q", h.Name, n)
			}
		}
	}
	if files < 1000 {
		t.Errorf("the layer has %d files", files)
	}
}
