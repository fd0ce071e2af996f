package audit

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/basebuild/basebuild/plan"
)

// CycloneDXType is the artifact type of the CycloneDX SBOM.
const CycloneDXType = "application/vnd.cyclonedx+json"

// CycloneDX returns the CycloneDX 1.6 document of set, from the same
// package list and with the same purls as SBOM: the image as the
// metadata's component, which depends on one component per deb. Its
// serial number is derived from its contents and the image digest, and
// its timestamp is the epoch, so a rebuild gives the same bytes.
func CycloneDX(set *plan.Plan, o SBOMOptions) (*cdx.BOM, error) {
	m := NewManifest(set)
	raw, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	name := cmp.Or(o.Name, "debian:"+set.Suite)
	tool := cmp.Or(o.Tool, "basebuild")
	bom := cdx.NewBOM()
	bom.SerialNumber = serialNumber(append(raw, o.Digest...))
	image := &cdx.Component{BOMRef: "image", Type: cdx.ComponentTypeContainer, Name: name, Version: o.Digest}
	if h, ok := strings.CutPrefix(o.Digest, "sha256:"); ok {
		image.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: h}}
	}
	toolName, toolVersion, _ := strings.Cut(tool, "-")
	bom.Metadata = &cdx.Metadata{
		Timestamp: set.Epoch.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{
			{Type: cdx.ComponentTypeApplication, Name: toolName, Version: toolVersion},
		}},
		Component: image,
	}
	urls := map[string]string{}
	for _, d := range set.Packages {
		urls[d.Name+" "+d.Architecture] = d.URL
	}
	components := []cdx.Component{}
	var refs []string
	for _, p := range m.Packages {
		purl := Purl(p, set.Suite)
		c := cdx.Component{
			BOMRef:     purl,
			Type:       cdx.ComponentTypeLibrary,
			Supplier:   &cdx.OrganizationalEntity{Name: cmp.Or(p.Origin, "Debian")},
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: purl,
			Properties: &[]cdx.Property{
				{Name: "basebuild:package:architecture", Value: p.Architecture},
				{Name: "basebuild:package:source", Value: p.Source},
				{Name: "basebuild:package:source-version", Value: p.SourceVersion},
			},
		}
		if p.SHA256 != "" {
			c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: p.SHA256}}
		}
		if u := urls[p.Name+" "+p.Architecture]; u != "" {
			c.ExternalReferences = &[]cdx.ExternalReference{{Type: cdx.ERTypeDistribution, URL: u}}
		}
		components = append(components, c)
		refs = append(refs, purl)
	}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: "image", Dependencies: &refs}}
	return bom, nil
}

// serialNumber is a version 5 style UUID URN from the SHA-256 of data: the
// same document, the same serial number.
func serialNumber(data []byte) string {
	u := sha256.Sum256(data)
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// WriteCycloneDX writes bom as indented CycloneDX 1.6 JSON.
func WriteCycloneDX(w io.Writer, bom *cdx.BOM) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}
