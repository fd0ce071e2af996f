package apt

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basebuild/basebuild/plan"
)

// flaky serves body after failing the first fails requests with fail.
func flaky(t *testing.T, fails int, fail func(w http.ResponseWriter), body string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if int(n.Add(1)) <= fails {
			fail(w)
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func status(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { http.Error(w, http.StatusText(code), code) }
}

func TestFetchRetries5xx(t *testing.T) {
	srv, n := flaky(t, 2, status(http.StatusInternalServerError), "hello")
	c, log := testClient(t)
	got, err := c.get(context.Background(), srv.URL+"/f")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" || n.Load() != 3 {
		t.Errorf("got %q after %d requests, want %q after 3", got, n.Load(), "hello")
	}
	if !strings.Contains(log(), "retrying") {
		t.Errorf("retries not logged: %q", log())
	}
}

func TestFetchRetriesTruncated(t *testing.T) {
	srv, n := flaky(t, 1, func(w http.ResponseWriter) {
		// Promise more than is sent: the client sees an unexpected EOF.
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("hel"))
	}, "hello")
	c, _ := testClient(t)
	got, err := c.get(context.Background(), srv.URL+"/f")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" || n.Load() != 2 {
		t.Errorf("got %q after %d requests, want %q after 2", got, n.Load(), "hello")
	}
}

func TestFetchRetriesConnectionError(t *testing.T) {
	srv, n := flaky(t, 1, func(w http.ResponseWriter) {
		// Drop the connection without an answer.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}, "hello")
	c, _ := testClient(t)
	got, err := c.get(context.Background(), srv.URL+"/f")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" || n.Load() != 2 {
		t.Errorf("got %q after %d requests, want %q after 2", got, n.Load(), "hello")
	}
}

func TestFetchGivesUp(t *testing.T) {
	srv, n := flaky(t, 1000, status(http.StatusBadGateway), "")
	c, _ := testClient(t)
	_, err := c.get(context.Background(), srv.URL+"/f")
	wantErr(t, err, "502")
	if n.Load() != 3 {
		t.Errorf("%d requests, want 3 (1 + Retries 2)", n.Load())
	}
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadGateway || he.URL != srv.URL+"/f" {
		t.Errorf("error %v: want an *HTTPError for 502 and the URL", err)
	}
}

func TestFetchNoRetry4xx(t *testing.T) {
	for _, code := range []int{http.StatusNotFound, http.StatusForbidden} {
		srv, n := flaky(t, 1000, status(code), "")
		c, _ := testClient(t)
		_, err := c.get(context.Background(), srv.URL+"/f")
		wantErr(t, err, http.StatusText(code))
		if n.Load() != 1 {
			t.Errorf("%d: %d requests, want 1", code, n.Load())
		}
		if got := errors.Is(err, ErrNotFound); got != (code == http.StatusNotFound) {
			t.Errorf("%d: errors.Is(err, ErrNotFound) = %v", code, got)
		}
	}
}

func TestFetchNegativeRetries(t *testing.T) {
	srv, n := flaky(t, 1, status(http.StatusServiceUnavailable), "hello")
	c, _ := testClient(t)
	c.Retries = -1
	if _, err := c.get(context.Background(), srv.URL+"/f"); err == nil {
		t.Error("no error")
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
}

func TestFetchCancelDuringBackoff(t *testing.T) {
	srv, n := flaky(t, 1000, status(http.StatusInternalServerError), "")
	c, _ := testClient(t)
	c.Backoff = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.get(ctx, srv.URL+"/f")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second || n.Load() != 1 {
		t.Errorf("returned after %v and %d requests", d, n.Load())
	}
}

// dribble serves a body of a byte every 20ms, for ever: a slow-loris
// server, which the stall timer alone would never give up on.
func dribble(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// Each request has a deadline, and so has each file, retries included.
func TestFetchDeadlines(t *testing.T) {
	srv, n := dribble(t)
	c, log := testClient(t)
	c.Stall, c.Request, c.Timeout = time.Second, 200*time.Millisecond, time.Hour
	start := time.Now()
	_, err := c.get(context.Background(), srv.URL+"/f")
	wantErr(t, err, "no complete answer within 200ms")
	if d := time.Since(start); d > 5*time.Second || n.Load() != 3 {
		t.Errorf("gave up after %v and %d requests, want 3 requests (1 + Retries 2) in about 0.6s", d, n.Load())
	}
	if !strings.Contains(log(), "retrying") {
		t.Errorf("the request past its deadline was not retried: %q", log())
	}

	srv, n = dribble(t)
	c.Retries = 1000
	c.Timeout = 500 * time.Millisecond
	start = time.Now()
	_, err = c.get(context.Background(), srv.URL+"/f")
	wantErr(t, err, "not fetched within 500ms, retries included")
	if d := time.Since(start); d > 5*time.Second || n.Load() < 2 {
		t.Errorf("gave up after %v and %d requests", d, n.Load())
	}

	// Download names the package and its deadline.
	debs := []plan.Package{{Name: "slow", Version: "1.0", URL: srv.URL + "/slow.deb", Size: 1 << 20, SHA256: strings.Repeat("a", 64)}}
	_, err = c.Download(context.Background(), debs, 1, nil)
	wantErr(t, err, "package slow 1.0", srv.URL+"/slow.deb", "not fetched within 500ms")
}

func TestCopyVerified(t *testing.T) {
	want := FileHash{Size: 5, SHA256: sha256hex([]byte("hello"))}
	var sb strings.Builder
	if err := copyVerified(&sb, strings.NewReader("hello"), want); err != nil || sb.String() != "hello" {
		t.Errorf("good: %v, %q", err, sb.String())
	}
	for body, msg := range map[string]string{
		"hell":   "size mismatch",
		"hello!": "size mismatch",
		"jello":  "sha256 mismatch",
	} {
		err := copyVerified(&strings.Builder{}, strings.NewReader(body), want)
		wantErr(t, err, msg)
		var tr *transient
		if got := errors.As(err, &tr); got != (len(body) < 5) {
			t.Errorf("%q: transient = %v; only a short body is", body, got)
		}
	}
}
