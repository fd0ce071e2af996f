package apt

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/plan"
)

// Download fetches debs into the cache with jobs parallel workers and
// returns the cache path of each, keyed by SHA-256 (lowercase hex, as in
// plan.Package.SHA256). A deb enters the cache only once its size and SHA-256 match;
// one already cached is not fetched again. The first failure cancels the
// rest and is returned, naming the package and its URL.
func (c *Client) Download(ctx context.Context, debs []plan.Package, jobs int) (map[string]string, error) {
	if c.Cache == nil {
		return nil, errors.New("download: no cache")
	}
	jobs = max(jobs, 1)
	paths := make(map[string]string, len(debs))
	var todo []plan.Package
	seen := make(map[string]bool, len(debs))
	for _, d := range debs {
		if !cache.IsSHA256(d.SHA256) || d.Size <= 0 {
			return nil, fmt.Errorf("package %s %s (%s): no valid size and sha256 to check it against", d.Name, d.Version, d.URL)
		}
		if seen[d.SHA256] {
			continue
		}
		seen[d.SHA256] = true
		if p, ok := c.Cache.Lookup(d.SHA256, d.Size); ok {
			paths[d.SHA256] = p
			continue
		}
		todo = append(todo, d)
	}
	if len(todo) == 0 {
		return paths, nil
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
				p, err := c.File(ctx, d.URL, FileHash{Size: d.Size, SHA256: d.SHA256})
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("package %s %s (%s): %w", d.Name, d.Version, d.URL, err)
						cancel(firstErr)
					}
				} else {
					paths[d.SHA256] = p
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
		return nil, firstErr
	}
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	return paths, nil
}
