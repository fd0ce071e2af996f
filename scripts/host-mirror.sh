#!/usr/bin/env bash
# Usage: host-mirror.sh [--security]
#
# Prints the Debian mirror this host's apt uses (e.g. http://HOST/debian),
# or with --security its security mirror. Scripts and tests use it so that
# no mirror host name is ever hard-coded: it is always read from the apt
# configuration at run time.
#
# Sources, in order: the first enabled "Types: deb" stanza of
# /etc/apt/sources.list.d/*.sources whose Suites are (not) *-security,
# then the first matching "deb" line of /etc/apt/sources.list.
set -euo pipefail

want=main
case "${1:-}" in
	'') ;;
	--security) want=security ;;
	*) echo >&2 "usage: $0 [--security]"; exit 2 ;;
esac

# deb822: awk's paragraph mode (RS="") gives one record per stanza.
from_deb822() {
	local files=(/etc/apt/sources.list.d/*.sources)
	[ -e "${files[0]}" ] || return 0
	awk -v want="$want" '
		BEGIN { RS = ""; FS = "\n" }
		{
			types = uris = suites = ""; enabled = "yes"
			for (i = 1; i <= NF; i++) {
				line = $i
				if (line ~ /^#/) continue
				split(line, kv, ":")
				key = tolower(kv[1])
				val = substr(line, length(kv[1]) + 2)
				gsub(/^[ \t]+|[ \t]+$/, "", val)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "enabled") enabled = tolower(val)
			}
			if (enabled == "no" || (" " types " ") !~ / deb / || uris == "") next
			# Old releases called the security suite "SUITE/updates".
			sec = (suites ~ /-security( |$)/ || suites ~ /\/updates( |$)/)
			if ((want == "security") != sec) next
			split(uris, u, /[ \t]+/)
			print u[1]
			exit
		}' "${files[@]}"
}

# One-line format: deb [options] URI SUITE COMPONENTS...
from_list() {
	[ -r /etc/apt/sources.list ] || return 0
	awk -v want="$want" '
		$1 != "deb" { next }
		{
			i = 2
			if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			uri = $i; suite = $(i + 1)
			sec = (suite ~ /-security$/ || suite ~ /\/updates$/)
			if ((want == "security") != sec) next
			print uri
			exit
		}' /etc/apt/sources.list
}

url="$(from_deb822)"
[ -n "$url" ] || url="$(from_list)"
if [ -z "$url" ]; then
	echo >&2 "$0: no $want Debian mirror found in the apt sources"
	exit 1
fi
echo "${url%/}"
