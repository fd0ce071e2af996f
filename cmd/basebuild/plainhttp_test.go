package main

import (
	"bytes"
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

	"github.com/basebuild/basebuild/internal/testenv"
)

// TestRegistryCredentialsNotInPlainHTTP reads an image, with the real
// binary, from registries at a private address and a *.localhost name
// that only a loopback proxy serves. The proxy refuses HTTPS, as a man in
// the middle would, and answers plain HTTP as a registry that wants a
// login. The docker config has one for both; it must never cross plain
// HTTP, and without --insecure-registry no plain HTTP request may be made.
func TestRegistryCredentialsNotInPlainHTTP(t *testing.T) {
	const secret = "s3cret-push-password"
	var mu sync.Mutex
	var plain []string // "host Authorization"
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			http.Error(w, "test proxy: no HTTPS", http.StatusBadGateway)
			return
		}
		mu.Lock()
		plain = append(plain, r.URL.Host+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "login first", http.StatusUnauthorized)
			return
		}
		http.NotFound(w, r)
	}))
	defer proxy.Close()

	registries := []string{"10.0.0.1:5000", "foo.localhost:5000"}
	auths := map[string]any{}
	for _, r := range registries {
		auths[r] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("basebuild:" + secret))}
	}
	config := t.TempDir()
	b, _ := json.Marshal(map[string]any{"auths": auths})
	if err := os.WriteFile(filepath.Join(config, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	bin := testenv.Binary(t)
	for _, reg := range registries {
		for _, insecure := range []bool{false, true} {
			args := []string{"packages", reg + "/debian:bookworm"}
			want := "plain HTTP to " + reg + " refused: it is not on loopback"
			if insecure {
				args = append(args, "--insecure-registry")
				want = "plain HTTP to " + reg + " refused: credentials are sent over plain HTTP to loopback registries only"
			}
			cmd := exec.Command(bin, args...)
			for _, kv := range os.Environ() {
				k, _, _ := strings.Cut(kv, "=")
				if !strings.HasSuffix(strings.ToLower(k), "_proxy") && k != "DOCKER_CONFIG" {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "DOCKER_CONFIG="+config, "HTTP_PROXY="+proxy.URL, "HTTPS_PROXY="+proxy.URL)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			msg := strings.TrimSpace(stderr.String())
			if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
				t.Errorf("basebuild %s: %v, stderr %q; want exit 1 and one line saying %q", strings.Join(args, " "), err, msg, want)
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, base64.StdEncoding.EncodeToString([]byte("basebuild:"+secret))) {
				t.Errorf("basebuild %s: stderr holds the password: %s", strings.Join(args, " "), msg)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(plain) > 0 {
		t.Errorf("plain HTTP requests reached the registries: %q", plain)
	}
}
