#!/usr/bin/env bash
# Usage: reference-slim.sh SUITE OUTDIR
#
# Builds, with debuerreotype, the reference "slim" rootfs of SUITE the way
# debuerreotype's examples/debian.sh makes the slim variant: a copy of the
# upgraded tree, debuerreotype-slimify on it, then debuerreotype-tar with
# the same excludes as the default variant. The copy is taken from the
# default reference that reference-rootfs.sh keeps (run first, so it is
# current). Needs root.
#
# Outputs in OUTDIR (tests use /var/cache/basebuild-test/reference/SUITE-slim):
#   rootfs/     the slimified tree, after debuerreotype-fixup
#   rootfs.tar  debuerreotype-tar of it (minus /etc/machine-id)
#   epoch       the default reference's SOURCE_DATE_EPOCH
#   rootfs.ok   written last; only a complete build has it
#
# Cached: nothing is done while rootfs.ok is newer than the default
# reference's and this script.
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
outdir="$(cd "$2" && pwd -P)"
base="$(dirname "$outdir")/$suite"

"$here/reference-rootfs.sh" "$suite" "$base"

exec 9>"$outdir/.lock"
flock 9
# Hold the default reference's lock too: a rebuild of it must not remove
# the tree while we copy it.
exec 8>"$base/.lock"
flock -s 8

if [ "$outdir/rootfs.ok" -nt "$base/rootfs.ok" ] && [ "$outdir/rootfs.ok" -nt "$self" ]; then
	exit 0
fi
echo >&2 "$0: building the $suite slim reference rootfs in $outdir"

mounts_under_outdir() {
	awk -v d="$outdir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r
}
remove_tree() {
	if [ -n "$(mounts_under_outdir)" ]; then
		echo >&2 "$0: still mounted under $outdir, not removing $1:"
		mounts_under_outdir >&2
		return 1
	fi
	rm -rf --one-file-system "$1"
}
cleanup() {
	local rc=$? m
	for m in $(mounts_under_outdir); do
		umount -R "$m" 2>/dev/null || umount -l "$m" || true
	done
	if [ "$rc" -ne 0 ]; then
		remove_tree "$outdir/rootfs.new" || true
		echo >&2 "$0: building the $suite slim reference rootfs failed"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -f "$outdir/rootfs.ok" "$outdir/rootfs.tar" "$outdir/epoch"
remove_tree "$outdir/rootfs"
remove_tree "$outdir/rootfs.new"

root="$outdir/rootfs.new"
# examples/debian.sh copies with tar; cp -a keeps the same metadata.
cp -a "$base/rootfs" "$root"
debuerreotype-slimify "$root"
debuerreotype-tar --exclude ./etc/machine-id "$root" "$outdir/rootfs.tar"

if [ -n "$(mounts_under_outdir)" ]; then
	echo >&2 "$0: debuerreotype left mounts under $outdir"
	exit 1
fi
mv "$root" "$outdir/rootfs"
cp "$base/epoch" "$outdir/epoch"
touch "$outdir/rootfs.ok"
