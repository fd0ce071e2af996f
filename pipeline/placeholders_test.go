package pipeline

import (
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	epoch := time.Date(2024, 3, 5, 23, 59, 0, 0, time.FixedZone("X", 3600))
	snap := &Options{Spec: Spec{Suite: "bookworm", Snapshot: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}}
	live := &Options{Spec: Spec{Suite: "trixie", Arch: "arm64"}}
	slim := &Options{Spec: Spec{Suite: "bookworm", Variant: VariantSlim, Arch: "amd64"}}
	static := &Options{Spec: Spec{Suite: "bookworm", Variant: "distroless-static", Nonroot: true, Arch: "amd64,arm64"}}
	for _, tc := range []struct {
		o        *Options
		in, want string
	}{
		{snap, "reg.example/{suite}:{date}", "reg.example/bookworm:20240305"},
		{snap, "oci:out/{suite}-{snapshot}", "oci:out/bookworm-20240101T000000Z"},
		{live, "reg.example/debian:{suite}-latest", "reg.example/debian:trixie-latest"},
		{live, "plain", "plain"},
		{live, "r/debian:{suite}-{variant}-{arch}", "r/debian:trixie-default-arm64"},
		{slim, "oci:out/{tag}:{variant}", "oci:out/bookworm-slim:slim"},
		{static, "r/distroless/{tag}", "r/distroless/static-debian12-nonroot"},
	} {
		if got, err := Expand(tc.in, tc.o, epoch); err != nil || got != tc.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for in, want := range map[string]string{
		"r/{suite}:{snapshot}": `"r/{suite}:{snapshot}": {snapshot} needs --snapshot`,
		"r/{os}":               `"r/{os}": unknown placeholder {os}: want {suite}, {variant}, {tag}, {arch}, {date} or {snapshot}`,
		"r/{suite":             `"r/{suite": unbalanced { or }`,
	} {
		if _, err := Expand(in, live, epoch); err == nil || err.Error() != want {
			t.Errorf("Expand(%q): %v, want %s", in, err, want)
		}
	}
	if _, err := Expand("r/{arch}", static, epoch); err == nil || err.Error() != `"r/{arch}": {arch}: several architectures make one index` {
		t.Errorf("Expand({arch}) of an index: %v", err)
	}
}
