#!/usr/bin/env bash
# Usage: registry.sh start NAME [--auth] | stop NAME | url NAME
#
# Runs Debian's docker-registry (CNCF distribution) on loopback for the push
# tests; NAME tells several apart (make test runs `plain` and `auth`).
#   start NAME [--auth]  start it unless already running so, print its address
#   stop NAME            stop it (no error if it is not running)
#   url NAME             print its address, 127.0.0.1:PORT; exit 1 if not running
# State lives in ${BASEBUILD_TEST_DIR:-/tmp/basebuild-test}/registry-NAME:
# config.yml, data/ (the storage), registry.log, registry.pid, addr. With
# --auth the registry wants htpasswd (bcrypt) logins: user basebuild with the
# password in password, and docker/config.json holds that login, so
# DOCKER_CONFIG=registry-NAME/docker lets docker-config clients push.
set -euo pipefail
umask 077 # the password and the docker config

bin=/usr/bin/docker-registry
user=basebuild

usage() {
	echo >&2 "usage: $0 start NAME [--auth] | stop NAME | url NAME"
	exit 2
}

# The pid of our registry, if it is running. The executable and the config
# on its command line guard against a stale pidfile whose pid is now some
# other process, such as the system's own registry service.
running_pid() {
	local pid cmdline
	pid="$(cat "$pidfile" 2>/dev/null)" || return 1
	[ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$bin" ] || return 1
	cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
	[[ "$cmdline" == *" $config "* ]] || return 1
	echo "$pid"
}

# listen_port PID prints the TCP port PID listens on. The registry binds
# 127.0.0.1:0 so the kernel picks a free port; we find it through the
# socket inodes of its open files and the kernel's table of TCP sockets.
listen_port() {
	local pid="$1" fd link
	local -A inodes=()
	for fd in "/proc/$pid/fd/"*; do
		link="$(readlink "$fd" 2>/dev/null)" || continue
		case "$link" in
			socket:\[*\]) link="${link#socket:[}" && inodes[${link%]}]=1 ;;
		esac
	done
	local laddr state inode
	# Fields: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
	while read -r _ laddr _ state _ _ _ _ _ inode _; do
		if [ "$state" = 0A ] && [ -n "${inodes[$inode]:-}" ]; then
			echo "$((16#${laddr#*:}))"
			return
		fi
	done <"/proc/$pid/net/tcp"
	return 1
}

# answers ADDR succeeds when the registry's /v2/ answers as it should: 200,
# or 401 when it wants a login.
answers() {
	local code ok=200
	[ -e "$dir/htpasswd" ] && ok=401
	code="$(curl --noproxy '*' -s -o /dev/null -m 2 -w '%{http_code}' "http://$1/v2/")" || return 1
	[ "$code" = "$ok" ]
}

start() {
	local auth="$1" pid
	mkdir -p "$dir"
	if pid="$(running_pid)" && [ -s "$addrfile" ]; then
		if [ "$(cat "$dir/mode" 2>/dev/null)" = "$auth" ]; then
			cat "$addrfile"
			return
		fi
		stop
	fi
	rm -rf "$addrfile" "$dir/htpasswd" "$dir/password" "$dir/docker"
	mkdir -p "$dir/data"

	local authconf=''
	if [ "$auth" = auth ]; then
		local password
		password="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
		printf '%s\n' "$password" >"$dir/password"
		htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
		authconf="auth:
  htpasswd:
    realm: basebuild
    path: $dir/htpasswd"
	fi
	printf '%s\n' "$auth" >"$dir/mode"

	cat >"$config" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: $(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
$authconf
EOF

	# REGISTRY_* variables would override the config. setsid: its own
	# session, so a Ctrl-C aimed at the test run that started it does not
	# take it down half-way through another run. 9>&-: it must not inherit
	# (and so hold) the lock.
	(
		while read -r v; do
			case "$v" in REGISTRY_*) unset "$v" ;; esac
		done < <(compgen -e)
		exec setsid "$bin" serve "$config" >>"$logfile" 2>&1 </dev/null 9>&-
	) &
	pid=$!
	echo "$pid" >"$pidfile"

	local i port=''
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		if [ -n "$port" ] || port="$(listen_port "$pid")"; then
			if answers "127.0.0.1:$port"; then
				if [ "$auth" = auth ]; then
					local b64
					b64="$(printf '%s:%s' "$user" "$(cat "$dir/password")" | base64 -w0)"
					mkdir -p "$dir/docker"
					printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$port" "$b64" >"$dir/docker/config.json"
				fi
				echo "127.0.0.1:$port" >"$addrfile"
				cat "$addrfile"
				return
			fi
		fi
		sleep 0.1
	done
	echo >&2 "$0: registry $name did not start; see $logfile:"
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
	rm -f "$pidfile" "$addrfile"
}

url() {
	if running_pid >/dev/null && [ -s "$addrfile" ]; then
		cat "$addrfile"
	else
		echo >&2 "$0: registry $name is not running"
		exit 1
	fi
}

[ $# -ge 2 ] || usage
cmd="$1" name="$2"
shift 2
case "$name" in
	'' | *[!A-Za-z0-9_-]*) echo >&2 "$0: bad registry name: $name"; exit 2 ;;
esac
auth=plain
if [ "$cmd" = start ] && [ "${1:-}" = --auth ]; then
	auth=auth
	shift
fi
[ $# -eq 0 ] || usage

dir="${BASEBUILD_TEST_DIR:-/tmp/basebuild-test}/registry-$name"
config="$dir/config.yml"
pidfile="$dir/registry.pid"
addrfile="$dir/addr"
logfile="$dir/registry.log"

case "$cmd" in
	start | stop)
		# Serialise concurrent start/stop calls (parallel test runs).
		mkdir -p "$dir"
		exec 9>"$dir/registry.lock"
		flock 9
		if [ "$cmd" = start ]; then start "$auth"; else stop; fi
		;;
	url) url ;;
	*) usage ;;
esac
