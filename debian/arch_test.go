package debian

import "testing"

func TestArchOf(t *testing.T) {
	for goarch, want := range map[string]string{
		"amd64": "amd64", "386": "i386", "arm": "armhf", "arm64": "arm64", "ppc64le": "ppc64el",
		"mips64le": "mips64el", "mipsle": "mipsel", "s390x": "s390x", "wasm": "wasm",
	} {
		if got := ArchOf(goarch); got != want {
			t.Errorf("ArchOf(%q) = %q, want %q", goarch, got, want)
		}
	}
}

// The OCI platforms are Go's names (the image spec's GOARCH values) and
// qemu's CPU names its own: mipsel is OCI's mipsle and qemu's mipsel;
// armel's multiarch tuple is arm-linux-gnueabi.
func TestLookupArch(t *testing.T) {
	for name, want := range map[string]Arch{
		"mipsel":  {"mipsel", "mipsle", "mipsle", "", "mipsel", "mipsel-linux-gnu"},
		"armel":   {"armel", "", "arm", "v5", "arm", "arm-linux-gnueabi"},
		"ppc64el": {"ppc64el", "ppc64le", "ppc64le", "", "ppc64le", "powerpc64le-linux-gnu"},
		"amd64":   {"amd64", "amd64", "amd64", "", "x86_64", "x86_64-linux-gnu"},
	} {
		if got, ok := LookupArch(name); !ok || got != want {
			t.Errorf("LookupArch(%q) = %+v, %v; want %+v", name, got, ok, want)
		}
	}
	if _, ok := LookupArch("vax"); ok {
		t.Error("LookupArch(vax) found one")
	}
	for _, a := range archs {
		if a.GOARCH != "" && ArchOf(a.GOARCH) != a.Name {
			t.Errorf("%s: GOARCH %s is %s's", a.Name, a.GOARCH, ArchOf(a.GOARCH))
		}
	}
}
