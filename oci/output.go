package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/basebuild/basebuild/internal/atomicfile"
)

// The output types.
const (
	OCILayout     = "oci"            // an OCI image layout directory
	DockerArchive = "docker-archive" // "docker save" format, for docker and podman load
	RootfsTar     = "rootfs-tar"     // the layer's plain tar, as debuerreotype's rootfs.tar
)

const outputTypes = "oci:DIR, docker-archive:FILE or rootfs-tar:FILE"

// Output is where an image is written: TYPE:PATH on the command line.
type Output struct {
	Type string // OCILayout, DockerArchive or RootfsTar
	Path string
}

func (o Output) String() string { return o.Type + ":" + o.Path }

// ParseOutput parses an --output value: oci:DIR, docker-archive:FILE or
// rootfs-tar:FILE.
func ParseOutput(s string) (Output, error) {
	typ, p, ok := strings.Cut(s, ":")
	if !ok {
		return Output{}, fmt.Errorf("output %q: want TYPE:PATH (%s)", s, outputTypes)
	}
	switch typ {
	case OCILayout, DockerArchive, RootfsTar:
	default:
		return Output{}, fmt.Errorf("output %q: unknown type %q (want %s)", s, typ, outputTypes)
	}
	if p == "" {
		return Output{}, fmt.Errorf("output %q: no path", s)
	}
	return Output{Type: typ, Path: p}, nil
}

// Check reports whether o can be written, to refuse it before a build: a
// FILE's directory exists and the FILE is not a directory; a DIR's parent
// exists and the DIR is missing, empty or an OCI image layout.
func (o Output) Check() error {
	if err := o.check(); err != nil {
		return fmt.Errorf("output %s: %w", o, err)
	}
	return nil
}

func (o Output) check() error {
	if o.Type == OCILayout {
		_, err := layoutStateOf(o.Path)
		return err
	}
	if fi, err := os.Stat(filepath.Dir(o.Path)); err != nil || !fi.IsDir() {
		return fmt.Errorf("no directory %s", filepath.Dir(o.Path))
	}
	if fi, err := os.Stat(o.Path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", o.Path)
	}
	return nil
}

// Write writes img to o, atomically: into a temporary name next to the
// destination, renamed into place only once complete. ref names the image
// as REPOSITORY:TAG, e.g. "basebuild/debian:bookworm". A docker-archive
// records it as the image's repository tag. An OCI layout gets the image
// with ref's tag ("bookworm") as its org.opencontainers.image.ref.name,
// replacing the image of that tag if the layout has one; its other images
// stay. A rootfs-tar gets the image's single layer uncompressed, with the
// image's creation time as modification time, as debuerreotype leaves its
// rootfs.tar; it ignores ref.
func (o Output) Write(img v1.Image, ref string) error {
	if err := o.write(img, ref); err != nil {
		return fmt.Errorf("output %s: %w", o, err)
	}
	return nil
}

func (o Output) write(img v1.Image, ref string) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.Type == RootfsTar {
		return o.writeRootfsTar(img)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	if !strings.HasSuffix(ref, ":"+tag.TagStr()) {
		return fmt.Errorf("image name %q: no tag", ref)
	}
	switch o.Type {
	case OCILayout:
		return o.writeLayout(img, tag.TagStr())
	case DockerArchive:
		return atomicfile.Write(o.Path, atomicfile.Options{Sync: true}, func(w io.Writer) error { return tarball.Write(tag, img, w) })
	}
	return fmt.Errorf("unknown type %q (want %s)", o.Type, outputTypes)
}

// writeRootfsTar writes the uncompressed layer of img to o.Path.
func (o Output) writeRootfsTar(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != 1 {
		return fmt.Errorf("the image has %d layers, want 1", len(layers))
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	return atomicfile.Write(o.Path, atomicfile.Options{Sync: true, ModTime: cfg.Created.Time}, func(w io.Writer) error {
		r, err := layers[0].Uncompressed()
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	})
}

// layoutState is what an oci:DIR destination holds.
type layoutState int

const (
	noLayout    layoutState = iota // missing or an empty directory: to be created
	existLayout                    // an OCI image layout: to be added to
)

// layoutStateOf classifies dir as an OCI layout destination, refusing
// anything but a missing path in an existing directory, an empty directory
// or an image layout.
func layoutStateOf(dir string) (layoutState, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if fi, err := os.Stat(filepath.Dir(dir)); err != nil || !fi.IsDir() {
			return 0, fmt.Errorf("no directory %s", filepath.Dir(dir))
		}
		return noLayout, nil
	}
	if err != nil {
		return 0, err
	}
	if !fi.IsDir() {
		return 0, fmt.Errorf("%s is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err == nil {
		return existLayout, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	if len(entries) > 0 {
		return 0, fmt.Errorf("%s is not an OCI image layout (no oci-layout file) and not empty; not writing into it", dir)
	}
	return noLayout, nil
}

// writeLayout writes img, tagged tag, as an OCI image layout at o.Path:
// first complete in a temporary directory next to it, which then becomes
// o.Path or, if o.Path is a layout, has its blobs moved into it before the
// layout's index.json is replaced.
func (o Output) writeLayout(img v1.Image, tag string) error {
	return o.writeLayoutOf(img, tag, func(lp layout.Path) error {
		cfg, err := img.ConfigFile()
		if err != nil {
			return err
		}
		opts := []layout.Option{layout.WithAnnotations(map[string]string{AnnotationRefName: tag})}
		if p := cfg.Platform(); p != nil {
			opts = append(opts, layout.WithPlatform(*p))
		}
		return lp.AppendImage(img, opts...)
	})
}

// writeLayoutOf is writeLayout for an image or an index, add, which
// appendTo appends, tagged tag, to an empty layout.
func (o Output) writeLayoutOf(add mutate.Appendable, tag string, appendTo func(layout.Path) error) error {
	dir := o.Path
	if p, err := filepath.EvalSymlinks(dir); err == nil {
		dir = p
	}
	state, err := layoutStateOf(dir)
	if err != nil {
		return err
	}
	stage, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	lp, err := layout.Write(stage, empty.Index)
	if err != nil {
		return err
	}
	if err := appendTo(lp); err != nil {
		return err
	}
	if err := readableByAll(stage); err != nil {
		return err
	}
	if state == noLayout {
		// rename(2) replaces an empty directory, which os.Rename refuses.
		if err := unix.Rename(stage, dir); err != nil {
			return &os.LinkError{Op: "rename", Old: stage, New: dir, Err: err}
		}
		return nil
	}
	return mergeLayout(lp, layout.Path(dir), add, tag)
}

// readableByAll gives the directories below dir, and dir, mode 0755 and
// the files 0644: the layout package leaves layer blobs 0600, index.json
// executable, and MkdirTemp made dir 0700, so that other users could not
// read a layout root wrote.
func readableByAll(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
}

// mergeLayout moves the blobs of the layout from, holding img alone, into
// the layout to, then atomically replaces to's index.json with one where
// img (an image or an index) is the one of tag. Until then to is unchanged
// but for blobs nothing refers to.
func mergeLayout(from, to layout.Path, img mutate.Appendable, tag string) error {
	blobs := filepath.Join(string(from), "blobs")
	err := filepath.WalkDir(blobs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(string(from), p)
		if err != nil {
			return err
		}
		dst := filepath.Join(string(to), rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.Rename(p, dst)
	})
	if err != nil {
		return err
	}
	added, err := from.ImageIndex()
	if err != nil {
		return err
	}
	im, err := added.IndexManifest()
	if err != nil {
		return err
	}
	if len(im.Manifests) != 1 {
		return fmt.Errorf("staged layout %s has %d images, want 1", from, len(im.Manifests))
	}
	ii, err := to.ImageIndex()
	if err != nil {
		return err
	}
	ii = mutate.AppendManifests(
		mutate.RemoveManifests(ii, match.Annotation(AnnotationRefName, tag)),
		mutate.IndexAddendum{Add: img, Descriptor: im.Manifests[0]},
	)
	index, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	// Formatted as go-containerregistry's layout writes index.json.
	raw, err := json.MarshalIndent(index, "", "   ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(string(to), "index.json"), raw, atomicfile.Options{Sync: true})
}
