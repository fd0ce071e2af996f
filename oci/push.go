package oci

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PushOptions configure Push. The zero value is ready to use.
type PushOptions struct {
	// Insecure allows plain HTTP to registries that are not on loopback,
	// for anonymous requests only (see plainHTTP). Loopback registries
	// (127.0.0.0/8, ::1, localhost) are always allowed it.
	Insecure bool

	// Retries is how many times a push that failed transiently (connection
	// errors, 5xx, 429) is tried again: 0 means 4, negative means never.
	Retries int

	// Backoff is the wait before the first retry; it doubles after each.
	// 0 means one second.
	Backoff time.Duration

	// Log, if set, reports each retry.
	Log func(format string, args ...any)

	// Keychain finds the credentials for the registry; nil means
	// authn.DefaultKeychain (the docker config, $DOCKER_CONFIG, and its
	// credential helpers).
	Keychain authn.Keychain
}

const (
	defaultRetries = 4
	defaultBackoff = time.Second
)

// Push uploads img to the registry and tags it as ref (such as
// "registry.example/debian:bookworm"), returning the manifest digest.
//
// Blobs the repository already has are not uploaded again, and the manifest
// goes last, so a push that fails never moves the tag. A failed attempt is
// retried as a whole, which makes it cheap: what the previous attempt
// uploaded is found and skipped. The image's layers must therefore be
// readable more than once. The proxy comes from the environment
// (HTTPS_PROXY, NO_PROXY); loopback registries are never proxied.
func Push(ctx context.Context, img v1.Image, ref string, o PushOptions) (v1.Hash, error) {
	return push(ctx, ref, o, img.Digest, func(r name.Reference, opts ...remote.Option) error {
		return remote.Write(r, img, opts...)
	})
}

// push is Push for whatever write uploads: an image or an index whose
// manifest digest is digestOf's.
func push(ctx context.Context, ref string, o PushOptions, digestOf func() (v1.Hash, error), write func(name.Reference, ...remote.Option) error) (v1.Hash, error) {
	r, err := ParseReference(ref, o.Insecure)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	registry := r.Context().RegistryStr()
	digest, err := digestOf()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}

	tr := newTransport()
	defer tr.CloseIdleConnections()
	opts, auth, err := remoteOptions(ctx, r.Context(), o.Insecure, o.Keychain, tr)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	// Push retries whole attempts itself, so that they are counted, bounded
	// and cancellable; retrying inside as well would multiply them.
	opts = append(opts, remote.WithRetryPredicate(func(error) bool { return false }), remote.WithRetryStatusCodes())

	retries := o.Retries
	if retries == 0 {
		retries = defaultRetries
	}
	retries = max(retries, 0)
	wait := o.Backoff
	if wait <= 0 {
		wait = defaultBackoff
	}
	for attempt := 1; ; attempt++ {
		err := write(r, opts...)
		if err == nil {
			return digest, nil
		}
		if ctx.Err() != nil {
			cause := context.Cause(ctx)
			return v1.Hash{}, &pushError{fmt.Sprintf("push %s: %v", ref, cause), []error{cause, err}}
		}
		anonymous := auth == authn.Anonymous
		if attempt > retries || !transient(err) {
			return v1.Hash{}, &pushError{fmt.Sprintf("push %s: %s", ref, describe(err, registry, attempt, anonymous)), []error{err}}
		}
		why := describe(err, registry, 1, anonymous)
		if o.Log != nil {
			o.Log("push %s: attempt %d of %d failed, retrying in %v: %s", ref, attempt, retries+1, wait, why)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			cause := context.Cause(ctx)
			msg := fmt.Sprintf("push %s: %v waiting to retry: %s", ref, cause, why)
			return v1.Hash{}, &pushError{msg, []error{cause, err}}
		case <-t.C:
		}
		if wait < time.Minute {
			wait = min(2*wait, time.Minute)
		}
	}
}

// remoteOptions are the options for every request to r's registry: the
// credentials from keychain (nil: authn.DefaultKeychain), returned too, and
// tr wrapped in the plain-HTTP rule. The credentials are resolved once
// rather than by remote.WithAuthFromKeychain on every request: a
// credential helper runs once, the rule knows whether there are any, and a
// 401 can tell missing credentials from rejected ones.
func remoteOptions(ctx context.Context, r name.Repository, insecure bool, keychain authn.Keychain, tr http.RoundTripper) ([]remote.Option, authn.Authenticator, error) {
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	auth, err := authn.Resolve(ctx, keychain, r)
	if err != nil {
		return nil, nil, fmt.Errorf("credentials for %s: %w", r.RegistryStr(), err)
	}
	g := &guard{inner: tr, insecure: insecure, credentials: auth != authn.Anonymous}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth),
		remote.WithTransport(g),
		remote.WithUserAgent("basebuild"),
	}, auth, nil
}

// plainHTTP says whether host (a registry's, or its token service's,
// host[:port]) may be reached over plain HTTP, and whether credentials may
// go with it: loopback both; with --insecure-registry (insecure) other
// hosts too, but without credentials; else nothing. Anyone on the path can
// read or answer plain HTTP, so go-containerregistry's own fallback to it
// for private (RFC 1918) addresses and *.localhost names is not followed.
func plainHTTP(host string, insecure bool) (allowed, credentials bool) {
	switch {
	case loopback(host):
		return true, true
	case insecure:
		return true, false
	}
	return false, false
}

// guard is the innermost transport of every registry request, whoever
// made it (a ping, a token request, a redirect): it refuses plain HTTP
// that plainHTTP does not allow. With credentials, it refuses plain HTTP
// to anything but loopback outright rather than strip them, since they
// travel in token requests' bodies as well as in Authorization headers.
type guard struct {
	inner       http.RoundTripper
	insecure    bool
	credentials bool // there are credentials for the registry
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		allowed, credentials := plainHTTP(req.URL.Host, g.insecure)
		if !allowed || g.credentials && !credentials {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, &plainHTTPError{host: req.URL.Host, credentials: allowed}
		}
	}
	return g.inner.RoundTrip(req)
}

// plainHTTPError is a request guard refused to send.
type plainHTTPError struct {
	host        string
	credentials bool // refused for the credentials only
}

func (e *plainHTTPError) Error() string {
	if e.credentials {
		return fmt.Sprintf("plain HTTP to %s refused: credentials are sent over plain HTTP to loopback registries only", e.host)
	}
	return fmt.Sprintf("plain HTTP to %s refused: it is not on loopback and --insecure-registry is not given", e.host)
}

// ParseReference parses the registry reference ref, allowing plain HTTP if
// insecure or if the registry is on loopback (the transport enforces it:
// see plainHTTP).
func ParseReference(ref string, insecure bool) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil || !insecure && !loopback(r.Context().RegistryStr()) {
		return r, err
	}
	return name.ParseReference(ref, name.Insecure)
}

// loopback reports whether the registry host[:port] is a loopback address.
func loopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newTransport is remote.DefaultTransport with a shorter connect timeout,
// so that retrying an unreachable registry takes seconds, not minutes.
// http.ProxyFromEnvironment never proxies loopback addresses.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}

// transient reports whether err may go away when the push is tried again.
func transient(err error) bool {
	var pe *plainHTTPError
	if errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests || te.StatusCode == http.StatusRequestTimeout
	}
	// Before *net.OpError, which wraps it: a host that does not exist
	// stays that way.
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTemporary || dns.IsTimeout
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true // refused, reset, timed out
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// describe says in one line why a push to registry failed after attempts
// attempts; anonymous means no credentials were sent.
func describe(err error, registry string, attempts int, anonymous bool) string {
	var pe *plainHTTPError
	if errors.As(err, &pe) {
		return pe.Error()
	}
	after := ""
	if attempts > 1 {
		after = fmt.Sprintf(" after %d attempts", attempts)
	}

	var te *transport.Error
	if errors.As(err, &te) {
		parts := []string{fmt.Sprintf("%d %s", te.StatusCode, http.StatusText(te.StatusCode))}
		for _, d := range te.Errors {
			parts = append(parts, cmp.Or(d.Message, string(d.Code)))
		}
		if te.StatusCode == http.StatusUnauthorized {
			if anonymous {
				parts = append(parts, "no credentials for "+registry)
			} else {
				parts = append(parts, registry+" rejected the credentials")
			}
		}
		msg := oneLine(strings.Join(parts, ": "))
		if after != "" {
			msg = "giving up" + after + ": " + msg
		}
		return msg
	}

	var op *net.OpError
	if errors.As(err, &op) {
		cause := op.Err
		var dns *net.DNSError
		var errno syscall.Errno
		switch {
		case errors.As(op.Err, &dns):
			cause = dns
		case errors.As(op.Err, &errno):
			cause = errno
		}
		what := "connection to registry " + registry + " failed"
		switch op.Op {
		case "dial":
			what = "registry " + registry + " unreachable"
		case "proxyconnect":
			what = "proxy for registry " + registry + " unreachable"
		}
		if op.Timeout() {
			return fmt.Sprintf("%s%s: timed out", what, after)
		}
		return fmt.Sprintf("%s%s: %s", what, after, oneLine(cause.Error()))
	}

	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Sprintf("registry %s closed the connection%s", registry, after)
	}
	return oneLine(err.Error())
}

// oneLine folds s, which may come from a registry's response, onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// pushError is a one-line message in front of the errors it describes,
// which stay reachable for errors.Is and errors.As.
type pushError struct {
	msg  string
	errs []error
}

func (e *pushError) Error() string   { return e.msg }
func (e *pushError) Unwrap() []error { return e.errs }
