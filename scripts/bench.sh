#!/usr/bin/env bash
# Usage: bench.sh            (as root; `make bench` runs it)
#
# The benchmark: builds Debian bookworm for amd64 on this machine from the
# host's mirror (scripts/host-mirror.sh), basebuild and its peers side by
# side in one run, each round A/B interleaved (a basebuild case, then a
# peer's), and prints a Markdown table of wall seconds, CPU seconds (user +
# sys) and peak RSS, each the median of BENCH_RUNS rounds, with wall time as
# a ratio of mmdebstrap at its fastest (TMPDIR on a tmpfs), then the floor
# and the targets with PASS or MISS:
#
#   basebuild cold        empty --cache-dir each run, OCI layout output
#   basebuild warm        the cache this round's cold run filled
#   basebuild if-changed  --push REF --if-changed with nothing changed, to a
#                         loopback registry (scripts/registry.sh)
#   basebuild fleet       --suite bookworm,trixie --variant default,slim, an
#                         empty --cache-dir: four images in one cold run
#   mmdebstrap (tmpfs)    --mode=root --variant=minbase bookworm into a tar,
#                         its TMPDIR (the tree and apt's cache) on a tmpfs:
#                         its fastest, without dpkg's fsyncs reaching a disk
#   mmdebstrap (disk)     the same with TMPDIR on disk, as a user runs it
#   debuerreotype         the pipeline of scripts/reference-rootfs.sh: init,
#                         minimizing-config, sources, apt-get update and
#                         dist-upgrade, tar
#
# The floor, measured each round on the very files basebuild used (the
# indexes and debs its lock names, from its cache) and on tmpfs: what no
# builder of this image can avoid on this machine, one phase each.
#
#   indexes    decompressing every Packages index read, all at once
#   unpack     decompressing every deb's data.tar, on all cores
#   configure  dpkg --configure -a, in a chroot, of the debs unpacked (with
#              --force-unsafe-io)
#   layer      tar of the configured tree, gzip -6 on all cores (pigz)
#
# Each basebuild phase (from --report, median) is printed beside its floor;
# the critical path is the floor's sum (the phases depend on each other's
# output: indexes, then debs, then configure, then the layer).
#
# Every run is timed by GNU time (/usr/bin/time -f '%e %U %S %M'). Its CPU
# time counts the children it waited for; its peak RSS (%M) is that of the
# largest single process, not the sum of a process tree's (mmdebstrap and
# debootstrap fork apt, dpkg and maintainer scripts).
#
# Environment:
#   BENCH_RUNS   runs per case, median taken (default 3; 1 for a quick check)
#   BENCH_OUT    raw numbers and the table go here too
#                (default /tmp/basebuild-bench.txt)
#   GO           the go command that builds bin/basebuild (default go)
#
# Installs what it needs when missing: the test dependencies
# (scripts/install-deps.sh: debuerreotype, docker-registry, ...) and its own
# list below. Works in a temporary directory that is removed on exit, with
# the registry stopped and no mount left behind.
set -euo pipefail
export TZ=UTC LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
repo="$(cd "$here/.." && pwd)"
suite=bookworm
arch=amd64

# debuerreotype_pipeline ROOT TAR MIRROR SECMIRROR builds SUITE the way
# scripts/reference-rootfs.sh does, minus its caching and checks. It runs as
# a process of its own (bench.sh --debuerreotype-pipeline ...) so that GNU
# time can measure it.
debuerreotype_pipeline() {
	local root="$1" tar="$2" mirror="$3" secmirror="$4"
	debuerreotype-init --non-debian --keyring /usr/share/keyrings/debian-archive-keyring.gpg \
		--merged-usr --arch "$arch" "$root" "$suite" "$mirror"
	debuerreotype-minimizing-config "$root"
	rm -f "$root/etc/apt/sources.list"
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
		"$mirror" "$suite" "$suite" "$keyring" "$secmirror" "$suite" "$keyring" \
		>"$root/etc/apt/sources.list.d/debian.sources"
	chmod 0644 "$root/etc/apt/sources.list.d/debian.sources"
	debuerreotype-apt-get "$root" update -qq
	debuerreotype-apt-get "$root" dist-upgrade -yqq
	debuerreotype-tar --exclude ./etc/machine-id "$root" "$tar"
}

# floor_indexes FILE... decompresses Packages indexes (xz or gzip, by
# content), all at once.
floor_indexes() {
	printf '%s\0' "$@" | xargs -0 -P "$#" -n 1 sh -c 'xz -dc -- "$1" 2>/dev/null || gzip -dc -- "$1"' sh >/dev/null
}

# floor_unpack DEB... decompresses every deb's data.tar on all cores.
floor_unpack() {
	printf '%s\0' "$@" | xargs -0 -P "$(nproc)" -n 8 sh -c 'for f; do dpkg-deb --fsys-tarfile "$f"; done' sh >/dev/null
}

# prepare_configure ROOT DEB... unpacks the debs into ROOT as
# debootstrap's second stage does: extracted (merged /usr), then
# registered by dpkg --unpack in a chroot, not configured.
prepare_configure() {
	local root="$1" d
	shift
	mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/lib64" "$root/var/lib/dpkg/info" \
		"$root/var/lib/dpkg/updates" "$root/debs" "$root/proc" "$root/dev"
	for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
	touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
	for d in "$@"; do
		dpkg-deb --fsys-tarfile "$d" | tar -x --keep-directory-symlink -C "$root"
		cp "$d" "$root/debs/${d##*/}.deb"
	done
	in_chroot "$root" sh -c 'dpkg --force-depends --force-unsafe-io --unpack /debs/*.deb'
	rm -rf "$root/debs"
}

# in_chroot ROOT COMMAND... runs COMMAND chrooted into ROOT with /proc and
# /dev, in a mount namespace of its own: the mounts vanish with it.
in_chroot() {
	local root="$1"
	shift
	unshare --mount --propagation private sh -c 'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"' \
		"$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"
}

# floor_layer ROOT tars the tree and compresses it as basebuild's layer
# (gzip -6) on all cores.
floor_layer() {
	tar -C "$1" --sort=name --numeric-owner -cf - . | pigz -6 -p "$(nproc)" >/dev/null
}

case "${1:-}" in
--debuerreotype-pipeline) shift; debuerreotype_pipeline "$@"; exit ;;
--floor-indexes) shift; floor_indexes "$@"; exit ;;
--floor-unpack) shift; floor_unpack "$@"; exit ;;
--prepare-configure) shift; prepare_configure "$@"; exit ;;
--floor-configure) in_chroot "$2" dpkg --force-unsafe-io --configure -a; exit ;;
--floor-layer) floor_layer "$2"; exit ;;
esac
if [ "$#" -ne 0 ]; then
	echo >&2 "usage: $0 (settings in BENCH_RUNS, BENCH_OUT, GO)"
	exit 2
fi

runs="${BENCH_RUNS:-3}"
out="${BENCH_OUT:-/tmp/basebuild-bench.txt}"
case "$runs" in
	'' | *[!0-9]* | 0*) echo >&2 "$0: BENCH_RUNS must be a positive integer, not '$runs'"; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
	echo >&2 "$0: needs root (basebuild, mmdebstrap --mode=root and debuerreotype chroot)"
	exit 1
fi
if [ "$(dpkg --print-architecture)" != "$arch" ]; then
	echo >&2 "$0: the benchmark builds $arch natively; this host is $(dpkg --print-architecture)"
	exit 1
fi

# Packages only the benchmark needs; the tests' own are in install-deps.sh.
bench_packages=(
	mmdebstrap
	pigz # the layer's floor: gzip on all cores
	time # GNU time, /usr/bin/time, for CPU time and peak RSS
)

install_bench_packages() {
	local status pkg p missing=()
	local -A installed=()
	# shellcheck disable=SC2016 # dpkg-query formats, not shell
	while read -r status pkg; do
		if [ "$status" = installed ]; then installed[$pkg]=1; fi
	done < <(dpkg-query -W -f '${db:Status-Status} ${Package}\n' "${bench_packages[@]}" 2>/dev/null || true)
	for p in "${bench_packages[@]}"; do
		[ -n "${installed[$p]:-}" ] || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return
	echo >&2 "$0: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

"$here/install-deps.sh"
install_bench_packages

echo >&2 "$0: building bin/basebuild"
(cd "$repo" && "${GO:-go}" build -o bin/basebuild ./cmd/basebuild)
basebuild="$repo/bin/basebuild"

mirror="$("$here/host-mirror.sh")"
secmirror="$("$here/host-mirror.sh" --security)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/basebuild-bench.XXXXXX")"
tmp="$(cd "$tmp" && pwd -P)" # physical path, as /proc/self/mounts shows it
registry_started=

# Mount points under the temporary directory, deepest first.
mounts_under_tmp() {
	awk -v d="$tmp/" 'index($2, d) == 1 || $2 == substr(d, 1, length(d) - 1) { print $2 }' /proc/self/mounts | sort -r
}

# remove_tree DIR removes DIR only once nothing is mounted under it (rm -rf
# would wander into a bind-mounted /dev or /proc); --one-file-system as a
# second guard.
remove_tree() {
	local below
	below="$(awk -v d="$1/" 'index($2, d) == 1 || $2 == substr(d, 1, length(d) - 1) { print $2 }' /proc/self/mounts)"
	if [ -n "$below" ]; then
		echo >&2 "$0: still mounted under $1, not removing it:"
		echo >&2 "$below"
		return 1
	fi
	rm -rf --one-file-system "$1"
}

cleanup() {
	local rc=$? m
	if [ -n "$registry_started" ]; then
		BASEBUILD_TEST_DIR="$tmp" "$here/registry.sh" stop bench || rc=1
	fi
	for m in $(mounts_under_tmp); do
		umount -R "$m" 2>/dev/null || umount -l "$m" || true
	done
	if [ -n "$(mounts_under_tmp)" ]; then
		echo >&2 "$0: mounts left under $tmp:"
		mounts_under_tmp >&2
		rc=1
	else
		rm -rf --one-file-system "$tmp" || rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$tmp/logs" "$tmp/tmp"
# basebuild, mmdebstrap and debootstrap put their working trees in TMPDIR:
# keep them (and any mount) under $tmp.
export TMPDIR="$tmp/tmp"

raw="$tmp/raw.txt"
{
	echo "# basebuild benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $suite $arch, BENCH_RUNS=$runs"
	echo "# basebuild $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
	echo "# $(mmdebstrap --version), debuerreotype $(debuerreotype-init --version 2>/dev/null)"
	echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# case run wall_s user_s sys_s maxrss_kib"
} >"$raw"

# show_failure LOG prints the end of a failed command's output, or for a Go
# crash its message and first frames rather than the goroutine dump.
show_failure() {
	if grep -q -E '^(panic|fatal error):' "$1"; then
		grep >&2 -m1 -E -A24 '^(panic|fatal error):' "$1"
	else
		tail >&2 -n 30 "$1"
	fi
}

# measure CASE RUN COMMAND... runs COMMAND under GNU time with its output in
# $tmp/logs and appends "CASE RUN wall user sys maxrss_kib" to $raw.
measure() {
	local name="$1" run="$2" wall user sys kib
	shift 2
	local log="$tmp/logs/$name-$run.log" times="$tmp/logs/$name-$run.time"
	echo >&2 "$0: $name, run $run of $runs"
	if ! /usr/bin/time -o "$times" -f '%e %U %S %M' "$@" >"$log" 2>&1 </dev/null; then
		echo >&2 "$0: $name run $run failed ($(head -n1 "$times" 2>/dev/null)):"
		show_failure "$log"
		exit 1
	fi
	read -r wall user sys kib <"$times"
	echo "$name $run $wall $user $sys $kib" >>"$raw"
	echo >&2 "$0: $name, run $run: ${wall}s wall, $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')s CPU, $((kib / 1024)) MiB peak RSS"
}

# quiet LOG COMMAND... runs an untimed preparation step.
quiet() {
	local log="$tmp/logs/$1"
	shift
	if ! "$@" >"$log" 2>&1 </dev/null; then
		echo >&2 "$0: failed: $*:"
		show_failure "$log"
		exit 1
	fi
}

bb=("$basebuild" --suite "$suite" --arch "$arch" --mirror "$mirror" --security-mirror "$secmirror")
mm=(mmdebstrap --mode=root --variant=minbase --architectures="$arch" "$suite")

# A tmpfs for mmdebstrap's TMPDIR and the floor's trees, mounted under
# $tmp (cleanup unmounts it).
mkdir -p "$tmp/tmpfs"
mount -t tmpfs -o size=4g,mode=0700 bench "$tmp/tmpfs"

# cached FILE-SHA256... prints the paths of those files in basebuild's cache.
cached() {
	local sum
	for sum in "$@"; do echo "$tmp/cache/sha256/$sum"; done
}

for ((i = 1; i <= runs; i++)); do
	# basebuild cold, an empty cache; then mmdebstrap on tmpfs.
	remove_tree "$tmp/cache"
	remove_tree "$tmp/out"
	measure basebuild-cold "$i" "${bb[@]}" --cache-dir "$tmp/cache" --output "oci:$tmp/out" --report "$tmp/logs/basebuild-cold-$i.json"
	rm -f "$tmp/tmpfs/mmdebstrap.tar"
	measure mmdebstrap-tmpfs "$i" env TMPDIR="$tmp/tmpfs" "${mm[@]}" "$tmp/tmpfs/mmdebstrap.tar" "$mirror"
	rm -f "$tmp/tmpfs/mmdebstrap.tar"

	# basebuild warm, the cache just filled; then mmdebstrap on disk.
	remove_tree "$tmp/out"
	measure basebuild-warm "$i" "${bb[@]}" --cache-dir "$tmp/cache" --output "oci:$tmp/out" --report "$tmp/logs/basebuild-warm-$i.json"
	remove_tree "$tmp/out"
	rm -f "$tmp/mmdebstrap.tar"
	measure mmdebstrap-disk "$i" "${mm[@]}" "$tmp/mmdebstrap.tar" "$mirror"
	rm -f "$tmp/mmdebstrap.tar"

	# The floor, on the files this round's basebuild read.
	quiet "lock-$i.txt" "$basebuild" lock "${bb[@]:1}" --cache-dir "$tmp/cache" -o "$tmp/bench.lock"
	mapfile -t indexes < <(cached $(grep '^release ' "$tmp/bench.lock" | grep -o '"sha256":"[0-9a-f]*"}' | cut -d'"' -f4))
	mapfile -t debs < <(cached $(grep '^package ' "$tmp/bench.lock" | sed 's/.*"sha256":"\([0-9a-f]*\)".*/\1/'))
	measure floor-indexes "$i" "$self" --floor-indexes "${indexes[@]}"
	measure floor-unpack "$i" "$self" --floor-unpack "${debs[@]}"
	remove_tree "$tmp/tmpfs/configure"
	quiet "prepare-configure-$i.log" "$self" --prepare-configure "$tmp/tmpfs/configure" "${debs[@]}"
	measure floor-configure "$i" "$self" --floor-configure "$tmp/tmpfs/configure"
	remove_tree "$tmp/tmpfs/configure"
	remove_tree "$tmp/tmpfs/rootfs"
	quiet "rootfs-$i.log" "${bb[@]}" --cache-dir "$tmp/cache" --rootfs "$tmp/tmpfs/rootfs"
	measure floor-layer "$i" "$self" --floor-layer "$tmp/tmpfs/rootfs"
	remove_tree "$tmp/tmpfs/rootfs"

	# Four images in one cold run, against this round's cold build.
	remove_tree "$tmp/fleet-cache"
	remove_tree "$tmp/fleet"
	mkdir "$tmp/fleet"
	measure basebuild-fleet "$i" "$basebuild" --suite "$suite,trixie" --variant default,slim --arch "$arch" \
		--mirror "$mirror" --security-mirror "$secmirror" --cache-dir "$tmp/fleet-cache" --output "oci:$tmp/fleet/{tag}"
	remove_tree "$tmp/fleet"
	remove_tree "$tmp/fleet-cache"
done

# basebuild --if-changed: push once, then ask again with nothing changed.
registry_started=yes
addr="$(BASEBUILD_TEST_DIR="$tmp" "$here/registry.sh" start bench)"
ref="$addr/bench/debian:$suite"
echo >&2 "$0: pushing the image once to the loopback registry"
quiet first-push.log "${bb[@]}" --cache-dir "$tmp/cache" --push "$ref"
for ((i = 1; i <= runs; i++)); do
	measure basebuild-if-changed "$i" "${bb[@]}" --cache-dir "$tmp/cache" --push "$ref" --if-changed
done
BASEBUILD_TEST_DIR="$tmp" "$here/registry.sh" stop bench
registry_started=
remove_tree "$tmp/cache"

# The debuerreotype pipeline, into a fresh directory each run.
for ((i = 1; i <= runs; i++)); do
	remove_tree "$tmp/debuerreotype"
	mkdir "$tmp/debuerreotype"
	measure debuerreotype "$i" "$self" --debuerreotype-pipeline \
		"$tmp/debuerreotype/rootfs" "$tmp/debuerreotype/rootfs.tar" "$mirror" "$secmirror"
done
remove_tree "$tmp/debuerreotype"

echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw"

# phase_lines KIND REPORT... prints "KIND PHASE SECONDS" for each phase of
# the --report files.
phase_lines() {
	local kind="$1" f
	shift
	for f in "$@"; do
		sed -n -e 's/^ *"name": "\(.*\)",$/\1/p' -e 's/^ *"seconds": \([0-9.]*\),\{0,1\}$/\1/p' "$f" |
			awk -v k="$kind" 'NR % 2 { name = $0; next } name !~ / / { print "phase-" k, name, $0 }'
	done
}
{
	phase_lines cold "$tmp"/logs/basebuild-cold-*.json
	phase_lines warm "$tmp"/logs/basebuild-warm-*.json
} >"$tmp/phases.txt"

# The table: medians per case and column; MB are 10^6 bytes.
table="$(awk -v runs="$runs" '
	function median(c, col,    n, i, j, t, v) {
		n = 0
		for (i = 1; i <= cnt[c]; i++) v[++n] = val[c, i, col]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	/^#/ { next }
	FILENAME ~ /phases/ { c = $1 "/" $2; i = ++cnt[c]; val[c, i, "wall"] = $3; next }
	{
		c = $1; i = ++cnt[c]
		val[c, i, "wall"] = $3; val[c, i, "cpu"] = $4 + $5; val[c, i, "mb"] = $6 * 1024 / 1e6
	}
	END {
		n = split("basebuild-cold basebuild-warm basebuild-if-changed basebuild-fleet mmdebstrap-tmpfs mmdebstrap-disk debuerreotype", order, " ")
		label["basebuild-fleet"] = "basebuild cold, bookworm,trixie × default,slim (4 images, one run)"
		label["basebuild-cold"] = "basebuild cold (empty cache)"
		label["basebuild-warm"] = "basebuild warm (cache filled)"
		label["basebuild-if-changed"] = "basebuild --if-changed, nothing changed"
		label["mmdebstrap-tmpfs"] = "mmdebstrap --mode=root --variant=minbase, TMPDIR on tmpfs"
		label["mmdebstrap-disk"] = "mmdebstrap --mode=root --variant=minbase, TMPDIR on disk"
		label["debuerreotype"] = "debuerreotype pipeline"
		mm = median("mmdebstrap-tmpfs", "wall")
		printf "| case (median of %d) | wall s | CPU s | peak RSS MB | wall ÷ mmdebstrap on tmpfs |\n", runs
		print "| --- | ---: | ---: | ---: | ---: |"
		rss = 0
		for (k = 1; k <= n; k++) {
			c = order[k]
			w = median(c, "wall"); m = median(c, "mb")
			printf "| %s | %.1f | %.1f | %.0f | %.3f |\n", label[c], w, median(c, "cpu"), m, w / mm
			if (c ~ /^basebuild/ && c != "basebuild-fleet" && m > rss) rss = m
			ratio[c] = w / mm
		}
		print ""
		print "The floor, on the same indexes and debs, each phase beside basebuild'\''s (medians, wall s):"
		print ""
		print "| phase | floor | basebuild cold | basebuild warm |"
		print "| --- | ---: | ---: | ---: |"
		split("indexes unpack configure layer", fl, " ")
		split("resolve unpack configure layer", ph, " ")
		floor = 0
		for (k = 1; k <= 4; k++) {
			f = median("floor-" fl[k], "wall"); floor += f
			printf "| %s (floor: %s) | %.2f | %.2f | %.2f |\n", ph[k], fl[k], f, median("phase-cold/" ph[k], "wall"), median("phase-warm/" ph[k], "wall")
		}
		other_cold = median("basebuild-cold", "wall"); other_warm = median("basebuild-warm", "wall")
		printf "| critical path (sum) | %.2f | %.2f (whole build) | %.2f (whole build) |\n", floor, other_cold, other_warm
		print ""
		print "basebuild'\''s other phases (cold / warm):"
		for (c in cnt) if (c ~ /^phase-cold\//) {
			p = substr(c, 12)
			if (p != "resolve" && p != "unpack" && p != "configure" && p != "layer")
				printf "- %s: %.2f / %.2f\n", p, median(c, "wall"), median("phase-warm/" p, "wall")
		}
		print ""
		print "Targets:"
		printf "- cold wall ≤ 0.40× mmdebstrap on tmpfs: %.3f× %s\n", ratio["basebuild-cold"], ratio["basebuild-cold"] <= 0.40 ? "PASS" : "MISS"
		printf "- warm wall ≤ 0.25× mmdebstrap on tmpfs: %.3f× %s\n", ratio["basebuild-warm"], ratio["basebuild-warm"] <= 0.25 ? "PASS" : "MISS"
		printf "- cold wall ≤ 1.15× the critical-path floor: %.2f× %s\n", other_cold / floor, other_cold / floor <= 1.15 ? "PASS" : "MISS"
		printf "- warm wall ≤ 1.15× the critical-path floor: %.2f× %s\n", other_warm / floor, other_warm / floor <= 1.15 ? "PASS" : "MISS"
		printf "- basebuild peak RSS ≤ 300 MB (largest of its one-image rows): %.0f MB %s\n", rss, rss <= 300 ? "PASS" : "MISS"
		fleet = median("basebuild-fleet", "wall") / other_cold
		printf "- 4 images in one cold run ≤ 2× one cold build: %.2f× %s\n", fleet, fleet <= 2 ? "PASS" : "MISS"
		print ""
		print "Rounds are interleaved: basebuild cold, mmdebstrap on tmpfs, basebuild warm,"
		print "mmdebstrap on disk, the floor, basebuild fleet. Peak RSS is GNU time'\''s %M: the largest single"
		print "process of the run, not the sum of a process tree (mmdebstrap and debootstrap fork"
		print "apt, dpkg and maintainer scripts). CPU s is user + sys of the process and the"
		print "children it waited for. mmdebstrap builds bookworm alone; basebuild and"
		print "debuerreotype also read bookworm-updates and bookworm-security. All fetch from the"
		print "host mirror; the floor fetches nothing (the cold build'\''s downloads are not in it)."
	}' "$raw" "$tmp/phases.txt")"

{
	echo
	echo "$table"
} >>"$raw"
cp "$raw" "$out"
echo "$table"
echo
echo "Raw numbers: $out"
