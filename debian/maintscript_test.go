package debian

import (
	"strings"
	"testing"
)

// What maintainer scripts do on a fresh install, as debhelper and
// Debian's packages write them: only what the image would lack is named.
func TestScriptActions(t *testing.T) {
	for _, c := range []struct {
		name, script string
		want         []string
	}{
		// dh_installalternatives, as mawk's postinst.
		{"postinst", `#!/bin/sh
set -e
# Automatically added by dh_installalternatives/13.11.4
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \
            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz
fi
`, []string{"makes /usr/bin/awk (update-alternatives)"}},
		// What dh_installsystemd, dh_installinit, dh_installdeb and
		// dh_makeshlibs add, and debconf questions: nothing an image needs.
		{"postinst", `#!/bin/sh
set -e
. /usr/share/debconf/confmodule
db_get foo/question || true
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] ; then
	if deb-systemd-helper debian-installed 'foo.service'; then
		deb-systemd-helper unmask 'foo.service' >/dev/null || true
	fi
	if [ -x "/etc/init.d/foo" ]; then
		update-rc.d foo defaults >/dev/null
		invoke-rc.d foo start || exit 1
	fi
fi
dpkg-maintscript-helper rm_conffile /etc/foo/old.conf 1.0~ -- "$@"
ldconfig
exit 0
`, nil},
		// Upgrade-only branches do not run on a fresh install.
		{"postinst", `#!/bin/sh
type=$1
if [ "configure" = "$type" -a "x$2" != "x" ]; then
	cp /usr/etc/gss/mech /etc/gss/mech
fi
if [ -n "$2" ] && ! cleanup; then cleanup --verbose; fi
cleanup() { /usr/share/foo/clean-up "$@"; }
case "$1" in
configure)
	adduser --system --group --home /var/lib/foo foo
	;;
abort-upgrade|abort-remove)
	ucf /usr/share/foo/foo.conf /etc/foo.conf
	;;
*)
	echo "postinst called with unknown argument" >&2
	exit 1
	;;
esac
`, []string{"adds user foo (adduser)"}},
		// A conffile rendered from a template, by ucf and by a function
		// the script calls; a function it never calls does not count.
		{"postinst", `#!/bin/sh
set -e
render() {
	sed -e "s/@HOST@/$(hostname)/" /usr/share/foo/foo.conf.dist > "$DPKG_ROOT/etc/foo/foo.conf"
}
unused() { groupadd bar; }
if [ "$1" = configure ] && [ -z "$2" ]; then
	ucf --three-way /usr/share/foo/bar.conf.dist /etc/foo/bar.conf
	render
	setcap cap_net_raw+ep /usr/bin/fooping
	dpkg-statoverride --update --add root foo 2755 /usr/bin/foo
fi
`, []string{
			"makes /etc/foo/bar.conf (ucf)", "makes /etc/foo/foo.conf (> redirection)", "runs hostname",
			"gives capabilities to /usr/bin/fooping (setcap)", "sets the owner and mode of /usr/bin/foo (dpkg-statoverride)",
		}},
		// preinst's first argument is install.
		{"preinst", `#!/bin/sh
if [ "$1" = upgrade ]; then ln -s /opt/foo /usr/lib/foo; fi
if [ "$1" = install ]; then touch "$DPKG_ROOT/var/lib/foo/state"; fi
[ "$1" != install ] || sed -i -e 's/a/b/' /etc/foo.conf
`, []string{"makes /var/lib/foo/state (touch)", "edits /etc/foo.conf (sed)"}},
	} {
		acts, err := ScriptActions(c.name, []byte(c.script))
		if err != nil {
			t.Errorf("%s: %v", c.script, err)
			continue
		}
		var got []string
		for _, a := range acts {
			got = append(got, a.String())
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s\nactions:\n%s\nwant:\n%s", c.script, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
	for _, script := range []string{"#!/usr/bin/perl\nprint 1;\n", "#!/bin/sh\nif then fi\n"} {
		if _, err := ScriptActions("postinst", []byte(script)); err == nil {
			t.Errorf("%q: no error", script)
		}
	}
}
