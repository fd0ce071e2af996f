package debian

import "slices"

// An Arch is a Debian architecture and its names elsewhere.
type Arch struct {
	Name string // Debian's: "armhf"
	// GOARCH is Go's name, whose program runs on it: "arm".
	GOARCH string
	// OCIArch and OCIVariant are its OCI platform, as the official
	// images name them: "arm", "v7". OCIArch is "" for none.
	OCIArch, OCIVariant string
	// QEMU is the CPU name of qemu-user and of qemu-user-static's
	// binfmt_misc entries (qemu-CPU): "arm".
	QEMU string
	// Multiarch is its multiarch tuple, the directory under /lib and
	// /usr/lib its libraries are in: "arm-linux-gnueabihf".
	Multiarch string
}

// archs are the architectures basebuild knows, by Debian name. For the
// two arm ones, Go's "arm" is armhf's: a GOARM=7 program.
var archs = []Arch{
	{"amd64", "amd64", "amd64", "", "x86_64", "x86_64-linux-gnu"},
	{"arm64", "arm64", "arm64", "v8", "aarch64", "aarch64-linux-gnu"},
	{"armel", "", "arm", "v5", "arm", "arm-linux-gnueabi"},
	{"armhf", "arm", "arm", "v7", "arm", "arm-linux-gnueabihf"},
	{"i386", "386", "386", "", "i386", "i386-linux-gnu"},
	{"loong64", "loong64", "loong64", "", "loongarch64", "loongarch64-linux-gnu"},
	{"mips64el", "mips64le", "mips64le", "", "mips64el", "mips64el-linux-gnuabi64"},
	{"mipsel", "mipsle", "mipsle", "", "mipsel", "mipsel-linux-gnu"},
	{"ppc64", "ppc64", "", "", "ppc64", "powerpc64-linux-gnu"},
	{"ppc64el", "ppc64le", "ppc64le", "", "ppc64le", "powerpc64le-linux-gnu"},
	{"riscv64", "riscv64", "riscv64", "", "riscv64", "riscv64-linux-gnu"},
	{"s390x", "s390x", "s390x", "", "s390x", "s390x-linux-gnu"},
}

// LookupArch returns the Debian architecture name.
func LookupArch(name string) (Arch, bool) {
	for _, a := range archs {
		if a.Name == name {
			return a, true
		}
	}
	return Arch{}, false
}

// Archs returns the architectures basebuild knows.
func Archs() []Arch {
	return slices.Clone(archs)
}

// ArchOf returns the Debian name of the Go architecture goarch, or goarch
// itself for one it does not know.
func ArchOf(goarch string) string {
	for _, a := range archs {
		if a.GOARCH == goarch {
			return a.Name
		}
	}
	return goarch
}
