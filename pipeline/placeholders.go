package pipeline

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/snapshots"
)

// placeholder matches what --push and --output expand: {suite}, {date}
// and {snapshot}.
var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// HasPlaceholders reports whether s has a placeholder to expand.
func HasPlaceholders(s string) bool { return placeholder.MatchString(s) }

// Expand replaces the placeholders of a --push or --output value: {suite}
// by the suite, {date} by the epoch as YYYYMMDD and {snapshot} by the
// --snapshot as 20240101T000000Z. Any other, or {snapshot} without
// --snapshot, is an error naming the value.
func Expand(s string, o *Options, epoch time.Time) (string, error) {
	var err error
	out := placeholder.ReplaceAllStringFunc(s, func(p string) string {
		switch p {
		case "{suite}":
			return o.Suite
		case "{date}":
			return epoch.UTC().Format("20060102")
		case "{snapshot}":
			if o.Snapshot.IsZero() {
				err = fmt.Errorf("%q: {snapshot} needs --snapshot", s)
				return p
			}
			return snapshots.ID(o.Snapshot)
		}
		if err == nil {
			err = fmt.Errorf("%q: unknown placeholder %s: want {suite}, {date} or {snapshot}", s, p)
		}
		return p
	})
	if err == nil && strings.ContainsAny(out, "{}") {
		err = fmt.Errorf("%q: unbalanced { or }", s)
	}
	return out, err
}

// Epoch returns the image epoch o's build will have, as Resolve works it
// out: the snapshot's time, or the Date of the suite's InRelease, fetched
// and verified.
func Epoch(ctx context.Context, o *Options, c *apt.Client) (time.Time, error) {
	if !o.Snapshot.IsZero() {
		return o.Snapshot.UTC(), nil
	}
	a, err := o.Archives()
	if err != nil {
		return time.Time{}, err
	}
	repos, err := o.repositories(a)
	if err != nil {
		return time.Time{}, err
	}
	rel, err := c.Release(ctx, repos[0], o.now())
	if err != nil {
		return time.Time{}, err
	}
	return rel.Date, nil
}
