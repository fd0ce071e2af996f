// Package sentinel holds what the containment tests set out on the host
// for a hostile package to reach for, and tell afterwards whether it did.
package sentinel

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"
)

// A Listener is a TCP listener on host loopback that counts the
// connections reaching it.
type Listener struct {
	Port     string // the port, for a script to try
	accepted atomic.Int32
}

// Listen starts a Listener on 127.0.0.1, closed when t ends.
func Listen(t testing.TB) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	l := &Listener{Port: strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			conn.Close()
		}
	}()
	return l
}

// Accepted is the number of connections that reached l.
func (l *Listener) Accepted() int { return int(l.accepted.Load()) }
