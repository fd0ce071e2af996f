// Package faultproxy is a loopback HTTP proxy for tests that forwards
// requests to one upstream server and injects faults on a deterministic
// schedule: connection resets, 500s, truncated, slow or corrupted bodies.
package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// A Fault is what the proxy does to one request.
type Fault int

const (
	None           Fault = iota // forward faithfully
	Reset                       // close the connection without a response (TCP RST)
	Status500                   // answer 500 without asking upstream
	Truncate                    // forward the headers, half the body, then reset
	Slow                        // forward, but late and the first bytes dribbled
	Corrupt                     // forward the response with one byte flipped
	CorruptRequest              // forward the request body with one byte flipped
)

func (f Fault) String() string {
	return [...]string{"none", "reset", "500", "truncate", "slow", "corrupt", "corrupt-request"}[f]
}

// A Schedule picks the fault for a request: n counts all requests from 1,
// attempt counts the requests for the same method and path from 1.
type Schedule func(r *http.Request, n, attempt int) Fault

// EveryNth faults every nth request, cycling through faults, but only
// first attempts, so a client that retries once always gets through.
func EveryNth(n int, faults ...Fault) Schedule {
	return func(r *http.Request, k, attempt int) Fault {
		if attempt > 1 || k%n != 0 {
			return None
		}
		return faults[(k/n-1)%len(faults)]
	}
}

// Proxy is a running fault proxy.
type Proxy struct {
	URL  string // http://127.0.0.1:PORT
	Host string // 127.0.0.1:PORT

	upstream *url.URL
	schedule Schedule
	server   *httptest.Server
	client   *http.Client

	mu       sync.Mutex
	n        int
	attempts map[string]int
	injected map[Fault]int
}

// New starts a proxy on loopback in front of upstream (http://HOST:PORT).
func New(upstream string, schedule Schedule) (*Proxy, error) {
	if !strings.Contains(upstream, "://") {
		upstream = "http://" + upstream // a registry's HOST:PORT
	}
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		upstream: u,
		schedule: schedule,
		attempts: map[string]int{},
		injected: map[Fault]int{},
		client: &http.Client{
			Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 32},
			// Redirects go back to the client, as they would without us.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       2 * time.Minute,
		},
	}
	p.server = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.server.URL
	p.Host = strings.TrimPrefix(p.URL, "http://")
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() { p.server.Close() }

// Injected reports how many of each fault were injected so far.
func (p *Proxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[Fault]int, len(p.injected))
	for f, n := range p.injected {
		m[f] = n
	}
	return m
}

// Requests reports how many requests the proxy received.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.n++
	key := r.Method + " " + r.URL.Path
	p.attempts[key]++
	fault := p.schedule(r, p.n, p.attempts[key])
	if fault != None {
		p.injected[fault]++
	}
	p.mu.Unlock()

	switch fault {
	case Reset:
		reset(w)
		return
	case Status500:
		http.Error(w, "faultproxy: injected 500", http.StatusInternalServerError)
		return
	case Slow:
		time.Sleep(300 * time.Millisecond)
	}

	body := r.Body
	if fault == CorruptRequest && r.ContentLength != 0 {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			reset(w)
			return
		}
		flip(data)
		body = io.NopCloser(bytes.NewReader(data))
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream.ResolveReference(&url.URL{Path: r.URL.Path, RawQuery: r.URL.RawQuery}).String(), body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.ContentLength = r.ContentLength
	out.Header = r.Header.Clone()
	// The upstream sees the proxy's address, so that the URLs it makes
	// (a registry's upload Location) lead back through the proxy.
	out.Host = r.Host
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}

	switch fault {
	case Truncate:
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			reset(w)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(resp.StatusCode)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		reset(w)
	case Corrupt:
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			reset(w)
			return
		}
		flip(data)
		w.WriteHeader(resp.StatusCode)
		w.Write(data)
	case Slow:
		w.WriteHeader(resp.StatusCode)
		// Dribble the first bytes, then the rest at full speed: slow,
		// yet bounded in time whatever the size.
		for range 10 {
			if _, err := io.CopyN(w, resp.Body, 512); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
		io.Copy(w, resp.Body)
	default:
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}
}

// flip changes the byte in the middle of data, keeping its length.
func flip(data []byte) {
	if len(data) > 0 {
		data[len(data)/2] ^= 0xff
	}
}

// reset hijacks the connection and closes it with a TCP RST.
func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}
