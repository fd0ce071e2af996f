package pipeline

import (
	"slices"
	"testing"

	"github.com/basebuild/basebuild/debian"
)

// A distroless image is tagged and configured as distroless's: no
// command, PATH and SSL_CERT_FILE, root in / or nonroot in its home.
func TestDistrolessSpec(t *testing.T) {
	s := Spec{Suite: "bookworm", Variant: debian.DistrolessBase}
	if got := s.Tag(); got != "base-debian12" {
		t.Errorf("tag %s, want base-debian12", got)
	}
	c := s.imageConfig()
	if c == nil || c.User != "0" || c.WorkingDir != "/" || c.Cmd != nil || c.Entrypoint != nil ||
		!slices.Equal(c.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}) {
		t.Errorf("config %+v", c)
	}
	s.Nonroot = true
	if got := s.Tag(); got != "base-debian12-nonroot" {
		t.Errorf("tag %s, want base-debian12-nonroot", got)
	}
	if c := s.imageConfig(); c.User != "65532" || c.WorkingDir != "/home/nonroot" {
		t.Errorf("nonroot config %+v", c)
	}
	// The others keep the official images' config.
	if c := (&Spec{Suite: "bookworm", Variant: VariantSlim}).imageConfig(); c != nil {
		t.Errorf("slim config %+v, want none (the official one)", c)
	}
}
