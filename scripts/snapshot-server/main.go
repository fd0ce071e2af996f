// Command snapshot-server is a test stand-in for snapshot.debian.org, which
// is not reachable from the test machines. It is a reverse proxy on a
// loopback address that serves snapshot-shaped URLs from the host's mirror:
//
//	/archive/debian/<YYYYMMDDTHHMMSSZ>/<rest>          → <mirror>/<rest>
//	/archive/debian-security/<YYYYMMDDTHHMMSSZ>/<rest> → <security-mirror>/<rest>
//
// Honest caveat: a mirror holds only its current state, so every timestamp
// serves the same (current) content. This server exercises the URL shape of
// --snapshot code paths, not time travel; tests must not expect two
// timestamps to give different archives, nor an old timestamp to give old
// packages. A malformed timestamp, an unknown archive or a ".." segment gives
// 404, as does anything outside /archive/.
//
// Bodies are streamed, upstream status codes and headers are forwarded, and
// only GET and HEAD are allowed. The first line on stdout is the server's
// URL (http://127.0.0.1:PORT), printed once it is listening; -url-file also
// writes it to a file (atomically, so a poller never reads half a line).
// With -v it logs one line per request to stderr.
//
// Usage:
//
//	snapshot-server -mirror URL -security-mirror URL [-listen 127.0.0.1:0] [-url-file FILE] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// tsLayout is snapshot.debian.org's timestamp format, e.g. 20240101T000000Z.
const tsLayout = "20060102T150405Z"

// mapPath maps an escaped request path to the upstream URL it stands for,
// or returns ok=false for paths that are not snapshot-shaped.
func mapPath(archives map[string]*url.URL, escapedPath string) (target *url.URL, ok bool) {
	rest, found := strings.CutPrefix(escapedPath, "/archive/")
	if !found {
		return nil, false
	}
	archive, rest, _ := strings.Cut(rest, "/")
	base := archives[archive]
	if base == nil {
		return nil, false
	}
	ts, rest, _ := strings.Cut(rest, "/")
	// time.Parse accepts a one-digit hour, so check the length too.
	if len(ts) != len(tsLayout) {
		return nil, false
	}
	if _, err := time.Parse(tsLayout, ts); err != nil {
		return nil, false
	}
	unescaped, err := url.PathUnescape(rest)
	if err != nil {
		return nil, false
	}
	// Keep requests inside the mirror's tree.
	for _, seg := range strings.Split(unescaped, "/") {
		if seg == ".." {
			return nil, false
		}
	}
	u := *base
	basePath := strings.TrimSuffix(base.Path, "/")
	baseRaw := strings.TrimSuffix(base.EscapedPath(), "/")
	u.Path = basePath + "/" + unescaped
	// Forward the client's escaping as is (apt escapes e.g. "+" and "~"
	// in pool file names); Go only uses RawPath if it matches Path.
	u.RawPath = baseRaw + "/" + rest
	u.RawQuery = ""
	return &u, true
}

type server struct {
	archives map[string]*url.URL
	proxy    *httputil.ReverseProxy
	verbose  bool
}

type targetKey struct{}

func newServer(mirror, securityMirror *url.URL, verbose bool) *server {
	s := &server{
		archives: map[string]*url.URL{
			"debian":          mirror,
			"debian-security": securityMirror,
		},
		verbose: verbose,
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(targetKey{}).(*url.URL)
			pr.Out.URL = target
			pr.Out.Host = "" // send the mirror's host, not ours
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if s.verbose {
				log.Printf("upstream error: %s: %v", r.URL.Path, err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	if verbose {
		s.proxy.ErrorLog = log.Default()
	}
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	upstream := "-"
	defer func() {
		if s.verbose {
			log.Printf("%s %s -> %s %d %s", r.Method, r.URL.EscapedPath(), upstream, rec.status, time.Since(start).Round(time.Millisecond))
		}
	}()

	target, ok := mapPath(s.archives, r.URL.EscapedPath())
	if !ok {
		http.NotFound(rec, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rec.Header().Set("Allow", "GET, HEAD")
		http.Error(rec, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	upstream = target.String()
	s.proxy.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), targetKey{}, target)))
}

// statusRecorder remembers the status code for the -v log line.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController (used by ReverseProxy to flush)
// reach the real ResponseWriter.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func parseMirror(name, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("-%s is required", name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-%s: %w", name, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-%s: want an http(s) URL, got %q", name, raw)
	}
	return u, nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("snapshot-server: ")
	listen := flag.String("listen", "127.0.0.1:0", "loopback `address` to listen on")
	mirrorFlag := flag.String("mirror", "", "Debian mirror `URL` served as /archive/debian/<ts>/")
	securityFlag := flag.String("security-mirror", "", "Debian security mirror `URL` served as /archive/debian-security/<ts>/")
	urlFile := flag.String("url-file", "", "also write the server URL to `FILE`")
	verbose := flag.Bool("v", false, "log one line per request to stderr")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	mirror, err := parseMirror("mirror", *mirrorFlag)
	if err != nil {
		log.Fatal(err)
	}
	security, err := parseMirror("security-mirror", *securityFlag)
	if err != nil {
		log.Fatal(err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if addr, ok := ln.Addr().(*net.TCPAddr); !ok || !addr.IP.IsLoopback() {
		log.Fatalf("-listen %s: refusing to listen on a non-loopback address", *listen)
	}
	serverURL := "http://" + ln.Addr().String()

	srv := &http.Server{
		Handler:           newServer(mirror, security, *verbose),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if *verbose {
		srv.ErrorLog = log.Default()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()

	// The listener is already accepting connections (the kernel queues them),
	// so announcing the URL before Serve is safe.
	fmt.Println(serverURL)
	if *urlFile != "" {
		if err := writeFileAtomic(*urlFile, []byte(serverURL+"\n")); err != nil {
			log.Fatal(err)
		}
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
