package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/oci"
	"github.com/basebuild/basebuild/plan"
)

// auditArtifacts returns the package manifest and the SPDX and CycloneDX
// SBOMs of img, built from set, and why it was rebuilt (o.Rebuilt) if it
// says, as artifacts attached to img, and writes the SBOM of o.SBOMFormat
// to o.SBOM if set.
func auditArtifacts(o *Options, set *plan.Plan, img v1.Image, digest v1.Hash) ([]v1.Image, error) {
	manifest, err := audit.NewManifest(set).Marshal()
	if err != nil {
		return nil, err
	}
	so := audit.SBOMOptions{Name: "debian:" + o.Tag(), Digest: digest.String(), Tool: "basebuild-" + Version}
	doc, err := audit.SBOM(set, so)
	if err != nil {
		return nil, err
	}
	var spdx bytes.Buffer
	if err := audit.WriteSBOM(&spdx, doc); err != nil {
		return nil, err
	}
	bom, err := audit.CycloneDX(set, so)
	if err != nil {
		return nil, err
	}
	var cyclonedx bytes.Buffer
	if err := audit.WriteCycloneDX(&cyclonedx, bom); err != nil {
		return nil, err
	}
	if o.SBOM != "" {
		data := spdx.Bytes()
		if o.SBOMFormat == "cyclonedx" {
			data = cyclonedx.Bytes()
		}
		if err := os.WriteFile(o.SBOM, data, 0o644); err != nil {
			return nil, fmt.Errorf("sbom: %w", err)
		}
	}
	var rebuilt []byte
	if o.Rebuilt != nil {
		if rebuilt, err = json.MarshalIndent(o.Rebuilt, "", "  "); err != nil {
			return nil, err
		}
	}
	// Created at the epoch, so that rebuilds attach the same artifacts.
	ann := map[string]string{"org.opencontainers.image.created": set.Epoch.UTC().Format(time.RFC3339)}
	var arts []v1.Image
	for _, a := range []struct {
		typ  string
		data []byte
	}{{audit.ManifestType, manifest}, {audit.SBOMType, spdx.Bytes()}, {audit.CycloneDXType, cyclonedx.Bytes()}, {audit.RebuildType, rebuilt}} {
		if a.data == nil {
			continue
		}
		art, err := oci.NewArtifact(a.typ, a.data, img, ann)
		if err != nil {
			return nil, err
		}
		arts = append(arts, art)
	}
	return arts, nil
}
