// Package rootfs turns verified debs into a configured root filesystem:
// native unpacking through a traversal-safe root, a dpkg database written
// as dpkg writes it, maintainer scripts run in a chroot, and
// debuerreotype's minimizing configuration and fixups.
package rootfs

import (
	"context"
	"time"

	"github.com/basebuild/basebuild/internal/cache"
	"github.com/basebuild/basebuild/plan"
)

// DebFile is a resolved package and its verified .deb in the cache.
type DebFile struct {
	plan.Package
	Path string
	// Fetched, if set, gives the deb's path instead of Path once the deb
	// is there (it may still be downloading), or says why it never will.
	Fetched func(ctx context.Context) (path string, err error)

	// Cache, if set, keeps the deb's decompressed data.tar (by the deb's
	// SHA256) for later builds, and gives it back instead of
	// decompressing the deb again.
	Cache *cache.Cache
}

// Installed is what unpacking one package leaves for the dpkg database.
type Installed struct {
	Name, Version, Architecture string
	Control                     []byte               // the package's control file, as shipped
	Files                       []string             // paths as dpkg lists them in info/NAME.list: "/.", "/bin", "/bin/bash", …
	Conffiles                   []string             // absolute paths from the conffiles control member
	Members                     map[string][]byte    // other control members: md5sums, preinst, postinst, prerm, postrm, config, templates, triggers, shlibs, symbols, …
	MemberTimes                 map[string]time.Time // the members' mtimes in control.tar, which dpkg keeps in info/

	// Priority is the archive index's. The available file has it, as
	// debootstrap writes that from the index; so does the status of a
	// Required package, which dpkg --set-selections takes from the
	// available file after dpkg --unpack took the control file's.
	// Empty: the control file's.
	Priority string

	// Required is the plan's (plan.Package.Required): the package is in
	// debootstrap's $required, which its first stage extracts and its
	// second installs before the others.
	Required bool
}
