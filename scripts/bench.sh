#!/usr/bin/env bash
# Usage: bench.sh            (as root; `make bench` runs it)
#
# Issue 7's benchmark: builds Debian bookworm for amd64 one way after another,
# on this machine and from the host's mirror (scripts/host-mirror.sh), and
# prints a Markdown table of wall seconds, CPU seconds (user + sys) and peak
# RSS, each the median of BENCH_RUNS runs, with wall time as a ratio of
# mmdebstrap's, then the issue's targets with PASS or MISS:
#
#   basebuild cold        empty --cache-dir each run, OCI layout output
#   basebuild warm        the cache a cold run filled, fresh output dir
#   basebuild if-changed  --push REF --if-changed with nothing changed, to a
#                         loopback registry (scripts/registry.sh) holding the
#                         image already; "n/a" while basebuild lacks the flag
#   mmdebstrap            --mode=root --variant=minbase bookworm into a tar;
#                         its apt cache is its own and empty each run
#   debuerreotype         the pipeline of scripts/reference-rootfs.sh: init,
#                         minimizing-config, sources, apt-get update and
#                         dist-upgrade, tar
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

if [ "${1:-}" = --debuerreotype-pipeline ]; then
	shift
	debuerreotype_pipeline "$@"
	exit
fi
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

# remove_tree DIR removes DIR only once nothing is mounted under the
# temporary directory (rm -rf would wander into a bind-mounted /dev or /proc);
# --one-file-system as a second guard.
remove_tree() {
	if [ -n "$(mounts_under_tmp)" ]; then
		echo >&2 "$0: still mounted under $tmp, not removing $1:"
		mounts_under_tmp >&2
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

# basebuild cold: an empty cache each run. The last run's cache is kept
# for the warm runs.
for ((i = 1; i <= runs; i++)); do
	remove_tree "$tmp/cache"
	remove_tree "$tmp/out"
	measure basebuild-cold "$i" "${bb[@]}" --cache-dir "$tmp/cache" --output "oci:$tmp/out" --report "$tmp/logs/basebuild-cold.json"
done

# basebuild warm: the cache filled, a fresh output directory.
for ((i = 1; i <= runs; i++)); do
	remove_tree "$tmp/out"
	measure basebuild-warm "$i" "${bb[@]}" --cache-dir "$tmp/cache" --output "oci:$tmp/out" --report "$tmp/logs/basebuild-warm.json"
done
remove_tree "$tmp/out"

# basebuild --if-changed: push once, then ask again with nothing changed.
help="$("$basebuild" --help 2>&1 || true)"
if grep -q -e '--if-changed' <<<"$help"; then
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
else
	echo >&2 "$0: basebuild --help lists no --if-changed; skipping that case"
fi
remove_tree "$tmp/cache"

# mmdebstrap: plain minbase from the host mirror (no -updates or
# -security), into a tar. Its apt cache lives in its temporary chroot.
for ((i = 1; i <= runs; i++)); do
	rm -f "$tmp/mmdebstrap.tar"
	measure mmdebstrap "$i" mmdebstrap --mode=root --variant=minbase --architectures="$arch" \
		"$suite" "$tmp/mmdebstrap.tar" "$mirror"
done
rm -f "$tmp/mmdebstrap.tar"

# The debuerreotype pipeline, into a fresh directory each run.
for ((i = 1; i <= runs; i++)); do
	remove_tree "$tmp/debuerreotype"
	mkdir "$tmp/debuerreotype"
	measure debuerreotype "$i" "$self" --debuerreotype-pipeline \
		"$tmp/debuerreotype/rootfs" "$tmp/debuerreotype/rootfs.tar" "$mirror" "$secmirror"
done
remove_tree "$tmp/debuerreotype"

echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw"

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
	{
		c = $1; i = ++cnt[c]
		val[c, i, "wall"] = $3; val[c, i, "cpu"] = $4 + $5; val[c, i, "mb"] = $6 * 1024 / 1e6
	}
	END {
		split("basebuild-cold basebuild-warm basebuild-if-changed mmdebstrap debuerreotype", order, " ")
		label["basebuild-cold"] = "basebuild cold (empty cache)"
		label["basebuild-warm"] = "basebuild warm (cache filled)"
		label["basebuild-if-changed"] = "basebuild --if-changed, nothing changed"
		label["mmdebstrap"] = "mmdebstrap --mode=root --variant=minbase"
		label["debuerreotype"] = "debuerreotype pipeline"
		mm = median("mmdebstrap", "wall")
		printf "| case (median of %d) | wall s | CPU s | peak RSS MB | wall ÷ mmdebstrap |\n", runs
		print "| --- | ---: | ---: | ---: | ---: |"
		rss = 0
		for (k = 1; k <= 5; k++) {
			c = order[k]
			if (!(c in cnt)) {
				printf "| %s | n/a (not implemented) | | | |\n", label[c]
				continue
			}
			w = median(c, "wall"); m = median(c, "mb")
			printf "| %s | %.1f | %.1f | %.0f | %.3f |\n", label[c], w, median(c, "cpu"), m, w / mm
			if (c ~ /^basebuild/ && m > rss) rss = m
			ratio[c] = w / mm
		}
		print ""
		print "Targets:"
		printf "- cold wall ≤ 0.15× mmdebstrap: %.3f× %s\n", ratio["basebuild-cold"], ratio["basebuild-cold"] <= 0.15 ? "PASS" : "MISS"
		printf "- warm wall ≤ 0.08× mmdebstrap: %.3f× %s\n", ratio["basebuild-warm"], ratio["basebuild-warm"] <= 0.08 ? "PASS" : "MISS"
		printf "- basebuild peak RSS ≤ 300 MB (largest of its rows): %.0f MB %s\n", rss, rss <= 300 ? "PASS" : "MISS"
		print ""
		print "Peak RSS is GNU time'\''s %M: the largest single process of the run, not the sum of"
		print "a process tree (mmdebstrap and debootstrap fork apt, dpkg and maintainer scripts)."
		print "CPU s is user + sys of the process and the children it waited for; the registry'\''s"
		print "CPU is not counted. mmdebstrap builds bookworm alone; basebuild and debuerreotype"
		print "also read bookworm-updates and bookworm-security. All fetch from the host mirror."
	}' "$raw")"

# phases REPORT prints the phases of a --report file on one line.
phases() {
	sed -n -e 's/^ *"name": "\(.*\)",$/\1/p' -e 's/^ *"seconds": \([0-9.]*\),\{0,1\}$/\1/p' "$1" |
		awk 'NR % 2 { name = $0; next } { printf "%s%s %.2fs", sep, name, $0; sep = ", " }
			END { if (NR % 2) printf "; total %.2fs", name; print "" }'
}
table="$table

basebuild's phases, last run (from --report):
- cold: $(phases "$tmp/logs/basebuild-cold.json")
- warm: $(phases "$tmp/logs/basebuild-warm.json")"

{
	echo
	echo "$table"
} >>"$raw"
cp "$raw" "$out"
echo "$table"
echo
echo "Raw numbers: $out"
