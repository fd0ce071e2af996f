package debian

import (
	"strings"
	"testing"
)

// The package sets are distroless's per release, each variant adding to
// the one before it.
func TestDistrolessPackages(t *testing.T) {
	for _, c := range []struct{ variant, codename, want string }{
		{DistrolessStatic, "bookworm", "base-files ca-certificates media-types netbase tzdata"},
		{DistrolessBaseNoSSL, "bookworm", "base-files ca-certificates libc6 media-types netbase tzdata"},
		{DistrolessBase, "bookworm", "base-files ca-certificates libc6 libssl3 media-types netbase tzdata"},
		{DistrolessCC, "bookworm", "base-files ca-certificates gcc-12-base libc6 libgcc-s1 libgomp1 libssl3 libstdc++6 media-types netbase tzdata"},
		{DistrolessStatic, "trixie", "base-files ca-certificates media-types netbase tzdata tzdata-legacy"},
		{DistrolessBase, "trixie", "base-files ca-certificates libc6 libssl3t64 libzstd1 media-types netbase tzdata tzdata-legacy zlib1g"},
		{DistrolessCC, "trixie", "base-files ca-certificates gcc-14-base libc6 libgcc-s1 libgomp1 libssl3t64 libstdc++6 libzstd1 media-types netbase tzdata tzdata-legacy zlib1g"},
	} {
		got, err := DistrolessPackages(c.variant, c.codename)
		if err != nil {
			t.Errorf("%s %s: %v", c.variant, c.codename, err)
			continue
		}
		if s := strings.Join(got, " "); s != c.want {
			t.Errorf("%s %s: %s, want %s", c.variant, c.codename, s, c.want)
		}
	}
	_, err := DistrolessPackages(DistrolessStatic, "bullseye")
	if want := `--variant distroless-static: no distroless package set for suite "bullseye" (have bookworm, trixie)`; err == nil || err.Error() != want {
		t.Errorf("bullseye: %v, want %s", err, want)
	}
}

func TestDistrolessTag(t *testing.T) {
	for _, c := range []struct {
		variant, codename string
		nonroot           bool
		want              string
	}{
		{DistrolessStatic, "bookworm", false, "static-debian12"},
		{DistrolessBaseNoSSL, "trixie", true, "base-nossl-debian13-nonroot"},
		{DistrolessCC, "bookworm", true, "cc-debian12-nonroot"},
	} {
		if got := DistrolessTag(c.variant, c.codename, c.nonroot); got != c.want {
			t.Errorf("%s %s %v: %s, want %s", c.variant, c.codename, c.nonroot, got, c.want)
		}
	}
}
