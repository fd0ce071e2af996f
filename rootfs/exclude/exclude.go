// Package exclude is the one list of what debuerreotype leaves out of an
// image: rootfs removes it from the tree, and oci's tar writer, like
// debuerreotype-tar, leaves it out of any tree it archives. It is a
// package of its own so that oci can read it without linking rootfs.
package exclude

import "strings"

// Files are left out: the files debuerreotype-tar's .tar-exclude names,
// as paths relative to the root.
var Files = []string{
	"debuerreotype-epoch",
	"etc/apt/apt.conf.d/01autoremove-kernels",
	"var/log/apt/history.log",
	"var/log/apt/term.log",
	"run/motd.dynamic",
	"etc/apt/trustdb.gpg",
	"run/shm/.run-transition",
	"var/lib/systemd/catalog/database",
}

// Contents are directories whose contents are left out, the directories
// themselves kept: .tar-exclude's "DIR/**" patterns, and debuerreotype-
// tar's own for /dev and, as for APT 0.8 and later (every supported
// release), APT's lists and caches, which APT recreates with their
// "partial" directories. These cover .tar-exclude's narrower patterns
// below them ("./var/cache/apt/*.bin", …).
var Contents = []string{
	"dev",
	"proc",
	"sys",
	"var/cache/apt",
	"var/lib/apt/lists",
	"var/state/apt/lists",
}

// Match reports whether the tree entry name ("./etc/passwd", as tar
// spells it before debuerreotype-tar's transform) is left out: one of
// Files, or below one of Contents.
func Match(name string) bool {
	rel, ok := strings.CutPrefix(name, "./")
	if !ok {
		return false
	}
	for _, f := range Files {
		if rel == f {
			return true
		}
	}
	for _, dir := range Contents {
		if strings.HasPrefix(rel, dir+"/") {
			return true
		}
	}
	return false
}
