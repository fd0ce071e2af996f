// Package tail keeps the last lines of a program's output, for the one
// line an error quotes or the lines a failure replays.
package tail

import (
	"bytes"
	"io"
	"strings"
)

// Lines passes output on to W, if any, and keeps its last Max non-blank
// lines.
type Lines struct {
	W       io.Writer
	Max     int
	lines   []string
	partial []byte
}

func (l *Lines) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.add(l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	if l.W == nil {
		return len(p), nil
	}
	return l.W.Write(p)
}

func (l *Lines) add(line []byte) {
	if s := strings.TrimSpace(string(line)); s != "" {
		l.lines = append(l.lines, s)
		if len(l.lines) > l.Max {
			l.lines = l.lines[len(l.lines)-l.Max:]
		}
	}
}

// All returns the lines kept, the unfinished last one too.
func (l *Lines) All() []string {
	l.add(l.partial)
	l.partial = nil
	return l.lines
}

// Last is the last line kept, or "".
func (l *Lines) Last() string {
	if all := l.All(); len(all) > 0 {
		return all[len(all)-1]
	}
	return ""
}
