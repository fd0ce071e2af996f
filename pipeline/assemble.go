package pipeline

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/oci"
)

// A Child is one architecture's image of an index to assemble, as a
// native builder published it, with the artifacts attached to it.
type Child struct {
	Name   string // as the user gave it
	Image  v1.Image
	Inputs string // what it records (see Inputs)
	Arts   []v1.Image
}

// AssembleIndex makes the OCI image index of children, built one
// architecture each, and publishes it to o's outputs and registries, with
// each child's artifacts, as a build with all their architectures on one
// host does (the same index, for children in that order). Each child must
// record inputs, the same as every other's but for the architecture (the
// suite, snapshot, epoch, options and basebuild's version), and no
// architecture may repeat. o.Suite and o.Variant are taken from them.
func AssembleIndex(ctx context.Context, o *Options, children []Child) (v1.Hash, error) {
	var first map[string]string
	archs := make([]string, len(children))
	images := make([]v1.Image, len(children))
	var arts []v1.Image
	for i, c := range children {
		if c.Inputs == "" {
			return v1.Hash{}, fmt.Errorf("image %s records no inputs: not built by basebuild", c.Name)
		}
		keys := InputKeys(c.Inputs)
		archs[i], images[i] = keys["arch"], c.Image
		for j := range i {
			if archs[j] == archs[i] {
				return v1.Hash{}, fmt.Errorf("images %s and %s are both for %s", children[j].Name, c.Name, archs[i])
			}
		}
		if first == nil {
			first = keys
		}
		for _, k := range unionKeys(first, keys) {
			if k != "arch" && first[k] != keys[k] {
				return v1.Hash{}, fmt.Errorf("images %s and %s were built from other inputs: %s %q and %q",
					children[0].Name, c.Name, k, first[k], keys[k])
			}
		}
		arts = append(arts, c.Arts...)
	}
	o.Suite, o.Variant = first["suite"], first["variant"]
	ii, err := oci.NewIndex(archs, images)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := ii.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := publish(ctx, o, built{index: ii, arts: arts}, digest); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}
