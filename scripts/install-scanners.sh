#!/usr/bin/env bash
# Usage: install-scanners.sh
#
# Builds the SBOM scanners the distroless tests check images with (syft and
# trivy, at the versions below) from the Go module proxy, once: each binary
# is cached under $SCANNER_DIR with its version in its name, so a second run
# does nothing. They are built, not downloaded as release binaries, so that
# the module proxy's checksum database vouches for what runs.
set -euo pipefail

dir=${SCANNER_DIR:-/var/cache/basebuild-test/bin}
mkdir -p "$dir"

# install NAME PACKAGE VERSION [ENV…]: go install PACKAGE@VERSION into
# $dir/NAME-VERSION (atomically: built in a temporary GOBIN, then renamed)
# and point $dir/NAME at it.
install() {
	local name=$1 pkg=$2 version=$3
	shift 3
	if [ ! -x "$dir/$name-$version" ]; then
		local tmp
		tmp=$(mktemp -d "$dir/.build.XXXXXX")
		echo >&2 "$0: building $name $version (takes minutes)"
		if ! env GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$@" \
			go install -trimpath "$pkg@$version"; then
			rm -rf "$tmp"
			return 1
		fi
		mv "$tmp/$name" "$dir/$name-$version"
		rm -rf "$tmp"
	fi
	ln -sfn "$name-$version" "$dir/$name"
}

install syft github.com/anchore/syft/cmd/syft v1.57.2
# trivy v0.74 uses encoding/json/v2, which needs the experiment.
install trivy github.com/aquasecurity/trivy/cmd/trivy v0.74.0 GOEXPERIMENT=jsonv2
