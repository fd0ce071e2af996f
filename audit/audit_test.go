package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/basebuild/basebuild/plan"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

func testSet() *plan.Plan {
	return &plan.Plan{
		Suite: "bookworm", Arch: "amd64", Epoch: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Packages: []plan.Package{
			{Name: "bash", Version: "5.2.15-2+b2", Architecture: "amd64", Source: "bash", SourceVersion: "5.2.15-2",
				URL: "http://deb.example/pool/main/b/bash/bash_5.2.15-2+b2_amd64.deb", SHA256: strings.Repeat("a", 64)},
			{Name: "libstdc++6", Version: "12.2.0-14", Architecture: "amd64", Source: "gcc-12", SourceVersion: "12.2.0-14",
				SHA256: strings.Repeat("b", 64)},
			{Name: "tzdata", Version: "1:2024a-0+deb12u1", Architecture: "all", SHA256: strings.Repeat("c", 64)},
		},
	}
}

func TestNewManifest(t *testing.T) {
	m := NewManifest(testSet())
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := Package{Name: "tzdata", Version: "1:2024a-0+deb12u1", Architecture: "all", Source: "tzdata",
		SourceVersion: "1:2024a-0+deb12u1", SHA256: strings.Repeat("c", 64)}
	if len(back.Packages) != 3 || back.Packages[2] != want {
		t.Errorf("packages = %+v, want tzdata's source defaulted to itself: %+v", back.Packages, want)
	}
	if back.Packages[1].Source != "gcc-12" || !back.Epoch.Equal(m.Epoch) || back.Suite != "bookworm" {
		t.Errorf("round trip lost fields: %+v", back)
	}
	if _, err := ParseManifest([]byte(`{"packages":[{"name":"x"}]}`)); err == nil {
		t.Error("a package without a version was accepted")
	}
}

func TestParseStatus(t *testing.T) {
	status := `Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library
 continuation: not a field

Package: gone
Status: deinstall ok config-files
Version: 1.0

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
`
	m, err := ParseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Name: "libc6", Version: "2.36-9+deb12u4", Architecture: "amd64", Source: "glibc", SourceVersion: "2.36-9+deb12u4"},
		{Name: "libgcc-s1", Version: "12.2.0-14", Architecture: "amd64", Source: "gcc-12", SourceVersion: "12.2.0-14"},
	}
	if !reflect.DeepEqual(m.Packages, want) {
		t.Errorf("packages = %+v\nwant %+v", m.Packages, want)
	}
}

func TestDistro(t *testing.T) {
	for suite, want := range map[string]string{"bookworm": "debian-12", "trixie": "debian-13", "bullseye": "debian-11",
		"buster": "debian-10", "sid": "debian-sid", "unstable": "debian-sid", "testing": "debian-testing"} {
		if got := Distro(suite); got != want {
			t.Errorf("Distro(%q) = %q, want %q", suite, got, want)
		}
	}
}

func TestPurl(t *testing.T) {
	m := NewManifest(testSet())
	for i, want := range []string{
		"pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12",
		"pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12&upstream=gcc-12",
		"pkg:deb/debian/tzdata@1%3A2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
	} {
		if got := Purl(m.Packages[i], "bookworm"); got != want {
			t.Errorf("Purl(%s) = %s, want %s", m.Packages[i].Name, got, want)
		}
	}
	// A package of an organisation's repository is theirs, not Debian's.
	acme := Package{Name: "hello", Version: "2.10-2+acme1", Architecture: "amd64", Source: "hello", Origin: "Acme Corp"}
	if got, want := Purl(acme, "bookworm"), "pkg:deb/acme%20corp/hello@2.10-2%2Bacme1?arch=amd64&distro=debian-12"; got != want {
		t.Errorf("Purl(acme hello) = %s, want %s", got, want)
	}
	set := testSet()
	set.Packages[0].Origin = "Acme"
	raw := sbomJSON(t, set)
	if !bytes.Contains(raw, []byte(`"supplier": "Organization: Acme"`)) || !bytes.Contains(raw, []byte("pkg:deb/acme/bash@")) ||
		!bytes.Contains(raw, []byte("built from Acme source package bash")) {
		t.Errorf("the SBOM does not name Acme as bash's supplier:\n%s", raw)
	}
}

func sbomJSON(t *testing.T, set *plan.Plan) []byte {
	t.Helper()
	doc, err := SBOM(set, SBOMOptions{Name: "debian:bookworm", Digest: "sha256:" + strings.Repeat("d", 64), Tool: "basebuild-test"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSBOM(&b, doc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSBOM(t *testing.T) {
	raw := sbomJSON(t, testSet())
	if again := sbomJSON(t, testSet()); !bytes.Equal(raw, again) {
		t.Error("the SBOM of the same set differs between runs")
	}
	var doc struct {
		Created  struct{ Created string } `json:"creationInfo"`
		Packages []struct {
			SPDXID, Name, VersionInfo, Supplier, DownloadLocation string
			Checksums                                             []struct{ Algorithm, ChecksumValue string }
			ExternalRefs                                          []struct{ ReferenceType, ReferenceLocator string }
		}
		Relationships []struct{ SpdxElementId, RelatedSpdxElement, RelationshipType string }
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Created.Created != "2024-01-01T00:00:00Z" {
		t.Errorf("created %q, want the epoch", doc.Created.Created)
	}
	if len(doc.Packages) != 4 || len(doc.Relationships) != 4 {
		t.Fatalf("%d packages, %d relationships; want the image and 3 debs, DESCRIBES and 3 CONTAINS", len(doc.Packages), len(doc.Relationships))
	}
	bash := doc.Packages[1]
	if bash.Name != "bash" || bash.VersionInfo != "5.2.15-2+b2" || bash.Supplier != "Organization: Debian" ||
		len(bash.Checksums) != 1 || bash.Checksums[0].Algorithm != "SHA256" || bash.Checksums[0].ChecksumValue != strings.Repeat("a", 64) ||
		len(bash.ExternalRefs) != 1 || bash.ExternalRefs[0].ReferenceType != "purl" ||
		bash.ExternalRefs[0].ReferenceLocator != "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12" ||
		!strings.HasSuffix(bash.DownloadLocation, ".deb") {
		t.Errorf("bash package: %+v", bash)
	}
	if r := doc.Relationships[0]; r.SpdxElementId != "SPDXRef-DOCUMENT" || r.RelationshipType != "DESCRIBES" || r.RelatedSpdxElement != "SPDXRef-image" {
		t.Errorf("first relationship %+v, want the document DESCRIBES the image", r)
	}
	if r := doc.Relationships[2]; r.SpdxElementId != "SPDXRef-image" || r.RelationshipType != "CONTAINS" || r.RelatedSpdxElement != doc.Packages[2].SPDXID {
		t.Errorf("relationship %+v, want the image CONTAINS %s", r, doc.Packages[2].SPDXID)
	}
}

// TestSBOMSchema validates the SBOM against the SPDX 2.3 constraints in
// testdata, and checks that the schema rejects a broken document.
func TestSBOMSchema(t *testing.T) {
	f, err := os.Open("testdata/spdx-2.3-subset.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("spdx.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("spdx.json")
	if err != nil {
		t.Fatal(err)
	}
	raw := sbomJSON(t, testSet())
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("SBOM is not valid SPDX 2.3: %v", err)
	}
	broken, _ := jsonschema.UnmarshalJSON(bytes.NewReader(bytes.Replace(raw, []byte(`"SPDXRef-image"`), []byte(`"SPDXRef-image+1"`), 1)))
	if schema.Validate(broken) == nil {
		t.Error("the schema accepted an SPDX id with '+'")
	}
}
