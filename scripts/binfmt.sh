#!/usr/bin/env bash
# Usage: binfmt.sh
#
# Registers qemu-user-static's binfmt_misc entries (its
# /usr/lib/binfmt.d/qemu-*.conf) with the F (fix-binary) flag, so that
# foreign-architecture programs run inside a chroot without qemu in it:
# what systemd-binfmt does at boot, for hosts (containers, CI) without
# systemd. Mounts binfmt_misc first if needed. Idempotent; needs root.
# Entries already enabled with F are left alone; others are replaced.
set -euo pipefail

dir=/proc/sys/fs/binfmt_misc
confs=(/usr/lib/binfmt.d/qemu-*.conf)
if [ ! -e "${confs[0]}" ]; then
	echo >&2 "$0: no /usr/lib/binfmt.d/qemu-*.conf: install qemu-user-static"
	exit 1
fi
if [ ! -e "$dir/register" ]; then
	mount -t binfmt_misc binfmt_misc "$dir"
fi
[ "$(cat "$dir/status")" = enabled ] || echo 1 >"$dir/status"

for conf in "${confs[@]}"; do
	# One registration line, :name:type:offset:magic:mask:interpreter:flags.
	line=$(grep -m1 '^:' "$conf") || continue
	name=$(cut -d: -f2 <<<"$line")
	flags=${line##*:}
	entry=$dir/$name
	if [ -e "$entry" ]; then
		if [ "$(head -n1 "$entry")" = enabled ] &&
			grep -q '^flags: .*F' "$entry"; then
			continue
		fi
		echo -1 >"$entry" # wrong flags or disabled: unregister
	fi
	fields=$(awk -F: '{print NF}' <<<"$line")
	if [ "$fields" -lt 8 ]; then
		line+=:F # no flags field
	else
		case $flags in *F*) ;; *) line+=F ;; esac
	fi
	printf '%s' "$line" >"$dir/register"
done
