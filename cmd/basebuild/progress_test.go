package main

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basebuild/basebuild/pipeline"
)

// fakeDisplay is a terminal of width columns on a buffer, with a clock
// the test moves and the redraws it schedules held for the test to run.
type fakeDisplay struct {
	*terminal
	out       bytes.Buffer
	clock     time.Time
	scheduled []func()
	delays    []time.Duration
}

func newFakeDisplay(width int) *fakeDisplay {
	d := &fakeDisplay{clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d.terminal = newDisplay(&d.out, func() int { return width })
	d.now = func() time.Time { return d.clock }
	d.start = d.clock
	d.after = func(delay time.Duration, f func()) {
		d.delays = append(d.delays, delay)
		d.scheduled = append(d.scheduled, f)
	}
	return d
}

// runScheduled runs the redraws scheduled so far.
func (d *fakeDisplay) runScheduled() {
	fs := d.scheduled
	d.scheduled = nil
	for _, f := range fs {
		f()
	}
}

// screen is what a terminal shows after out: its lines, carriage returns,
// erase-line sequences and newlines applied.
func screen(out string) []string {
	lines := []string{""}
	col := 0
	for i := 0; i < len(out); i++ {
		cur := &lines[len(lines)-1]
		switch {
		case out[i] == '\r':
			col = 0
		case out[i] == '\n':
			lines = append(lines, "")
			col = 0
		case strings.HasPrefix(out[i:], eraseLine):
			*cur = (*cur)[:col]
			i += len(eraseLine) - 1
		default:
			if col < len(*cur) {
				*cur = (*cur)[:col] + string(out[i]) + (*cur)[col+1:]
			} else {
				*cur += string(out[i])
			}
			col++
		}
	}
	return lines
}

func unpacked(done int) pipeline.Event {
	return pipeline.Event{Phase: pipeline.PhaseUnpack, Arch: "amd64", Done: done, Total: 88}
}

// TestTerminalThrottles checks that events in one phase redraw the line
// at most every redrawEvery, that the last of them is drawn when the
// interval is up, and that a new phase is drawn at once.
func TestTerminalThrottles(t *testing.T) {
	d := newFakeDisplay(80)
	d.Event(unpacked(1))
	for i := 2; i <= 50; i++ {
		d.clock = d.clock.Add(time.Millisecond)
		d.Event(unpacked(i))
	}
	if got := strings.Count(d.out.String(), "\r"); got != 1 {
		t.Errorf("50 events within 50ms drew %d times, want 1: %q", got, d.out.String())
	}
	if len(d.scheduled) != 1 || d.delays[0] != redrawEvery-time.Millisecond {
		t.Fatalf("scheduled %d redraws after %v, want one after %v", len(d.scheduled), d.delays, redrawEvery-time.Millisecond)
	}
	d.clock = d.clock.Add(redrawEvery)
	d.runScheduled()
	if got := screen(d.out.String()); len(got) != 1 || got[0] != "unpacked 50/88 packages" {
		t.Errorf("after the interval the screen shows %q, want the last event's line", got)
	}
	// A redraw with nothing new draws nothing.
	n := d.out.Len()
	d.Event(unpacked(50))
	d.runScheduled()
	d.clock = d.clock.Add(redrawEvery)
	d.Event(pipeline.Event{Phase: pipeline.PhaseConfigure, Arch: "amd64", Package: "libc6", Done: 4, Total: 88})
	if got := screen(d.out.String()); got[0] != "configuring libc6 (4/88)" {
		t.Errorf("a new phase: the screen shows %q", got)
	}
	if d.out.Len() == n {
		t.Error("a new phase was not drawn at once")
	}
	// Events past redrawEvery apart are each drawn.
	before := strings.Count(d.out.String(), "\r")
	for i := range 10 {
		d.clock = d.clock.Add(redrawEvery)
		d.Event(pipeline.Event{Phase: pipeline.PhaseLayer, Arch: "amd64", Bytes: int64(i) << 20})
	}
	if got := strings.Count(d.out.String(), "\r") - before; got != 10 {
		t.Errorf("10 events %v apart drew %d times", redrawEvery, got)
	}
}

// TestTerminalTruncates checks that the line never reaches the
// terminal's last column, and that each phase reads as it should.
func TestTerminalTruncates(t *testing.T) {
	for _, tc := range []struct {
		width int
		e     pipeline.Event
		want  string
	}{
		{80, pipeline.Event{Phase: pipeline.PhaseDownload, Done: 3, Total: 12, Cached: 76, Bytes: 4_100_000, TotalBytes: 17_560_000},
			"downloaded 3/12 packages, 4.1/17.6 MB (76 more in the cache)"},
		{40, pipeline.Event{Phase: pipeline.PhaseDownload, Done: 3, Total: 12, Cached: 76, Bytes: 4_100_000, TotalBytes: 17_560_000},
			"downloaded 3/12 packages, 4.1/17.6 MB ("},
		{80, pipeline.Event{Phase: pipeline.PhaseDownload, Cached: 88}, "all 88 packages in the cache"},
		{20, pipeline.Event{Phase: pipeline.PhaseConfigure, Package: "libpam-modules-bin", Done: 60, Total: 88}, "configuring libpam-"},
		{24, pipeline.Event{Phase: pipeline.PhaseConfigure, Package: "libc6", Done: 4, Total: 88}, "configuring libc6 (4/88)"[:23]},
		{0, pipeline.Event{Phase: pipeline.PhaseLayer, Bytes: 121_400_000}, "layer 121.4 MB"},
	} {
		d := newFakeDisplay(tc.width)
		d.Event(tc.e)
		got := screen(d.out.String())
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("width %d: screen %q, want %q", tc.width, got, tc.want)
		}
		if tc.width > 0 && len(got[0]) >= tc.width {
			t.Errorf("width %d: a line of %d columns", tc.width, len(got[0]))
		}
	}
}

// TestTerminalNotesAbove checks that notes go above the progress line,
// whole lines only, and that the line gives way to the summary.
func TestTerminalNotesAbove(t *testing.T) {
	d := newFakeDisplay(80)
	fmt.Fprintf(d, "resolved\n") // before any progress: as it is
	d.Event(unpacked(10))
	fmt.Fprintf(d, "fetched 88 packages\nSetting up ") // a line, and a start
	want := []string{"resolved", "fetched 88 packages", "unpacked 10/88 packages"}
	if got := screen(d.out.String()); !slices.Equal(got, want) {
		t.Errorf("screen %q, want %q", got, want)
	}
	fmt.Fprintf(d, "libc6 ...\n")
	want = []string{"resolved", "fetched 88 packages", "Setting up libc6 ...", "unpacked 10/88 packages"}
	if got := screen(d.out.String()); !slices.Equal(got, want) {
		t.Errorf("screen %q, want %q", got, want)
	}
	d.clock = d.clock.Add(12340 * time.Millisecond)
	d.Event(pipeline.Event{Phase: pipeline.PhaseLayer, Arch: "amd64", Bytes: 121_400_000})
	fmt.Fprintf(d, "no newline yet")
	d.Finish(true)
	d.Finish(true)
	d.Event(unpacked(88))
	fmt.Fprintf(d, "after\n")
	want = []string{"resolved", "fetched 88 packages", "Setting up libc6 ...", "no newline yet",
		"built in 12.3s: 88 packages, layer 121.4 MB", "after", ""}
	if got := screen(d.out.String()); !slices.Equal(got, want) {
		t.Errorf("screen %q, want %q", got, want)
	}

	// A failed build's line is erased, with no summary.
	d = newFakeDisplay(80)
	d.Event(unpacked(10))
	d.Finish(false)
	if got := screen(d.out.String()); !slices.Equal(got, []string{""}) {
		t.Errorf("after a failure the screen shows %q", got)
	}
	// Nothing built (--if-changed, up to date; --dry-run): the line
	// while resolving, then no summary.
	d = newFakeDisplay(80)
	d.Event(pipeline.Event{Phase: pipeline.PhaseResolve, Arch: "amd64"})
	if got := screen(d.out.String()); !slices.Equal(got, []string{"resolving the packages from the signed indexes"}) {
		t.Errorf("resolving: the screen shows %q", got)
	}
	fmt.Fprintf(finishing{t: d.terminal, w: d}, "sha256:1234\n")
	if got := screen(d.out.String()); !slices.Equal(got, []string{"sha256:1234", ""}) {
		t.Errorf("nothing built: the screen shows %q", got)
	}
}

// TestTerminalSeveral checks that with several images, or
// architectures, being built at once the line tells of each one not
// built yet, and the summary names each.
func TestTerminalSeveral(t *testing.T) {
	d := newFakeDisplay(200)
	d.archs = true
	event := func(arch, phase string, done int, bytes int64) {
		d.Event(pipeline.Event{Phase: phase, Image: "bookworm", Arch: arch, Done: done, Total: 88, Bytes: bytes})
	}
	for _, step := range []struct {
		event func()
		line  string
	}{
		{func() { event("amd64", pipeline.PhaseUnpack, 88, 0) }, "amd64: unpacked 88/88 packages"},
		{func() { event("arm64", pipeline.PhaseUnpack, 3, 0) }, "amd64: unpacked 88/88 packages | arm64: unpacked 3/88 packages"},
		{func() { event("amd64", pipeline.PhaseLayer, 0, 99_000_000) }, "amd64: layer 99.0 MB | arm64: unpacked 3/88 packages"},
		{func() { event("amd64", pipeline.PhaseBuilt, 0, 100_000_000) }, "arm64: unpacked 3/88 packages"},
		{func() { event("arm64", pipeline.PhaseBuilt, 0, 90_000_000) }, "arm64: unpacked 3/88 packages"},
	} {
		d.clock = d.clock.Add(redrawEvery)
		step.event()
		if got := screen(d.out.String()); got[0] != step.line {
			t.Errorf("screen %q, want %q", got[0], step.line)
		}
	}
	d.several = true
	d.Finish(true)
	want := "built in 500ms: bookworm amd64 88 packages, layer 100.0 MB; bookworm arm64 88 packages, layer 90.0 MB"
	if got := screen(d.out.String()); got[0] != want {
		t.Errorf("summary %q, want %q", got[0], want)
	}
}

// TestTerminalConcurrent has events and notes come from several
// goroutines at once, on the real clock, as in a build: every note ends
// up whole on a line of its own, and the summary last (run with -race).
func TestTerminalConcurrent(t *testing.T) {
	var out syncBuffer
	d := newDisplay(&out, func() int { return 80 })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				d.Event(unpacked(i))
				if i%20 == 0 {
					fmt.Fprintf(d, "note %d.%d\n", g, i)
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(2 * redrawEvery) // a scheduled redraw, if any
	d.Finish(true)
	lines := screen(out.String())
	if len(lines) != 4*10+2 || !strings.HasPrefix(lines[len(lines)-2], "built in ") {
		t.Fatalf("screen:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines[:len(lines)-2] {
		if !regexp.MustCompile(`^note \d\.\d+$`).MatchString(l) {
			t.Errorf("on the screen: %q", l)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
