// Package xattr reads the extended attributes a layer records.
package xattr

import (
	"errors"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
)

// List reads the extended attributes of name itself, but for
// security.selinux: a label of the build host, not of the image. nil if it
// has none or the file system has none.
func List(name string) (map[string]string, error) {
	size, err := unix.Llistxattr(name, nil)
	if errors.Is(err, unix.ENOTSUP) || size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: name, Err: err}
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(name, buf); err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: name, Err: err}
	}
	var xattrs map[string]string
	for key := range strings.SplitSeq(strings.TrimSuffix(string(buf[:size]), "\x00"), "\x00") {
		if key == "security.selinux" {
			continue
		}
		val, err := get(name, key)
		if err != nil {
			return nil, err
		}
		if xattrs == nil {
			xattrs = map[string]string{}
		}
		xattrs[key] = val
	}
	return xattrs, nil
}

// get reads the extended attribute key of name itself.
func get(name, key string) (string, error) {
	for {
		n, err := unix.Lgetxattr(name, key, nil)
		if err != nil {
			return "", &fs.PathError{Op: "getxattr " + key, Path: name, Err: err}
		}
		val := make([]byte, n)
		m, err := unix.Lgetxattr(name, key, val)
		if errors.Is(err, unix.ERANGE) {
			continue // grew in between
		}
		if err != nil {
			return "", &fs.PathError{Op: "getxattr " + key, Path: name, Err: err}
		}
		return string(val[:m]), nil
	}
}
