// Package atomicfile writes files that readers see whole or not at all:
// through a temporary file in the same directory, renamed over the name
// once complete. Every finished file has mode 0644: CreateTemp's 0600 is
// for the unfinished file, and what basebuild writes (images, reports,
// cache entries) is as readable as any file tar or docker save writes.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Options say how a file is finished.
type Options struct {
	// Sync flushes the file to disk before the rename, so that a crash
	// cannot leave the name on a file that is not whole.
	Sync bool
	// ModTime, if not zero, is the file's modification (and access) time.
	ModTime time.Time
}

// File is a temporary file being written, to be put in place by Commit or
// removed by Discard.
type File struct {
	*os.File
	done bool // committed or discarded
}

// Create creates a temporary file in dir, named by pattern as
// os.CreateTemp names it.
func Create(dir, pattern string) (*File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &File{File: f}, nil
}

// Commit finishes f as o says, closes it and renames it to name. If that
// fails, f is removed.
func (f *File) Commit(name string, o Options) (err error) {
	if f.done {
		return fmt.Errorf("%s: committed or discarded already", f.Name())
	}
	defer func() {
		if err != nil {
			f.Discard()
		}
	}()
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if o.Sync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !o.ModTime.IsZero() {
		if err := os.Chtimes(f.Name(), o.ModTime, o.ModTime); err != nil {
			return err
		}
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	f.done = true
	return nil
}

// Discard closes and removes f, unless Commit put it in place: it may be
// deferred right after Create.
func (f *File) Discard() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// Write writes name with write, buffered, through a temporary file
// ".NAME.tmp-*" beside it. A name that is a directory is refused, rather
// than replaced if empty.
func Write(name string, o Options, write func(io.Writer) error) error {
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", name)
	}
	f, err := Create(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	defer f.Discard()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Commit(name, o)
}

// WriteFile writes data to name as Write does.
func WriteFile(name string, data []byte, o Options) error {
	return Write(name, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
