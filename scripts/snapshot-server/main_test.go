package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestMapPath(t *testing.T) {
	archives := map[string]*url.URL{
		"debian":          mustParse(t, "http://mirror.test/debian"),
		"debian-security": mustParse(t, "http://mirror.test/debian-security/"),
	}
	tests := []struct {
		path string
		want string // "" means 404
	}{
		{"/archive/debian/20240101T000000Z/dists/bookworm/InRelease", "http://mirror.test/debian/dists/bookworm/InRelease"},
		{"/archive/debian-security/20240101T000000Z/dists/bookworm-security/InRelease", "http://mirror.test/debian-security/dists/bookworm-security/InRelease"},
		{"/archive/debian/20240101T000000Z/", "http://mirror.test/debian/"},
		{"/archive/debian/20240101T000000Z/pool/main/g/gcc-12/libstdc%2b%2b6_12.2.0-14_amd64.deb", "http://mirror.test/debian/pool/main/g/gcc-12/libstdc%2b%2b6_12.2.0-14_amd64.deb"},
		{"/archive/debian/20240101T000000Z/pool/main/g/gcc-12/libstdc++6_12.2.0-14_amd64.deb", "http://mirror.test/debian/pool/main/g/gcc-12/libstdc++6_12.2.0-14_amd64.deb"},
		{"/archive/debian/2024-01-01T00:00:00Z/dists/bookworm/InRelease", ""},
		{"/archive/debian/20241301T000000Z/dists/bookworm/InRelease", ""}, // month 13
		{"/archive/debian/20240101T00000Z/dists/bookworm/InRelease", ""},
		{"/archive/debian/20240101T000000/dists/bookworm/InRelease", ""},
		{"/archive/debian/latest/dists/bookworm/InRelease", ""},
		{"/archive/debian-ports/20240101T000000Z/dists/sid/InRelease", ""},
		{"/archive/debian/20240101T000000Z/../../etc/passwd", ""},
		{"/archive/debian/20240101T000000Z/%2e%2e/x", ""},
		{"/debian/dists/bookworm/InRelease", ""},
		{"/", ""},
	}
	for _, tt := range tests {
		got, ok := mapPath(archives, tt.path)
		switch {
		case tt.want == "" && ok:
			t.Errorf("mapPath(%q) = %s, want 404", tt.path, got)
		case tt.want != "" && !ok:
			t.Errorf("mapPath(%q) = 404, want %s", tt.path, tt.want)
		case ok && got.String() != tt.want:
			t.Errorf("mapPath(%q) = %s, want %s", tt.path, got, tt.want)
		}
	}
}

func TestProxy(t *testing.T) {
	var gotPath, gotHost string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotHost = r.URL.EscapedPath(), r.Host
		switch r.URL.Path {
		case "/debian/dists/bookworm/InRelease":
			w.Header().Set("Content-Length", "6")
			io.WriteString(w, "hello\n")
		case "/sec/dists/bookworm-security/InRelease":
			io.WriteString(w, "secure\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer backend.Close()

	srv := httptest.NewServer(newServer(
		mustParse(t, backend.URL+"/debian"),
		mustParse(t, backend.URL+"/sec"),
		false,
	))
	defer srv.Close()
	backendHost := strings.TrimPrefix(backend.URL, "http://")

	tests := []struct {
		method, path string
		status       int
		body         string
		upstream     string // path the backend must have seen; "" if it must not be asked
	}{
		{"GET", "/archive/debian/20240101T000000Z/dists/bookworm/InRelease", 200, "hello\n", "/debian/dists/bookworm/InRelease"},
		{"HEAD", "/archive/debian/20240101T000000Z/dists/bookworm/InRelease", 200, "", "/debian/dists/bookworm/InRelease"},
		{"GET", "/archive/debian-security/20250520T000000Z/dists/bookworm-security/InRelease", 200, "secure\n", "/sec/dists/bookworm-security/InRelease"},
		{"GET", "/archive/debian/20240101T000000Z/dists/nosuch/InRelease", 404, "404 page not found\n", "/debian/dists/nosuch/InRelease"},
		{"GET", "/archive/debian/2024/dists/bookworm/InRelease", 404, "404 page not found\n", ""},
		{"POST", "/archive/debian/20240101T000000Z/dists/bookworm/InRelease", 405, "method not allowed\n", ""},
	}
	for _, tt := range tests {
		gotPath, gotHost = "", ""
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || string(body) != tt.body {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, body, tt.status, tt.body)
		}
		if gotPath != tt.upstream {
			t.Errorf("%s %s: backend saw path %q, want %q", tt.method, tt.path, gotPath, tt.upstream)
		}
		if tt.upstream != "" && gotHost != backendHost {
			t.Errorf("%s %s: backend saw Host %q, want %q", tt.method, tt.path, gotHost, backendHost)
		}
		if tt.method == "HEAD" && resp.ContentLength != 6 {
			t.Errorf("HEAD %s: Content-Length %d, want 6", tt.path, resp.ContentLength)
		}
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
