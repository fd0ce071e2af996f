package pipeline

import "github.com/basebuild/basebuild/apt"

// An Event says how far a phase of a build has come, for a display that
// updates as the build goes (a terminal's progress line). Events come
// often, from several goroutines at once: the receiver throttles.
type Event struct {
	Phase string // PhaseDownload, PhaseUnpack, PhaseConfigure or PhaseLayer
	Arch  string // of the image being built
	Done  int    // packages downloaded, unpacked or set up
	Total int    // of packages to download, unpack or set up
	// Cached is how many packages the cache held (download).
	Cached int
	// Bytes are the bytes downloaded of TotalBytes (download) or the
	// bytes of tar written (layer, TotalBytes 0: not known beforehand).
	Bytes, TotalBytes int64
	// Package is the package being set up (configure).
	Package string
}

// The phases an Event tells of.
const (
	PhaseDownload  = "download"
	PhaseUnpack    = "unpack"
	PhaseConfigure = "configure"
	PhaseLayer     = "layer"
)

// progress tells o.Progress of e, with o's architecture.
func (o *Options) progress(e Event) {
	if o.Progress != nil {
		e.Arch = o.Arch
		o.Progress(e)
	}
}

// downloadProgress is apt.Client.Download's progress callback for
// o.Progress, nil without one.
func (o *Options) downloadProgress() func(apt.DownloadProgress) {
	if o.Progress == nil {
		return nil
	}
	return func(p apt.DownloadProgress) {
		o.progress(Event{Phase: PhaseDownload, Done: p.Done, Total: p.Total, Cached: p.Cached, Bytes: p.Bytes, TotalBytes: p.TotalBytes})
	}
}
