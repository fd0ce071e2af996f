package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
	"github.com/basebuild/basebuild/rootfs"
	"github.com/basebuild/basebuild/snapshots"
)

// Version is basebuild's version, recorded in every image's history and
// inputs. It changes whenever the image of the same inputs does (0.3.0:
// the config labels lost the package lines), so that the inputs do too:
// --if-changed rebuilds, verify says why the digest moved.
const Version = "0.3.0"

// Image builds the image of set, writes it to o.Outputs, pushes it to
// o.Push, and returns its digest. The rootfs is kept in o.RootfsDir when
// set, else built in a temporary directory that is removed afterwards.
func Image(ctx context.Context, o *Options, c *apt.Client, set *plan.Plan) (v1.Hash, error) {
	digests, err := Build(ctx, c, []Target{{Options: o, Plans: []*plan.Plan{set}}})
	if err != nil {
		return v1.Hash{}, err
	}
	return digests[0], nil
}

// built is what a build publishes: an image or a multi-architecture
// index, and the audit artifacts of its images.
type built struct {
	image v1.Image
	index v1.ImageIndex
	arts  []v1.Image
}

// publish writes b to o.Outputs, each with its audit artifacts, and
// pushes it to o.Push; digest is b's. Each destination is written whole
// or not at all (see oci.Output.Write), and a signal stops publish
// before the next one.
func publish(ctx context.Context, o *Options, b built, digest v1.Hash) error {
	tag := "debian:" + o.Tag()
	for _, out := range o.Outputs {
		// The layer and the outputs do not watch ctx: a signal that came
		// meanwhile stops the build before the next destination is written.
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		start := time.Now()
		var err error
		if b.index != nil {
			err = out.WriteIndex(b.index, tag)
		} else {
			err = out.Write(b.image, tag)
		}
		if err == nil && out.Type == oci.OCILayout {
			err = oci.AppendArtifacts(out.Path, b.arts...)
		}
		if err != nil {
			return err
		}
		o.logf("wrote %s", out)
		o.phase("write "+out.String(), start)
	}
	popts := oci.PushOptions{Insecure: o.InsecureRegistry, Log: o.logf}
	for _, ref := range o.Push {
		start := time.Now()
		var pushed v1.Hash
		var err error
		if b.index != nil {
			pushed, err = oci.PushIndex(ctx, b.index, ref, popts)
		} else {
			pushed, err = oci.Push(ctx, b.image, ref, popts)
		}
		if err != nil {
			return err
		}
		if pushed != digest {
			return fmt.Errorf("push %s: registry has %s, we built %s", ref, pushed, digest)
		}
		if err := oci.PushArtifacts(ctx, ref, b.arts, popts); err != nil {
			return err
		}
		o.logf("pushed %s", ref)
		o.phase("push "+ref, start)
	}
	return nil
}

// buildImage builds the image of set, and its audit artifacts, in tmp
// (the rootfs in o.RootfsDir if set). The image's layer lives in tmp
// until closeLayer.
func buildImage(ctx context.Context, o *Options, c *apt.Client, set *plan.Plan, tmp string) (img v1.Image, arts []v1.Image, closeLayer func() error, err error) {
	dir := o.RootfsDir
	if dir == "" {
		dir = filepath.Join(tmp, "rootfs")
	}
	if err := Rootfs(ctx, o, c, set, dir); err != nil {
		return nil, nil, nil, err
	}
	return imageOf(ctx, o, c, set, dir, tmp)
}

// imageOf makes the image of the finished tree dir, built from set, and
// its audit artifacts; the layer lives in tmp until closeLayer. The tree
// is removed once in the layer, unless it is o.RootfsDir.
func imageOf(ctx context.Context, o *Options, c *apt.Client, set *plan.Plan, dir, tmp string) (img v1.Image, arts []v1.Image, closeLayer func() error, err error) {
	start := time.Now()
	var written int64
	layer, err := oci.NewLayer(dir, oci.LayerOptions{Epoch: set.Epoch, Compression: o.Compression, TempDir: tmp, Log: o.logf,
		Progress: func(n int64) {
			written = n
			o.progress(Event{Phase: PhaseLayer, Bytes: n})
		}})
	if err != nil {
		return nil, nil, nil, err
	}
	o.progress(Event{Phase: PhaseBuilt, Total: len(set.Packages), Bytes: written})
	if dir != o.RootfsDir {
		// The layer has it all: free the tree now, not at the end
		// (in a tmpfs it is memory, and a run holds several).
		if err := removeTree(dir); err != nil {
			layer.Close()
			return nil, nil, nil, err
		}
	}
	defer func() {
		if err != nil {
			layer.Close()
		}
	}()
	img, err = oci.NewImage(layer, o.imageOptions(set))
	if err != nil {
		return nil, nil, nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, nil, nil, err
	}
	o.phase("layer", start)
	arts, err = auditArtifacts(o, set, img, digest)
	if err != nil {
		return nil, nil, nil, err
	}
	if o.AttachInputs {
		in, err := inputsArtifact(ctx, o, c, set, img)
		if err != nil {
			return nil, nil, nil, err
		}
		arts = append(arts, in)
	}
	return img, arts, layer.Close, nil
}

// imageOptions are the options of the image of set: its platform, epoch,
// version, history, the inputs it records and its config.
func (s *Spec) imageOptions(set *plan.Plan) oci.ImageOptions {
	return oci.ImageOptions{
		Arch:        set.Arch,
		Epoch:       set.Epoch,
		Suite:       s.Tag(),
		Snapshot:    s.Snapshot,
		CreatedBy:   s.createdBy(),
		Annotations: s.inputAnnotations(set),
		Labels:      s.inputLabels(set),
		Config:      s.imageConfig(),
	}
}

// imageConfig is a distroless image's config, as distroless's: no
// command, the default PATH, SSL_CERT_FILE naming the CA bundle, and
// root in / or, with Nonroot, nonroot in its home. nil for the others.
func (s *Spec) imageConfig() *v1.Config {
	if !s.Distroless() {
		return nil
	}
	c := &v1.Config{
		Env:        []string{oci.DefaultPath, "SSL_CERT_FILE=/" + rootfs.CABundle},
		User:       "0",
		WorkingDir: "/",
	}
	if s.Nonroot {
		c.User, c.WorkingDir = strconv.Itoa(rootfs.NonrootUID), "/home/nonroot"
	}
	return c
}

// createdBy is the image history's command: basebuild, its version and
// the inputs that change the result (no paths, so rebuilds elsewhere
// record the same).
func (s *Spec) createdBy() string {
	o := s
	args := []string{"basebuild", Version, "--suite", o.Suite}
	if !o.Snapshot.IsZero() {
		args = append(args, "--snapshot", snapshots.ID(o.Snapshot))
	}
	args = append(args, "--arch", o.Arch)
	if len(o.Include) > 0 {
		args = append(args, "--include", strings.Join(o.Include, ","))
	}
	if len(o.Exclude) > 0 {
		args = append(args, "--exclude", strings.Join(o.Exclude, ","))
	}
	switch {
	case o.MergedUsr == nil:
	case *o.MergedUsr:
		args = append(args, "--merged-usr")
	default:
		args = append(args, "--no-merged-usr")
	}
	if o.Variant != "" {
		args = append(args, "--variant", o.Variant)
	}
	if o.Nonroot {
		args = append(args, "--nonroot")
	}
	for _, l := range o.AptConf {
		args = append(args, "--apt-conf", shellQuote(l))
	}
	for _, c := range o.Copies {
		// The source's content, not its path, decides the image (and
		// its times, which the fingerprint records, clamped).
		args = append(args, "--copy", shellQuote("sha256:"+c.Digest(time.Time{})+":"+c.Dst))
	}
	for _, h := range o.Customize {
		args = append(args, "--customize", rootfs.HookDigest(h))
	}
	for i := range o.Repos {
		args = append(args, "--repo", shellQuote(o.Repos[i].Line()))
	}
	if p := o.Preferences; p != nil {
		args = append(args, "--apt-preferences", shellQuote("sha256:"+p.Digest()+":"+p.Name))
	}
	if o.CustomizeNetwork {
		args = append(args, "--customize-network")
	}
	if o.Compression != "" && o.Compression != oci.Gzip {
		args = append(args, "--compression", string(o.Compression))
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
