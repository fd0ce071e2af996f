package oci

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

func TestPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		host                 string
		insecure             bool
		allowed, credentials bool
	}{
		{"127.0.0.1:5000", false, true, true},
		{"127.1.2.3", false, true, true},
		{"[::1]:5000", false, true, true},
		{"localhost:5000", false, true, true},
		{"localhost:5000", true, true, true},
		{"10.0.0.1:5000", false, false, false}, // go-containerregistry would fall back to http
		{"192.168.1.2", false, false, false},
		{"172.16.0.1:5000", false, false, false},
		{"foo.localhost:5000", false, false, false},
		{"registry.example", false, false, false},
		{"10.0.0.1:5000", true, true, false},
		{"192.168.1.2", true, true, false},
		{"foo.localhost:5000", true, true, false},
		{"registry.example", true, true, false},
	} {
		allowed, credentials := plainHTTP(tc.host, tc.insecure)
		if allowed != tc.allowed || credentials != tc.credentials {
			t.Errorf("plainHTTP(%q, insecure %v) = %v, %v; want %v, %v", tc.host, tc.insecure, allowed, credentials, tc.allowed, tc.credentials)
		}
	}
}

// TestPushPlainHTTPRule pushes, in a child process whose proxy is a
// loopback one, to registries at private-looking names and addresses that
// only the proxy serves; it refuses HTTPS (CONNECT), as a man in the middle
// would, and serves plain HTTP from an in-memory registry. The docker
// config has credentials for some of them. No plain HTTP request may carry
// credentials, and without --insecure-registry there may be none at all.
func TestPushPlainHTTPRule(t *testing.T) {
	if os.Getenv("BASEBUILD_PLAIN_HTTP_CHILD") != "" {
		plainHTTPChild(t)
		return
	}
	reg := registry.New()
	var mu sync.Mutex
	var plain []string // "host auth" of each plain HTTP request
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			http.Error(w, "test proxy: no HTTPS", http.StatusBadGateway)
			return
		}
		mu.Lock()
		plain = append(plain, r.URL.Host+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		reg.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	auths := map[string]any{}
	for _, host := range []string{"10.0.0.1:5000", "foo.localhost:5000", "172.16.0.1"} {
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("basebuild:s3cret-" + host))}
	}
	config := t.TempDir()
	b, _ := json.Marshal(map[string]any{"auths": auths})
	if err := os.WriteFile(filepath.Join(config, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(testContext(t), os.Args[0], "-test.run=^TestPushPlainHTTPRule$", "-test.v")
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasSuffix(strings.ToLower(k), "_proxy") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "BASEBUILD_PLAIN_HTTP_CHILD=1", "DOCKER_CONFIG="+config,
		"HTTP_PROXY="+proxy.URL, "HTTPS_PROXY="+proxy.URL)
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Errorf("child: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	hosts := map[string]bool{}
	for _, p := range plain {
		host, auth, _ := strings.Cut(p, " ")
		if auth != "" {
			t.Errorf("plain HTTP request to %s with credentials %q", host, auth)
		}
		hosts[host] = true
	}
	// Only the anonymous push with --insecure-registry went over plain HTTP.
	if want := map[string]bool{"192.168.1.2": true}; len(hosts) != 1 || !hosts["192.168.1.2"] {
		t.Errorf("plain HTTP requests to %v, want %v", hosts, want)
	}
}

func plainHTTPChild(t *testing.T) {
	ctx := testContext(t)
	img, want := testImage(t)
	for _, tc := range []struct {
		ref      string
		insecure bool
		err      string // "" for success
	}{
		{"10.0.0.1:5000/debian:bookworm", false, "plain HTTP to 10.0.0.1:5000 refused: it is not on loopback"},
		{"192.168.1.3/debian:bookworm", false, "plain HTTP to 192.168.1.3 refused: it is not on loopback"},
		{"foo.localhost:5000/debian:bookworm", false, "plain HTTP to foo.localhost:5000 refused: it is not on loopback"},
		{"10.0.0.1:5000/debian:bookworm", true, "plain HTTP to 10.0.0.1:5000 refused: credentials are sent over plain HTTP to loopback registries only"},
		{"foo.localhost:5000/debian:bookworm", true, "plain HTTP to foo.localhost:5000 refused: credentials"},
		{"192.168.1.2/debian:bookworm", true, ""},
	} {
		o := fastOptions(t)
		o.Insecure = tc.insecure
		got, err := Push(ctx, img, tc.ref, o)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("push %s (insecure %v): %v", tc.ref, tc.insecure, err)
		case tc.err == "" && got != want:
			t.Errorf("push %s returned %s, want %s", tc.ref, got, want)
		case tc.err != "" && err == nil:
			t.Errorf("push %s (insecure %v) succeeded", tc.ref, tc.insecure)
		case tc.err != "":
			checkOneLine(t, err, tc.ref, tc.err)
		}
	}
	// Reading follows the same rule.
	for _, insecure := range []bool{false, true} {
		ref := "172.16.0.1/debian:bookworm"
		if _, err := Open(ctx, ref, insecure); err == nil || !strings.Contains(err.Error(), "plain HTTP to 172.16.0.1 refused") {
			t.Errorf("Open(%s, insecure %v): %v, want plain HTTP refused", ref, insecure, err)
		}
	}
}
