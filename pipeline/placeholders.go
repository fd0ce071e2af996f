package pipeline

import (
	"fmt"
	"regexp"
	"strings"
	"time"

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
