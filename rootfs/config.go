package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// AptConfFile is where --apt-conf's lines are written in the tree.
const AptConfFile = "etc/apt/apt.conf.d/99basebuild"

// A ConfigFile is a file basebuild writes into the image: apt's settings,
// sources, keys and preferences.
type ConfigFile struct {
	Path string // absolute, in the image
	Data []byte
}

// AptConf is the file of --apt-conf's lines, one a line and in order.
func AptConf(lines []string) ConfigFile {
	return ConfigFile{"/" + AptConfFile, []byte(strings.Join(lines, "\n") + "\n")}
}

// WriteConfig writes files into the tree dir through an os.Root, root-owned
// and mode 0644, making missing directories 0755. A file the tree already
// has is an error.
func WriteConfig(dir string, files []ConfigFile) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, cf := range files {
		name := strings.TrimPrefix(cf.Path, "/")
		if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
			return fmt.Errorf("%s: %w", cf.Path, err)
		}
		// Never over a file of the image's own (a package's).
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: the image already has it", cf.Path)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", cf.Path, err)
		}
		_, err = f.Write(cf.Data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = root.Chmod(name, 0o644)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", cf.Path, err)
		}
	}
	return nil
}
