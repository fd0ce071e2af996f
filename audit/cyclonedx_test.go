package audit

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/plan"
)

func cyclonedxJSON(t *testing.T, set *plan.Plan, digest string) []byte {
	t.Helper()
	bom, err := CycloneDX(set, SBOMOptions{Name: "debian:bookworm", Digest: digest, Tool: "basebuild-test"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCycloneDX(&b, bom); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The CycloneDX document is valid CycloneDX 1.6, formats included, lists
// the packages with the SPDX document's purls, and depends on its inputs
// alone.
func TestCycloneDX(t *testing.T) {
	digest := "sha256:" + strings.Repeat("d", 64)
	raw := cyclonedxJSON(t, testSet(), digest)
	if again := cyclonedxJSON(t, testSet(), digest); !bytes.Equal(raw, again) {
		t.Error("the CycloneDX document of the same set differs between runs")
	}
	if other := cyclonedxJSON(t, testSet(), "sha256:"+strings.Repeat("e", 64)); bytes.Equal(raw, other) {
		t.Error("two images' documents are the same")
	}

	schema := testenv.CycloneDXSchema(t)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("not valid CycloneDX 1.6: %v", err)
	}
	broken, _ := jsonschema.UnmarshalJSON(bytes.NewReader(bytes.Replace(raw, []byte(`"type": "library"`), []byte(`"type": "deb"`), 1)))
	if schema.Validate(broken) == nil {
		t.Error("the schema accepted a component of type deb")
	}

	var doc struct {
		SpecVersion  string `json:"specVersion"`
		SerialNumber string `json:"serialNumber"`
		Metadata     struct {
			Timestamp string
			Component struct{ Type, Name, Version string }
		}
		Components []struct {
			Name, Version, Purl string
			Hashes              []struct{ Alg, Content string }
		}
		Dependencies []struct {
			Ref       string
			DependsOn []string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SpecVersion != "1.6" || doc.Metadata.Timestamp != "2024-01-01T00:00:00Z" ||
		doc.Metadata.Component.Type != "container" || doc.Metadata.Component.Version != digest {
		t.Errorf("header: %+v", doc)
	}
	var spdx struct {
		Packages []struct {
			ExternalRefs []struct{ ReferenceLocator string } `json:"externalRefs"`
		}
	}
	if err := json.Unmarshal(sbomJSON(t, testSet()), &spdx); err != nil {
		t.Fatal(err)
	}
	var spdxPurls, purls []string
	for _, p := range spdx.Packages {
		for _, r := range p.ExternalRefs {
			spdxPurls = append(spdxPurls, r.ReferenceLocator)
		}
	}
	for _, c := range doc.Components {
		purls = append(purls, c.Purl)
		if len(c.Hashes) != 1 || c.Hashes[0].Alg != "SHA-256" || len(c.Hashes[0].Content) != 64 {
			t.Errorf("%s: hashes %+v", c.Name, c.Hashes)
		}
	}
	slices.Sort(spdxPurls)
	if !slices.Equal(purls, spdxPurls) || len(purls) != 3 {
		t.Errorf("purls\n%q\nSPDX's\n%q", purls, spdxPurls)
	}
	if len(doc.Dependencies) != 1 || doc.Dependencies[0].Ref != "image" || !slices.Equal(doc.Dependencies[0].DependsOn, purls) {
		t.Errorf("dependencies: %+v", doc.Dependencies)
	}
}
