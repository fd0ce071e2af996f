package apt

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/basebuild/basebuild/internal/cache"
)

// Client fetches and verifies archive files. The zero value is usable; a
// Client must not be copied after first use.
type Client struct {
	HTTP *http.Client // nil: a client with proxies from the environment

	// Cache holds verified files; nil caches nothing. Download needs one.
	Cache *cache.Cache

	// Retries is how many times a failed request is tried again after a
	// connection error, a truncated body or a 5xx, 408 or 429 status.
	// Zero means 4; negative means never.
	Retries int

	// Backoff is the wait before the first retry; it doubles after each.
	// Zero means 1s.
	Backoff time.Duration

	// Deadlines, so that a server that answers slowly, or dribbles its
	// answer a byte at a time, cannot hold a build for ever. Stall bounds
	// a request's time without any progress (connecting, waiting for
	// headers or reading the body), Request each request, and Timeout
	// the fetching of one file, its retries and their backoff included.
	// A request past Stall or Request is retried; a file past Timeout is
	// an error. Zero means 1 minute, 10 minutes and 30 minutes.
	Stall, Request, Timeout time.Duration

	// Offline refuses every request with ErrOffline: what the cache
	// does not hold cannot be had.
	Offline bool

	// Log receives notes (retries, skipped suites), possibly from several
	// goroutines at once; nil is quiet.
	Log func(format string, args ...any)

	once        sync.Once
	defaultHTTP *http.Client
}

const (
	defaultRetries = 4
	defaultBackoff = time.Second
	maxBackoff     = 30 * time.Second

	defaultStall   = time.Minute
	defaultRequest = 10 * time.Minute
	defaultTimeout = 30 * time.Minute

	// maxGet bounds the size of a file read into memory (InRelease).
	maxGet = 64 << 20
)

// ErrNotFound is matched (with errors.Is) by the error for a file the
// server says does not exist (404 or 410).
var ErrNotFound = errors.New("not found")

// ErrOffline is the error of a request an offline Client refuses.
var ErrOffline = errors.New("offline: not in the cache, and no network access is allowed")

// HTTPError is an unsuccessful HTTP response.
type HTTPError struct {
	URL        string
	StatusCode int
	Status     string
}

func (e *HTTPError) Error() string { return e.Status }

// Is makes errors.Is(err, ErrNotFound) true for 404 and 410.
func (e *HTTPError) Is(target error) bool {
	return target == ErrNotFound && (e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusGone)
}

// transient marks an error worth retrying.
type transient struct{ err error }

func (e *transient) Error() string { return e.err.Error() }
func (e *transient) Unwrap() error { return e.err }

func (c *Client) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	c.once.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = http.ProxyFromEnvironment
		// Download's workers all talk to the same host; keep their
		// connections rather than redialling.
		t.MaxIdleConnsPerHost = 32
		c.defaultHTTP = &http.Client{Transport: t}
	})
	return c.defaultHTTP
}

// fetch GETs url and hands the body to consume, retrying transient failures
// with exponential backoff. consume may be called more than once and must
// start afresh each time; it marks its own errors as transient by wrapping
// them in *transient. Errors do not name url: callers do.
func (c *Client) fetch(ctx context.Context, url string, consume func(io.Reader) error) error {
	if c.Offline {
		return ErrOffline
	}
	retries, backoff := c.Retries, c.Backoff
	if retries == 0 {
		retries = defaultRetries
	}
	if backoff <= 0 {
		backoff = defaultBackoff
	}
	timeout := cmp.Or(c.Timeout, defaultTimeout)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("not fetched within %v, retries included", timeout))
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := c.try(ctx, url, consume)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var t *transient
		if !errors.As(err, &t) || attempt >= retries {
			return err
		}
		delay := min(backoff<<attempt, maxBackoff)
		c.logf("GET %s: %v; retrying in %v", url, err, delay)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return context.Cause(ctx)
		}
	}
}

func (c *Client) try(parent context.Context, rawURL string, consume func(io.Reader) error) error {
	stallTimeout, request := cmp.Or(c.Stall, defaultStall), cmp.Or(c.Request, defaultRequest)
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	ctx, stop := context.WithTimeoutCause(ctx, request, &transient{fmt.Errorf("no complete answer within %v", request)})
	defer stop()
	stall := time.AfterFunc(stallTimeout, func() { cancel(&transient{fmt.Errorf("no progress for %v", stallTimeout)}) })
	defer stall.Stop()

	err := c.do(ctx, rawURL, func(r io.Reader) error {
		return consume(&progressReader{r: r, stall: stall, after: stallTimeout})
	})
	if err != nil && ctx.Err() != nil && parent.Err() == nil {
		// A deadline of this request, not the caller's, ended it.
		return context.Cause(ctx)
	}
	return err
}

// do makes one request and hands a successful answer's body to consume.
func (c *Client) do(ctx context.Context, rawURL string, consume func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it repeats the URL, which callers name
		}
		return &transient{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := &HTTPError{URL: rawURL, StatusCode: resp.StatusCode, Status: resp.Status}
		switch {
		case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
			return &transient{err}
		}
		return err
	}
	body := &failReader{r: resp.Body}
	if err := consume(body); err != nil {
		if body.err != nil {
			// The connection failed mid-body: a truncated download.
			return &transient{err}
		}
		return err
	}
	return nil
}

// progressReader pushes back the stall timer on every read.
type progressReader struct {
	r     io.Reader
	stall *time.Timer
	after time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	p.stall.Reset(p.after)
	return p.r.Read(b)
}

// failReader remembers the first read error other than EOF.
type failReader struct {
	r   io.Reader
	err error
}

func (f *failReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}

// get fetches a small file into memory.
func (c *Client) get(ctx context.Context, url string) ([]byte, error) {
	var data []byte
	err := c.fetch(ctx, url, func(r io.Reader) error {
		var err error
		data, err = io.ReadAll(io.LimitReader(r, maxGet+1))
		if err != nil {
			return err
		}
		if len(data) > maxGet {
			return fmt.Errorf("larger than %d bytes", maxGet)
		}
		return nil
	})
	return data, err
}

// copyVerified copies r to w and checks that exactly want.Size bytes with
// the SHA-256 want.SHA256 came. A short body is transient (truncated), a
// long one or a wrong hash is not.
func copyVerified(w io.Writer, r io.Reader, want FileHash) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, want.Size+1))
	if err != nil {
		return err
	}
	switch {
	case n < want.Size:
		return &transient{fmt.Errorf("size mismatch: got %d bytes, want %d", n, want.Size)}
	case n > want.Size:
		return fmt.Errorf("size mismatch: got more than the %d bytes expected", want.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		return fmt.Errorf("sha256 mismatch: got %s, want %s", got, want.SHA256)
	}
	return nil
}

// File fetches url, which must match want (a deb, or an index a Release
// lists), into the cache and returns its path there. A file already
// cached is not fetched.
func (c *Client) File(ctx context.Context, url string, want FileHash) (string, error) {
	return c.file(ctx, url, want, nil)
}

// file is File that tells count, if not nil, the bytes of the body as
// they arrive (see getVerifiedStream).
func (c *Client) file(ctx context.Context, url string, want FileHash, count func(int64)) (string, error) {
	if p, ok := c.Cache.Lookup(want.SHA256, want.Size); ok {
		return p, nil
	}
	return c.getVerifiedStream(ctx, url, want, nil, count)
}

// getVerifiedStream fetches url, which must match want, into the cache
// and returns its path there. If use is set, it is handed the body as it
// arrives and runs beside the download (decompressing and parsing an
// index while it downloads, say). The file and what use made of it count
// only if the whole body verifies; a failed verification is the error,
// else use's. count, if not nil, is told the bytes of the body as they
// arrive, and minus those of an attempt that failed.
func (c *Client) getVerifiedStream(ctx context.Context, url string, want FileHash, use func(io.Reader) error, count func(int64)) (string, error) {
	f, err := c.Cache.Create()
	if err != nil {
		return "", err
	}
	defer f.Discard()
	var got int64 // by this attempt
	err = c.fetch(ctx, url, func(r io.Reader) error {
		if count != nil {
			count(-got)
			got = 0
			r = &countingReader{r: r, count: func(n int64) { got += n; count(n) }}
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
		if use == nil {
			return copyVerified(f, r, want)
		}
		return teeVerified(f, r, want, use)
	})
	if err != nil {
		if count != nil {
			count(-got)
		}
		return "", err
	}
	return c.Cache.Commit(f, want.SHA256)
}

// teeVerified is copyVerified that also feeds use through a pipe.
func teeVerified(w io.Writer, r io.Reader, want FileHash, use func(io.Reader) error) error {
	pr, pw := io.Pipe()
	used := make(chan error, 1)
	go func() {
		err := use(pr)
		// Read the rest, so that the download goes on to its
		// verification, which explains a failure better.
		io.Copy(io.Discard, pr)
		used <- err
	}()
	err := copyVerified(io.MultiWriter(w, pw), r, want)
	pw.CloseWithError(err)
	if uerr := <-used; err == nil {
		err = uerr
	}
	return err
}

// getVerifiedBytes is File for a Client without a cache.
func (c *Client) getVerifiedBytes(ctx context.Context, url string, want FileHash) ([]byte, error) {
	var buf bytes.Buffer
	err := c.fetch(ctx, url, func(r io.Reader) error {
		buf.Reset()
		return copyVerified(&buf, r, want)
	})
	return buf.Bytes(), err
}
