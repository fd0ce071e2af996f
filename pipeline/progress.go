package pipeline

import "github.com/basebuild/basebuild/apt"

// An Event says how far a phase of a build has come, for a display that
// updates as the build goes (a terminal's progress line). Events come
// often, from several goroutines at once: the receiver throttles.
type Event struct {
	Phase string // PhaseResolve, PhaseDownload, PhaseUnpack, PhaseConfigure, PhaseLayer or PhaseBuilt
	// Image and Arch are the tag and architecture of the image being
	// built; a run builds several at once (see Build).
	Image, Arch string
	Done        int // packages downloaded, unpacked or set up
	Total       int // of packages to download, unpack or set up; PhaseBuilt: the image's
	// Cached is how many packages the cache held (download).
	Cached int
	// Bytes are the bytes downloaded of TotalBytes (download) or the
	// bytes of tar written (layer, and built: the whole layer's;
	// TotalBytes 0: not known beforehand).
	Bytes, TotalBytes int64
	// Package is the package being set up (configure).
	Package string
}

// The phases an Event tells of.
const (
	PhaseResolve   = "resolve" // reading the indexes, resolving the packages
	PhaseDownload  = "download"
	PhaseUnpack    = "unpack"
	PhaseConfigure = "configure"
	PhaseLayer     = "layer"
	PhaseBuilt     = "built" // the image is built, its layer written
)

// progress tells o.Progress of e, with o's image and architecture.
func (o *Options) progress(e Event) {
	if o.Progress != nil {
		e.Image, e.Arch = o.Tag(), o.Arch
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
