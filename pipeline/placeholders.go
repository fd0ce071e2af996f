package pipeline

import (
	"cmp"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/basebuild/basebuild/snapshots"
)

// placeholder matches what --push and --output expand: {suite},
// {variant}, {tag}, {arch}, {date} and {snapshot}.
var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// HasPlaceholders reports whether s has a placeholder to expand.
func HasPlaceholders(s string) bool { return placeholder.MatchString(s) }

// Expand replaces the placeholders of a --push or --output value: {suite}
// by the suite, {variant} by the variant (default, slim, …), {tag} by the
// image's tag (Spec.Tag: bookworm-slim, static-debian12, …), {arch} by
// the architecture, {date} by the epoch as YYYYMMDD and {snapshot} by the
// --snapshot as 20240101T000000Z. Any other, {arch} of a
// multi-architecture index, or {snapshot} without --snapshot, is an error
// naming the value.
func Expand(s string, o *Options, epoch time.Time) (string, error) {
	var err error
	out := placeholder.ReplaceAllStringFunc(s, func(p string) string {
		switch p {
		case "{suite}":
			return o.Suite
		case "{variant}":
			return cmp.Or(o.Variant, "default")
		case "{tag}":
			return o.Tag()
		case "{arch}":
			if strings.Contains(o.Arch, ",") {
				err = fmt.Errorf("%q: {arch}: several architectures make one index", s)
				return p
			}
			return o.Arch
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
			err = fmt.Errorf("%q: unknown placeholder %s: want {suite}, {variant}, {tag}, {arch}, {date} or {snapshot}", s, p)
		}
		return p
	})
	if err == nil && strings.ContainsAny(out, "{}") {
		err = fmt.Errorf("%q: unbalanced { or }", s)
	}
	return out, err
}
