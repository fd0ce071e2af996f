package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
)

// auditArtifacts returns the package manifest and the SPDX SBOM of img,
// built from set, as artifacts attached to img, and writes the SBOM to
// o.SBOM if set.
func auditArtifacts(o *Options, set *plan.Plan, img v1.Image, digest v1.Hash) ([]v1.Image, error) {
	manifest, err := audit.NewManifest(set).Marshal()
	if err != nil {
		return nil, err
	}
	doc, err := audit.SBOM(set, audit.SBOMOptions{Name: "debian:" + o.Tag(), Digest: digest.String(), Tool: "basebuild-" + Version})
	if err != nil {
		return nil, err
	}
	var sbom bytes.Buffer
	if err := audit.WriteSBOM(&sbom, doc); err != nil {
		return nil, err
	}
	if o.SBOM != "" {
		if err := os.WriteFile(o.SBOM, sbom.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("sbom: %w", err)
		}
	}
	// Created at the epoch, so that rebuilds attach the same artifacts.
	ann := map[string]string{"org.opencontainers.image.created": set.Epoch.UTC().Format(time.RFC3339)}
	var arts []v1.Image
	for _, a := range []struct {
		typ  string
		data []byte
	}{{audit.ManifestType, manifest}, {audit.SBOMType, sbom.Bytes()}} {
		art, err := oci.NewArtifact(a.typ, a.data, img, ann)
		if err != nil {
			return nil, err
		}
		arts = append(arts, art)
	}
	return arts, nil
}
