package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/pipeline"
)

// redrawEvery bounds how often the progress line is redrawn: events come
// far more often (every deb, every 256 KiB downloaded, every MiB of layer).
const redrawEvery = 100 * time.Millisecond

// eraseLine erases from the cursor to the end of the line (ECMA-48 EL).
const eraseLine = "\x1b[K"

// A terminal is what a person at a terminal sees of a build: one line,
// redrawn in place, saying how far the current phase has come (packages
// downloaded, unpacked, the one being configured, the layer's size), for
// each image being built at the time; the notes the build writes go
// above it, whole lines at a time, and at the end the line gives way to
// a summary. Its Write takes the notes, Event the build's progress; both
// are safe for concurrent use.
type terminal struct {
	w     io.Writer
	width func() int                  // the terminal's columns, 0 if unknown
	now   func() time.Time            // time.Now
	after func(time.Duration, func()) // runs f once d has passed

	// The run builds several images, or for several architectures:
	// the line and the summary name each one's.
	several, archs bool

	mu      sync.Mutex
	start   time.Time
	line    string    // the progress line on the screen; "" none
	next    string    // the progress line as of the last event
	drawn   time.Time // when the line was last drawn
	pending bool      // a redraw of next is scheduled
	partial []byte    // a note's start, until its newline comes
	done    bool
	images  []*imageProgress          // in the order they were first heard of
	byName  map[string]*imageProgress // by image and architecture
}

// imageProgress is how far one image has come.
type imageProgress struct {
	image, arch string
	phase, text string // its phase, and what the line says of it
	active      bool   // the line tells of it: it is not built yet
	building    bool   // it got past resolving: the summary tells of it
	packages    int
	layer       int64
}

// onTerminal shows the progress of a build of images on stderr if it is
// a terminal and they log (no --quiet): their notes go above the
// progress line, which gives way to the summary before stdout's first
// line. several and archs say the run builds several images, or for
// several architectures. onTerminal returns the stdout and stderr to use
// meanwhile, and finish, which ends the display once the build succeeded
// (ok) or failed.
func onTerminal(images []*pipeline.Options, stdout, stderr io.Writer, several, archs bool) (_, _ io.Writer, finish func(ok bool)) {
	t := newTerminal(stderr)
	if t == nil || images[0].Log == nil {
		return stdout, stderr, func(bool) {}
	}
	t.several, t.archs = several, archs
	for _, o := range images {
		o.Log, o.Progress = t, t.Event
	}
	return finishing{t: t, w: stdout}, t, t.Finish
}

// newTerminal returns the display of a build on w, or nil unless w is a
// terminal that takes escape sequences (TERM is not dumb).
func newTerminal(w io.Writer) *terminal {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) || os.Getenv("TERM") == "dumb" {
		return nil
	}
	return newDisplay(w, func() int { return terminalWidth(f) })
}

// newDisplay is a terminal writing to w, width columns wide.
func newDisplay(w io.Writer, width func() int) *terminal {
	return &terminal{w: w, width: width, now: time.Now,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		start: time.Now(), byName: map[string]*imageProgress{}}
}

// isTerminal reports whether f is a terminal: whether it has termios.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// terminalWidth is f's width in columns, 0 if it does not say.
func terminalWidth(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// Event takes the build's progress and redraws the line: at once when
// an image's phase changed, else at most every redrawEvery, a change it
// does not draw at once being drawn when the interval is up.
func (t *terminal) Event(e pipeline.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	name := e.Image + " " + e.Arch
	p := t.byName[name]
	if p == nil {
		p = &imageProgress{image: e.Image, arch: e.Arch}
		t.byName[name] = p
		t.images = append(t.images, p)
	}
	changed := p.phase != e.Phase
	p.phase, p.active = e.Phase, e.Phase != pipeline.PhaseBuilt
	p.building = p.building || e.Phase != pipeline.PhaseResolve
	switch e.Phase {
	case pipeline.PhaseUnpack, pipeline.PhaseConfigure:
		p.packages = e.Total
	case pipeline.PhaseLayer:
		p.layer = e.Bytes
	case pipeline.PhaseBuilt:
		p.packages, p.layer = e.Total, e.Bytes
	}
	p.text = describe(e)
	next := t.compose()
	if next == "" {
		return // all built: the line stays until the next image's
	}
	t.next = next
	since := t.now().Sub(t.drawn)
	switch {
	case changed || since >= redrawEvery:
		t.draw()
	case !t.pending:
		t.pending = true
		t.after(redrawEvery-since, t.flush)
	}
}

// compose is the progress line: what each image not built yet is doing.
func (t *terminal) compose() string {
	var parts []string
	for _, p := range t.images {
		if p.active {
			parts = append(parts, t.label(p, ": ")+p.text)
		}
	}
	return strings.Join(parts, " | ")
}

// label names p's image and architecture, followed by sep, where the run
// has several.
func (t *terminal) label(p *imageProgress, sep string) string {
	var name []string
	if t.several {
		name = append(name, p.image)
	}
	if t.archs {
		name = append(name, p.arch)
	}
	if len(name) == 0 {
		return ""
	}
	return strings.Join(name, " ") + sep
}

// flush draws the line as of the last event, if it was not drawn.
func (t *terminal) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = false
	if !t.done && t.next != t.line {
		t.draw()
	}
}

// draw writes t.next over the line on the screen, cut to the width of
// the terminal: a line that wrapped could not be redrawn in place.
func (t *terminal) draw() {
	t.line = truncate(t.next, t.width())
	t.drawn = t.now()
	io.WriteString(t.w, "\r"+t.line+eraseLine)
}

// truncate cuts s to fit width columns, leaving the last one free: a
// character there moves some terminals' cursor to the next line. Width
// 0 (unknown) is 80.
func truncate(s string, width int) string {
	if width <= 0 {
		width = 80
	}
	r := []rune(s)
	if len(r) < width {
		return s
	}
	return string(r[:max(width-1, 0)])
}

// describe is what the progress line says of e.
func describe(e pipeline.Event) string {
	switch e.Phase {
	case pipeline.PhaseResolve:
		return "resolving the packages from the signed indexes"
	case pipeline.PhaseDownload:
		if e.Total == 0 {
			return fmt.Sprintf("all %d packages in the cache", e.Cached)
		}
		s := fmt.Sprintf("downloaded %d/%d packages, %.1f/%s", e.Done, e.Total, float64(e.Bytes)/1e6, mb(e.TotalBytes))
		if e.Cached > 0 {
			s += fmt.Sprintf(" (%d more in the cache)", e.Cached)
		}
		return s
	case pipeline.PhaseUnpack:
		return fmt.Sprintf("unpacked %d/%d packages", e.Done, e.Total)
	case pipeline.PhaseConfigure:
		return fmt.Sprintf("configuring %s (%d/%d)", e.Package, e.Done, e.Total)
	case pipeline.PhaseLayer:
		return "layer " + mb(e.Bytes)
	}
	return e.Phase
}

// mb is n bytes in megabytes, to a tenth.
func mb(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// Write puts the complete lines of p above the progress line; a line's
// start waits for its end, so that no note is cut by a redraw.
func (t *terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	i := bytes.LastIndexByte(t.partial, '\n')
	if i < 0 {
		return len(p), nil
	}
	lines := t.partial[:i+1]
	t.partial = append([]byte(nil), t.partial[i+1:]...)
	t.above(string(lines))
	return len(p), nil
}

// above writes lines, which end in a newline, above the progress line.
func (t *terminal) above(lines string) {
	if t.line == "" || t.done {
		io.WriteString(t.w, lines)
		return
	}
	io.WriteString(t.w, "\r"+eraseLine+lines+t.line+eraseLine)
}

// Finish ends the display: the progress line gives way to the summary
// of what was built, if the build succeeded (ok) and got as far as a
// phase past resolving, else is erased. Later events are ignored and
// later notes written as they come. Finish may be called more than once.
func (t *terminal) Finish(ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	if len(t.partial) > 0 {
		t.above(string(t.partial) + "\n")
		t.partial = nil
	}
	t.done = true
	if t.line != "" {
		io.WriteString(t.w, "\r"+eraseLine)
	}
	if ok && slices.ContainsFunc(t.images, func(p *imageProgress) bool { return p.building }) {
		io.WriteString(t.w, t.summary()+"\n")
	}
}

// summary says what was built, and in how long: each image by its tag
// and architecture, not in the order in which they happened to start.
func (t *terminal) summary() string {
	images := slices.DeleteFunc(slices.Clone(t.images), func(p *imageProgress) bool { return !p.building })
	slices.SortFunc(images, func(a, b *imageProgress) int {
		return cmp.Or(strings.Compare(a.image, b.image), strings.Compare(a.arch, b.arch))
	})
	var parts []string
	for _, p := range images {
		s := t.label(p, " ") + fmt.Sprintf("%d packages", p.packages)
		if p.layer > 0 {
			s += ", layer " + mb(p.layer)
		}
		parts = append(parts, s)
	}
	took := t.now().Sub(t.start).Round(100 * time.Millisecond)
	return fmt.Sprintf("built in %s: %s", took, strings.Join(parts, "; "))
}

// finishing is the build's stdout on a terminal: the progress line gives
// way to the summary before the digest (or the package list) is printed.
type finishing struct {
	t *terminal
	w io.Writer
}

func (f finishing) Write(p []byte) (int, error) {
	f.t.Finish(true)
	return f.w.Write(p)
}
