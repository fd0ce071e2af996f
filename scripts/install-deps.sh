#!/usr/bin/env bash
# Usage: install-deps.sh
#
# Installs the Debian packages the tests need, as root on Debian. Idempotent
# and fast when everything is already there: one dpkg-query, and apt-get
# (update + install) only runs when something is missing.
set -euo pipefail

# The one list of packages the tests need. Keep it sorted.
packages=(
	apache2-utils # htpasswd for the registry with auth (scripts/registry.sh)
	busybox-static # a static shell for the hermetic chroot tests
	ca-certificates
	curl
	debian-archive-keyring
	debootstrap
	debuerreotype
	docker-registry # the push tests' registry (scripts/registry.sh)
	gpgv
	podman # runs the distroless images in the tests (with runc: crun fails here)
	qemu-user-static # runs the foreign --arch test's maintainer scripts (scripts/binfmt.sh)
	runc # podman's runtime in the distroless tests
	skopeo # checks what the push tests pushed
	umoci
	wget # debuerreotype-init fetches InRelease with it
	xz-utils
	zstd
)

# Packages dpkg has never heard of are left out of dpkg-query's output (it
# complains on stderr and exits 1); they count as missing like the rest.
declare -A installed=()
while read -r status pkg; do
	if [ "$status" = installed ]; then installed[$pkg]=1; fi
done < <(dpkg-query -W -f '${db:Status-Status} ${Package}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
	[ -n "${installed[$p]:-}" ] || missing+=("$p")
done

[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo >&2 "$0: missing packages (${missing[*]}); run as root to install them"
	exit 1
fi
echo >&2 "$0: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
