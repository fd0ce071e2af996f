package apt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/plan"
)

// Download fetches debs into the cache with jobs parallel workers and
// returns the cache path of each, keyed by SHA-256 (lowercase hex, as in
// plan.Package.SHA256), as DownloadEach does.
func (c *Client) Download(ctx context.Context, debs []plan.Package, jobs int, progress func(DownloadProgress)) (map[string]string, error) {
	paths := make(map[string]string, len(debs))
	err := c.DownloadEach(ctx, debs, jobs, progress, func(sha256, path string) { paths[sha256] = path })
	if err != nil {
		return nil, err
	}
	return paths, nil
}

// DownloadEach fetches debs into the cache with jobs parallel workers, in
// their order, and tells arrived the cache path of each, by SHA-256
// (lowercase hex, as in plan.Package.SHA256), as soon as it is there:
// those cached at once, the others as they arrive, one call at a time.
// A deb enters the cache only once its size and SHA-256 match; one
// already cached is not fetched again. The first failure cancels the
// rest and is returned, naming the package and its URL. progress, if not
// nil, is told how far the download has come: once the cache is looked
// in, as each deb arrives and every progressStep bytes, from several
// goroutines at once.
func (c *Client) DownloadEach(ctx context.Context, debs []plan.Package, jobs int, progress func(DownloadProgress), arrived func(sha256, path string)) error {
	if c.Cache == nil {
		return errors.New("download: no cache")
	}
	jobs = max(jobs, 1)
	var todo []plan.Package
	seen := make(map[string]bool, len(debs))
	for _, d := range debs {
		if !cache.IsSHA256(d.SHA256) || d.Size <= 0 {
			return fmt.Errorf("package %s %s (%s): no valid size and sha256 to check it against", d.Name, d.Version, d.URL)
		}
		if seen[d.SHA256] {
			continue
		}
		seen[d.SHA256] = true
		if p, ok := c.Cache.Lookup(d.SHA256, d.Size); ok {
			arrived(d.SHA256, p)
			continue
		}
		todo = append(todo, d)
	}
	count := newDownloadCount(todo, len(seen)-len(todo), progress)
	count.report()
	var add func(int64) // the bytes read, if they are reported
	if progress != nil {
		add = count.add
	}
	if len(todo) == 0 {
		return nil
	}
	c.logf("downloading %d of %d packages", len(todo), len(seen))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan plan.Package)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(jobs, len(todo)) {
		wg.Go(func() {
			for d := range work {
				if ctx.Err() != nil {
					continue // drain: a job failed
				}
				p, err := c.file(ctx, d.URL, FileHash{Size: d.Size, SHA256: d.SHA256}, add)
				if err == nil {
					count.done()
				}
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("package %s %s (%s): %w", d.Name, d.Version, d.URL, err)
						cancel(firstErr)
					}
				} else {
					arrived(d.SHA256, p)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, d := range todo {
		select {
		case work <- d:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	return nil
}

// DownloadProgress is how far Download has come.
type DownloadProgress struct {
	Done, Total       int   // debs fetched, of those the cache lacked
	Cached            int   // debs the cache held
	Bytes, TotalBytes int64 // fetched so far, of the debs the cache lacked
}

// progressStep is how many bytes Download fetches between two reports
// of progress: few enough calls that a display is not flooded.
const progressStep = 256 << 10

// downloadCount counts what Download fetched, with atomics only: its
// workers add to it at every read.
type downloadCount struct {
	progress       func(DownloadProgress)
	total, cached  int
	totalBytes     int64
	fetched, bytes atomic.Int64
	reported       atomic.Int64 // bytes at the last report
}

func newDownloadCount(todo []plan.Package, cached int, progress func(DownloadProgress)) *downloadCount {
	c := &downloadCount{progress: progress, total: len(todo), cached: cached}
	for _, d := range todo {
		c.totalBytes += d.Size
	}
	return c
}

// add counts n bytes read, or takes back those of a failed attempt
// (n < 0), and reports each progressStep.
func (c *downloadCount) add(n int64) {
	b := c.bytes.Add(n)
	if last := c.reported.Load(); (b-last >= progressStep || b < last) && c.reported.CompareAndSwap(last, b) {
		c.report()
	}
}

// done counts a deb fetched, and reports it.
func (c *downloadCount) done() {
	c.fetched.Add(1)
	c.report()
}

func (c *downloadCount) report() {
	if c.progress != nil {
		c.progress(DownloadProgress{Done: int(c.fetched.Load()), Total: c.total, Cached: c.cached,
			Bytes: c.bytes.Load(), TotalBytes: c.totalBytes})
	}
}

// countingReader tells count the bytes it reads.
type countingReader struct {
	r     io.Reader
	count func(int64)
}

func (r *countingReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.count(int64(n))
	return n, err
}
