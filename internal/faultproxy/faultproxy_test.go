package faultproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFaults(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	var got []byte
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			got, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.Header().Set("Location", "http://"+r.Host+"/next")
		w.Write(want)
	}))
	defer up.Close()

	var fault Fault
	p, err := New(up.URL, func(*http.Request, int, int) Fault { return fault })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// No keep-alive, so that a reset cannot hit a reused connection.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	get := func() (*http.Response, []byte, error) {
		resp, err := c.Get(p.URL + "/file")
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		return resp, data, err
	}

	for _, f := range []Fault{None, Slow} {
		fault = f
		resp, data, err := get()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(data, want) {
			t.Errorf("%v: %v, %d bytes, err %v; want the upstream's body", f, resp.Status, len(data), err)
		}
		if loc := resp.Header.Get("Location"); loc != p.URL+"/next" {
			t.Errorf("%v: Location %q, want it through the proxy", f, loc)
		}
	}
	fault = Reset
	if _, _, err := get(); err == nil {
		t.Errorf("reset: no error")
	}
	fault = Status500
	if resp, _, err := get(); err != nil || resp.StatusCode != 500 {
		t.Errorf("500: %v, %v", resp, err)
	}
	fault = Truncate
	if _, data, err := get(); err == nil || len(data) >= len(want) {
		t.Errorf("truncate: %d bytes, err %v; want a short body and an error", len(data), err)
	}
	fault = Corrupt
	if _, data, err := get(); err != nil || len(data) != len(want) || bytes.Equal(data, want) {
		t.Errorf("corrupt: %d bytes, err %v; want as many, different bytes", len(data), err)
	}
	fault = CorruptRequest
	req, _ := http.NewRequest(http.MethodPut, p.URL+"/up", bytes.NewReader(want))
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated || len(got) != len(want) || bytes.Equal(got, want) {
		t.Errorf("corrupt-request: %v, err %v, upstream got %d bytes; want as many, different", resp, err, len(got))
	}
	if n := p.Requests(); n != 7 {
		t.Errorf("Requests() = %d, want 7", n)
	}
	if inj := p.Injected(); inj[Reset] != 1 || inj[Corrupt] != 1 || inj[None] != 0 {
		t.Errorf("Injected() = %v", inj)
	}
}

func TestEveryNth(t *testing.T) {
	s := EveryNth(2, Reset, Status500)
	r := httptest.NewRequest("GET", "/", nil)
	var got []string
	for k := 1; k <= 6; k++ {
		got = append(got, s(r, k, 1).String())
	}
	if g := strings.Join(got, " "); g != "none reset none 500 none reset" {
		t.Errorf("first attempts: %s", g)
	}
	if f := s(r, 2, 2); f != None {
		t.Errorf("a retry got %v, want none", f)
	}
}
