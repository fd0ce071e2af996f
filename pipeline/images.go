package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/apt"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
	"github.com/basebuild/basebuild/rootfs"
)

// A Target is one image of a run, or one multi-architecture index.
type Target struct {
	// Options build it: its own Spec and Destinations, the run's
	// Sources and Runtime. With several Plans, its Arch, RootfsDir and
	// SBOM are ignored.
	Options *Options
	// Plans are its packages, one plan per architecture (Resolve's, or
	// ResolveArchs's); several make an OCI image index of their images.
	Plans []*plan.Plan
}

// Build builds each target as a build of its options alone would, with
// the same digest, writes each to its Outputs and pushes it to its Push,
// and returns their digests. What targets share is done once: the debs
// are fetched and unpacked once per plan, and images that differ only by
// the slim variant are made from copies of one configured tree (as the
// official build slims the default image's tree). Every image is built
// before any is written, so that a failed build writes nothing.
func Build(ctx context.Context, c *apt.Client, targets []Target) (digests []v1.Hash, err error) {
	err = buildTargets(ctx, c, targets, func(images, arts [][]v1.Image) error {
		digests = make([]v1.Hash, len(targets))
		for i, t := range targets {
			b := built{arts: arts[i]}
			var err error
			if len(images[i]) == 1 {
				b.image = images[i][0]
				digests[i], err = b.image.Digest()
			} else if b.index, err = newIndex(t.Plans, images[i]); err == nil {
				digests[i], err = b.index.Digest()
			}
			if err != nil {
				return err
			}
			if err := publish(ctx, t.Options, b, digests[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return digests, nil
}

// newIndex is the OCI image index of images, the image of each plan.
func newIndex(plans []*plan.Plan, images []v1.Image) (v1.ImageIndex, error) {
	archs := make([]string, len(plans))
	for i, p := range plans {
		archs[i] = p.Arch
	}
	return oci.NewIndex(archs, images)
}

// buildTargets builds the images of targets as Build does, and calls
// done with each target's images, in its plans' order, and their audit
// artifacts while their layers are still there to read.
func buildTargets(ctx context.Context, c *apt.Client, targets []Target, done func(images, arts [][]v1.Image) error) (err error) {
	var units []*unit
	for i, t := range targets {
		o := t.Options
		multi := len(t.Plans) > 1
		for _, out := range o.Outputs {
			if multi && out.Type != oci.OCILayout {
				return fmt.Errorf("output %s: holds one image, not a multi-architecture index", out)
			}
		}
		// Say what the host lacks, and check every destination, before
		// building anything.
		for _, p := range t.Plans {
			if err := o.checkArch(p.Arch); err != nil {
				return err
			}
			if !o.AllowDowngrade && multi {
				if err := NoDowngrade(ctx, o, p); err != nil {
					return err
				}
			}
			u := &unit{target: i, o: o, set: p}
			if multi {
				// Each image of an index as a build of its --arch alone.
				u.o = o.forArch(p.Arch)
			}
			units = append(units, u)
		}
	}
	tmp, remove, err := workDir(targets[0].Options, "basebuild-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := remove(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	groups := groupUnits(units)
	defer func() {
		for _, u := range units {
			if u.closeLayer != nil {
				u.closeLayer()
			}
		}
	}()
	if err := buildGroups(ctx, c, groups, len(units) > 1, targets[0].Options, tmp); err != nil {
		return err
	}
	images := make([][]v1.Image, len(targets))
	arts := make([][]v1.Image, len(targets))
	for _, u := range units {
		images[u.target] = append(images[u.target], u.image)
		arts[u.target] = append(arts[u.target], u.arts...)
	}
	return done(images, arts)
}

// concurrentGroups is how many groups build at once: two, so that one
// group's configure step, which runs one maintainer script at a time,
// overlaps another's unpacking or compression, which take every core.
const concurrentGroups = 2

// buildGroups builds groups, concurrentGroups at a time, each in a
// directory of its own under tmp; the first error stops the others. log
// says which group is built when there are several images.
func buildGroups(ctx context.Context, c *apt.Client, groups []group, several bool, o *Options, tmp string) error {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		first error
		once  sync.Once
		wg    sync.WaitGroup
	)
	slots := make(chan struct{}, concurrentGroups)
	for i, g := range groups {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if several {
			o.logf("building %s", g.name())
		}
		wg.Go(func() {
			defer func() { <-slots }()
			dir := filepath.Join(tmp, strconv.Itoa(i))
			err := os.Mkdir(dir, 0o700)
			if err == nil {
				err = g.build(ctx, c, dir)
			}
			if err != nil {
				if several {
					err = fmt.Errorf("%s: %w", g.name(), err)
				}
				once.Do(func() { first = err; cancel(err) })
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(parent)
}

// A unit is one image of a target: its options and plan, and once built,
// the image, its audit artifacts and the layer's release.
type unit struct {
	target     int
	o          *Options
	set        *plan.Plan
	image      v1.Image
	arts       []v1.Image
	closeLayer func() error
}

// A group is units built from one configured tree: the same packages
// and the same Spec but for the slim variant.
type group []*unit

// groupUnits groups units that can share their configured tree, in the
// order of their first unit.
func groupUnits(units []*unit) []group {
	var groups []group
	keys := map[string]int{}
	for _, u := range units {
		key := u.shareKey()
		if i, ok := keys[key]; ok && key != "" {
			groups[i] = append(groups[i], u)
			continue
		}
		keys[key] = len(groups)
		groups = append(groups, group{u})
	}
	return groups
}

// shareKey is what units share their configured tree by: the inputs of
// the image but its variant, which Install does not read. "" for a unit
// that shares nothing: a distroless one, or one that keeps its tree.
func (u *unit) shareKey() string {
	if u.o.Distroless() || u.o.RootfsDir != "" {
		return ""
	}
	s := u.o.Spec
	s.Variant = ""
	return s.Inputs(u.set)
}

// build builds the images of g in dir: a unit alone as buildImage does;
// several from one configured tree, copied for all but the last before
// each is completed as its own options say.
func (g group) build(ctx context.Context, c *apt.Client, dir string) error {
	if len(g) == 1 {
		u := g[0]
		var err error
		u.image, u.arts, u.closeLayer, err = buildImage(ctx, u.o, c, u.set, dir)
		return err
	}
	first := g[0]
	trees := make([]string, len(g))
	for i := range g {
		trees[i] = filepath.Join(dir, "rootfs"+strconv.Itoa(i))
	}
	base := trees[len(g)-1]
	if err := makeTree(base); err != nil {
		return err
	}
	debs, stop := fetching(ctx, first.o, c, first.set)
	err := rootfs.Install(ctx, base, debs, first.o.buildOptions(first.set))
	if err := errors.Join(err, stop(err)); err != nil {
		return err
	}
	for _, tree := range trees[:len(g)-1] {
		start := time.Now()
		if err := rootfs.CopyTree(base, tree); err != nil {
			return err
		}
		first.o.phase("copy tree", start)
	}
	for i, u := range g {
		if err := rootfs.Complete(ctx, trees[i], u.o.buildOptions(u.set)); err != nil {
			return err
		}
		if u.image, u.arts, u.closeLayer, err = imageOf(ctx, u.o, c, u.set, trees[i], dir); err != nil {
			return err
		}
	}
	return nil
}

// name names g's images for the log and errors: their tags and their
// architecture.
func (g group) name() string {
	var tags []string
	for _, u := range g {
		tags = append(tags, u.o.Tag())
	}
	return strings.Join(tags, ", ") + " (" + g[0].set.Arch + ")"
}
