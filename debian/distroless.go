package debian

import (
	"fmt"
	"slices"
	"strings"
)

// The distroless variants, as GoogleContainerTools/distroless names its
// images: each has the packages of the one before it and its own.
const (
	DistrolessStatic     = "distroless-static"
	DistrolessBaseNoSSL  = "distroless-base-nossl"
	DistrolessBase       = "distroless-base"
	DistrolessCC         = "distroless-cc"
	distrolessNamePrefix = "distroless-"
)

// DistrolessVariants lists the distroless variants, smallest first.
var DistrolessVariants = []string{DistrolessStatic, DistrolessBaseNoSSL, DistrolessBase, DistrolessCC}

// CACertificates is the package whose certificates a distroless image
// carries only as the bundle update-ca-certificates would make of them
// (/etc/ssl/certs/ca-certificates.crt), with its copyright, as
// distroless's cacerts rule does; its dependencies (openssl, debconf)
// are not installed.
const CACertificates = "ca-certificates"

// distrolessPackages are the packages each variant adds to the one before
// it, per release: distroless's static/config.bzl, base/config.bzl (base
// without libssl is base-nossl) and cc/config.bzl, and the cacerts rule of
// common/BUILD.bazel in static.
var distrolessPackages = map[string]map[string][]string{
	"bookworm": {
		DistrolessStatic:    {"base-files", "netbase", "tzdata", "media-types", CACertificates},
		DistrolessBaseNoSSL: {"libc6"},
		DistrolessBase:      {"libssl3"},
		DistrolessCC:        {"libgomp1", "libstdc++6", "libgcc-s1", "gcc-12-base"},
	},
	"trixie": {
		DistrolessStatic:    {"base-files", "netbase", "tzdata", "tzdata-legacy", "media-types", CACertificates},
		DistrolessBaseNoSSL: {"libc6"},
		DistrolessBase:      {"libssl3t64", "libzstd1", "zlib1g"},
		DistrolessCC:        {"libgomp1", "libstdc++6", "libgcc-s1", "gcc-14-base"},
	},
}

// IsDistroless reports whether variant names a distroless variant.
func IsDistroless(variant string) bool {
	return slices.Contains(DistrolessVariants, variant)
}

// DistrolessPackages returns the packages distroless puts in variant for
// the release codename, sorted, or an error naming the releases it has a
// package set for.
func DistrolessPackages(variant, codename string) ([]string, error) {
	sets, ok := distrolessPackages[codename]
	if !ok {
		var have []string
		for c := range distrolessPackages {
			have = append(have, c)
		}
		slices.Sort(have)
		return nil, fmt.Errorf("--variant %s: no distroless package set for suite %q (have %s)", variant, codename, strings.Join(have, ", "))
	}
	i := slices.Index(DistrolessVariants, variant)
	if i < 0 {
		return nil, fmt.Errorf("--variant %q is not a distroless variant", variant)
	}
	var pkgs []string
	for _, v := range DistrolessVariants[:i+1] {
		pkgs = append(pkgs, sets[v]...)
	}
	slices.Sort(pkgs)
	return pkgs, nil
}

// DistrolessShipped returns every package distroless ships for the
// release codename, those of its largest variant, sorted. They are taken
// unconfigured whatever their maintainer scripts do, as distroless takes
// them: what those make, a distroless image has made natively (the CA
// bundle, /etc/passwd and /etc/group, the merged-/usr links), or goes
// without as distroless's does: base-files' shell profiles, motd and
// empty login logs (there is no shell or login), netbase's /etc/hosts
// (the container runtime provides it), tzdata's /etc/localtime (without
// it the time zone is UTC), libc6's restart of services.
func DistrolessShipped(codename string) ([]string, error) {
	return DistrolessPackages(DistrolessCC, codename)
}

// DistrolessTag is the image name distroless gives variant of codename:
// "static-debian12", "base-nossl-debian13-nonroot", …
func DistrolessTag(variant, codename string, nonroot bool) string {
	tag := strings.TrimPrefix(variant, distrolessNamePrefix) + "-debian" + Version(codename)
	if nonroot {
		tag += "-nonroot"
	}
	return tag
}

// ScriptOnlyPackages are the packages a distroless image leaves out when
// something depends on them: what maintainer scripts use (to ask
// questions, run shell and perl code, register services, add users,
// manage conffiles, divert files), which never run in an image without a
// shell. A dependency all of whose alternatives are here is dropped.
// awk is the name base-files Pre-Depends on, for its postinst.
var ScriptOnlyPackages = []string{
	"adduser",
	"awk",
	"cdebconf",
	"debconf",
	"debconf-2.0",
	"dpkg",
	"init-system-helpers",
	"lsb-base",
	"perl-base",
	"sysvinit-utils",
	"ucf",
}
