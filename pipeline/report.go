package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/internal/atomicfile"
	"github.com/basebuild/basebuild/internal/tail"
	"github.com/basebuild/basebuild/snapshots"
)

// A Report records what a build did and how long each phase took, for
// --report FILE: what a benchmark or a nightly job's monitoring reads.
type Report struct {
	Version  string  `json:"basebuild"`
	Suite    string  `json:"suite"`
	Arch     string  `json:"arch"`
	Snapshot string  `json:"snapshot,omitempty"`
	Digest   string  `json:"digest,omitempty"`
	Packages int     `json:"packages,omitempty"`
	Phases   []Phase `json:"phases"`
	Seconds  float64 `json:"seconds"`
	// Peak resident set sizes: basebuild's own, and the largest of the
	// processes it ran and waited for (xz, dpkg, maintainer scripts).
	MaxRSSBytes         int64  `json:"maxRSSBytes"`
	ChildrenMaxRSSBytes int64  `json:"childrenMaxRSSBytes"`
	Error               string `json:"error,omitempty"`
	// Rebuilt is why --if-changed rebuilt: how the packages moved from
	// the destination's image, with changelogs and CVEs.
	Rebuilt *audit.Review `json:"rebuilt,omitempty"`
	// Images are the images of a run that builds several (--suite and
	// --variant lists), each with its digest.
	Images []ReportImage `json:"images,omitempty"`

	mu    sync.Mutex
	start time.Time
}

// A Phase is one step of a build and its wall time.
type Phase struct {
	Name    string  `json:"name"`
	Image   string  `json:"image,omitempty"` // the tag of the image it built
	Arch    string  `json:"arch,omitempty"`
	Seconds float64 `json:"seconds"`
}

// A ReportImage is one image of a run and its digest.
type ReportImage struct {
	Image  string `json:"image"`
	Digest string `json:"digest"`
}

// AddImage records the image tag of a run and its digest.
func (r *Report) AddImage(tag, digest string) {
	r.mu.Lock()
	r.Images = append(r.Images, ReportImage{Image: tag, Digest: digest})
	r.mu.Unlock()
}

// NewReport starts the report of a build of o, timed from now.
func NewReport(o *Options) *Report {
	r := &Report{Version: Version, Suite: o.Suite, Arch: o.Arch, Phases: []Phase{}, start: time.Now()}
	if !o.Snapshot.IsZero() {
		r.Snapshot = snapshots.ID(o.Snapshot)
	}
	return r
}

// phase records that the phase name, begun at start, is done, and says so
// on the log with -v.
func (o *Options) phase(name string, start time.Time) {
	d := time.Since(start)
	if o.Verbose {
		o.logf("%s: %s", name, d.Round(time.Millisecond))
	}
	if r := o.Report; r != nil {
		r.mu.Lock()
		r.Phases = append(r.Phases, Phase{Name: name, Image: o.Tag(), Arch: o.Arch, Seconds: d.Seconds()})
		r.mu.Unlock()
	}
}

// Finish completes the report with the build's outcome: the digest and
// package count of a success, or the error.
func (r *Report) Finish(digest string, packages int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Digest, r.Packages = digest, packages
	if err != nil {
		r.Error = err.Error()
	}
	r.Seconds = time.Since(r.start).Seconds()
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) == nil {
		r.MaxRSSBytes = self.Maxrss << 10 // Linux gives KiB
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) == nil {
		r.ChildrenMaxRSSBytes = children.Maxrss << 10
	}
}

// Write writes the report as JSON to path, atomically.
func (r *Report) Write(path string) error {
	r.mu.Lock()
	data, err := json.MarshalIndent(r, "", "  ")
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'), atomicfile.Options{})
}

// scriptLog is where maintainer scripts and hooks write: the log with -v,
// else a buffer of their last lines, which replay puts on the log when
// they failed.
type scriptLog struct {
	o    *Options
	tail tail.Lines
}

func (o *Options) scripts() *scriptLog { return &scriptLog{o: o, tail: tail.Lines{Max: 20}} }

func (s *scriptLog) writer() io.Writer {
	if s.o.Verbose {
		return s.o.Log
	}
	return &s.tail
}

// replay puts the scripts' last lines on the log if err says they failed.
func (s *scriptLog) replay(err error) error {
	if lines := s.tail.All(); err != nil && !s.o.Verbose && s.o.Log != nil && len(lines) > 0 {
		fmt.Fprintf(s.o.Log, "the last lines of output before the failure:\n%s\n", strings.Join(lines, "\n"))
	}
	return err
}
