#!/usr/bin/env bash
# Usage: reference-rootfs.sh SUITE OUTDIR
#
# Builds, with debuerreotype, the reference rootfs of SUITE that the
# end-to-end tests compare basebuild's output against, the way
# debuerreotype's examples/debian.sh builds the official images, but from
# the host's mirror (snapshot.debian.org is unreachable here). Needs root.
#
# Outputs in OUTDIR (tests use /var/cache/basebuild-test/reference/SUITE):
#   rootfs/         the tree, after debuerreotype-fixup (as in the images)
#   rootfs.tar      debuerreotype-tar of it (minus /etc/machine-id, as
#                   examples/debian.sh does)
#   dpkg-query.txt  installed packages, "name version arch", sorted by name
#                   (the format of basebuild --dry-run)
#   epoch           the SOURCE_DATE_EPOCH used: SUITE's InRelease Date
#   mirror-state    InRelease Date of SUITE, SUITE-updates, SUITE-security
#                   on the mirror, plus a hash of this script
#   rootfs.ok       written last; only a complete build has it
#
# Cached: nothing is done while rootfs.ok exists and mirror-state still
# matches the mirror. The mirror moves a few times a day, so expect a
# rebuild (a few minutes) after that.
set -euo pipefail
export TZ=UTC LC_ALL=C

if [ "$#" -ne 2 ]; then
	echo >&2 "usage: $0 SUITE OUTDIR"
	exit 2
fi
suite="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
mkdir -p "$2"
outdir="$(cd "$2" && pwd -P)" # physical path, as /proc/self/mounts shows it

mirror="$("$here/host-mirror.sh")"
secmirror="$("$here/host-mirror.sh" --security)"
case "$suite" in
	sid | unstable | experimental) updates='' security='' ;;
	jessie | stretch | buster) updates="$suite-updates" security="$suite/updates" ;;
	*) updates="$suite-updates" security="$suite-security" ;;
esac

# One build per OUTDIR at a time (parallel test runs share the cache).
exec 9>"$outdir/.lock"
flock 9

release_date() { # MIRROR SUITE
	local release
	release="$(curl -fsS --retry 3 "$1/dists/$2/InRelease")"
	awk -F': ' '$1 == "Date" { print $2; found = 1; exit } END { exit !found }' <<<"$release"
}

mirror_state() {
	echo "$suite $(release_date "$mirror" "$suite")"
	[ -z "$updates" ] || echo "$updates $(release_date "$mirror" "$updates")"
	[ -z "$security" ] || echo "$security $(release_date "$secmirror" "$security")"
	# A changed recipe must invalidate the cache too.
	echo "recipe $(sha256sum <"$self" | cut -d' ' -f1)"
}

state="$(mirror_state)"
if [ -e "$outdir/rootfs.ok" ] && [ "$state" = "$(cat "$outdir/mirror-state" 2>/dev/null)" ]; then
	exit 0
fi

start=$SECONDS
echo >&2 "$0: building the $suite reference rootfs in $outdir"

# Mount points under OUTDIR, deepest first.
mounts_under_outdir() {
	awk -v d="$outdir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r
}

# rm -rf only once nothing is mounted below (it would otherwise wander into
# a bind-mounted /dev or /proc); --one-file-system as a second guard.
remove_tree() {
	if [ -n "$(mounts_under_outdir)" ]; then
		echo >&2 "$0: still mounted under $outdir, not removing $1:"
		mounts_under_outdir >&2
		return 1
	fi
	rm -rf --one-file-system "$1"
}

# debuerreotype mounts inside "unshare --mount", so nothing should leak into
# our namespace; make sure of it, even when the build failed.
cleanup() {
	local rc=$? m
	for m in $(mounts_under_outdir); do
		umount -R "$m" 2>/dev/null || umount -l "$m" || true
	done
	if [ "$rc" -ne 0 ]; then
		remove_tree "$outdir/rootfs.new" || true
		echo >&2 "$0: building the $suite reference rootfs failed"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Invalidate the old result before touching anything.
rm -f "$outdir/rootfs.ok" "$outdir/mirror-state"
remove_tree "$outdir/rootfs"
remove_tree "$outdir/rootfs.new"
rm -f "$outdir/rootfs.tar" "$outdir/dpkg-query.txt" "$outdir/epoch"

root="$outdir/rootfs.new"
initArgs=(--non-debian --keyring /usr/share/keyrings/debian-archive-keyring.gpg)
# merged-/usr from bookworm on, as examples/debian.sh decides it.
case "$suite" in
	jessie | stretch | buster | bullseye) initArgs+=(--no-merged-usr) ;;
	*) initArgs+=(--merged-usr) ;;
esac
# --non-debian: take the host mirror as is; debuerreotype-init then sets
# the epoch from the suite's InRelease Date, as basebuild does without
# --snapshot.
debuerreotype-init "${initArgs[@]}" "$root" "$suite" "$mirror"
debuerreotype-minimizing-config "$root"

# The sources the image ships: deb822 where APT supports it (>= 2.3, the
# same cut-off as debuerreotype-debian-sources-list), else sources.list.
# shellcheck disable=SC2016 # dpkg-query formats, not shell
aptVersion="$(chroot "$root" dpkg-query -W -f '${Version}' apt)"
if dpkg --compare-versions "$aptVersion" '>=' '2.3~'; then
	sources=/etc/apt/sources.list.d/debian.sources
	rm -f "$root/etc/apt/sources.list"
	{
		printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$mirror" "$suite${updates:+ $updates}"
		if [ -n "$security" ]; then
			printf '\nTypes: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
				"$secmirror" "$security"
		fi
	} >"$root$sources"
else
	sources=/etc/apt/sources.list
	{
		echo "deb $mirror $suite main"
		[ -z "$security" ] || echo "deb $secmirror $security main"
		[ -z "$updates" ] || echo "deb $mirror $updates main"
	} >"$root$sources"
fi
chmod 0644 "$root$sources"

debuerreotype-apt-get "$root" update -qq
debuerreotype-apt-get "$root" dist-upgrade -yqq

# The mirror may have moved on while we built; then this build matches
# neither the old nor the new state, so fail rather than cache it.
epoch="$(cat "$root/debuerreotype-epoch")"
mainDate="$(head -n1 <<<"$state" | cut -d' ' -f2-)"
if [ "$epoch" != "$(date --date "$mainDate" +%s)" ] || [ "$state" != "$(mirror_state)" ]; then
	echo >&2 "$0: the mirror changed during the build; run again"
	exit 1
fi

# Only packages dpkg calls installed (not e.g. config-files leftovers).
# shellcheck disable=SC2016
chroot "$root" dpkg-query -W -f '${db:Status-Status} ${Package} ${Version} ${Architecture}\n' |
	awk '$1 == "installed" { print $2, $3, $4 }' | sort >"$outdir/dpkg-query.txt"

# debuerreotype-tar runs debuerreotype-fixup on the tree first, so the kept
# rootfs is the tree as the official images contain it.
debuerreotype-tar --exclude ./etc/machine-id "$root" "$outdir/rootfs.tar"

if [ -n "$(mounts_under_outdir)" ]; then
	echo >&2 "$0: debuerreotype left mounts under $outdir"
	exit 1
fi
mv "$root" "$outdir/rootfs"
echo "$epoch" >"$outdir/epoch"
echo "$state" >"$outdir/mirror-state"
touch "$outdir/rootfs.ok"
echo >&2 "$0: built the $suite reference rootfs in $((SECONDS - start))s: $(wc -l <"$outdir/dpkg-query.txt") packages, epoch $epoch"
