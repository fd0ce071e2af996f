#!/usr/bin/env bash
# Usage: snapshot-server.sh start|stop|url
#
# Runs scripts/snapshot-server (a snapshot.debian.org look-alike backed by
# the host's mirror; see its doc comment) in the background for the tests.
#   start  build it, start it unless already running, print its URL
#   stop   stop it (no error if it is not running)
#   url    print its URL; exit 1 if it is not running
# State lives in ${BASEBUILD_TEST_DIR:-/tmp/basebuild-test}: the binary,
# snapshot-server.pid, snapshot-server.url and snapshot-server.log.
# SNAPSHOT_SERVER_VERBOSE=1 logs every request to the log file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${BASEBUILD_TEST_DIR:-/tmp/basebuild-test}"
bin="$dir/snapshot-server"
pidfile="$dir/snapshot-server.pid"
urlfile="$dir/snapshot-server.url"
logfile="$dir/snapshot-server.log"

# The pid of our server, if it is running. Checking the executable guards
# against a stale pidfile whose pid now belongs to some other process.
running_pid() {
	local pid
	pid="$(cat "$pidfile" 2>/dev/null)" || return 1
	[ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$bin" ] || return 1
	echo "$pid"
}

start() {
	mkdir -p "$dir"
	local go="${GO:-go}"
	command -v "$go" >/dev/null || go=/usr/local/go/bin/go
	# Always build: cheap when cached, and a running server stays in sync
	# with the source only if we restart it, so restart on a new binary.
	local old=''
	[ -e "$bin" ] && old="$(sha256sum <"$bin")"
	(cd "$here/.." && "$go" build -o "$bin.new" ./scripts/snapshot-server)
	if [ "$(sha256sum <"$bin.new")" = "$old" ]; then
		rm -f "$bin.new"
		if running_pid >/dev/null && [ -s "$urlfile" ]; then
			cat "$urlfile"
			return
		fi
	else
		stop
		mv -f "$bin.new" "$bin"
	fi

	rm -f "$urlfile"
	local args=(
		-mirror "$("$here/host-mirror.sh")"
		-security-mirror "$("$here/host-mirror.sh" --security)"
		-url-file "$urlfile"
	)
	[ -n "${SNAPSHOT_SERVER_VERBOSE:-}" ] && args+=(-v)
	# setsid: its own session, so a Ctrl-C aimed at the test run that
	# started it does not take it down half-way through another run.
	# 9>&-: the server must not inherit (and so hold) the lock.
	setsid "$bin" "${args[@]}" >>"$logfile" 2>&1 </dev/null 9>&- &
	echo $! >"$pidfile"

	local i
	for ((i = 0; i < 100; i++)); do
		if [ -s "$urlfile" ]; then
			cat "$urlfile"
			return
		fi
		if ! kill -0 "$!" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo >&2 "$0: snapshot-server did not start; see $logfile:"
	tail >&2 -n 20 "$logfile"
	stop
	exit 1
}

stop() {
	local pid i
	if pid="$(running_pid)"; then
		kill "$pid"
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile" "$urlfile"
}

url() {
	if running_pid >/dev/null && [ -s "$urlfile" ]; then
		cat "$urlfile"
	else
		echo >&2 "$0: snapshot-server is not running"
		exit 1
	fi
}

case "${1:-}" in
	start | stop)
		# Serialise concurrent start/stop calls (parallel test runs).
		mkdir -p "$dir"
		exec 9>"$dir/snapshot-server.lock"
		flock 9
		"$1"
		;;
	url) url ;;
	*) echo >&2 "usage: $0 start|stop|url"; exit 2 ;;
esac
