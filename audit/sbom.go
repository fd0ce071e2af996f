package audit

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/basebuild/basebuild/plan"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/basebuild/basebuild/debian"
)

// Distro is the purl distro qualifier of suite: "debian-12" for bookworm,
// as package scanners (syft, grype, trivy) write and match it. Suites
// without a release number keep their name: "debian-sid".
func Distro(suite string) string {
	if debian.Unstable(suite) {
		return "debian-sid"
	}
	if n := debian.Version(suite); n != "" {
		return "debian-" + n
	}
	return "debian-" + suite
}

// Purl is the package URL of a Debian binary package: namespace debian,
// or the lower-cased origin of the repository it came from.
func Purl(p Package, suite string) string {
	q := "arch=" + purlEscape(p.Architecture) + "&distro=" + purlEscape(Distro(suite))
	if p.Source != "" && p.Source != p.Name {
		q += "&upstream=" + purlEscape(p.Source)
	}
	ns := "debian"
	if p.Origin != "" {
		ns = purlEscape(strings.ToLower(p.Origin))
	}
	return "pkg:deb/" + ns + "/" + purlEscape(p.Name) + "@" + purlEscape(p.Version) + "?" + q
}

// purlEscape percent-encodes all but the unreserved characters, so that
// an epoch's ':' and the '+' of versions and names survive a parse.
func purlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '_', c == '~':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// SBOMOptions say what the SBOM describes beyond the package set.
type SBOMOptions struct {
	Name   string // the image's name, e.g. "debian:bookworm"
	Digest string // the image's manifest digest, "sha256:…"; may be empty
	Tool   string // the creator tool, e.g. "basebuild-0.1.0"
}

// SBOM returns the SPDX 2.3 document of set: one package for the image,
// which contains one package per deb. It depends on its inputs alone, so a
// rebuild gives the same bytes.
func SBOM(set *plan.Plan, o SBOMOptions) (*spdx.Document, error) {
	m := NewManifest(set)
	raw, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	// The namespace must be unique to the document's contents.
	sum := sha256.Sum256(append(raw, o.Digest...))
	name := o.Name
	if name == "" {
		name = "debian:" + set.Suite
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: "https://basebuild.invalid/spdx/" + strings.NewReplacer(":", "-", "/", "-").Replace(name) + "-" + hex.EncodeToString(sum[:]),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: o.Tool}},
			Created:  set.Epoch.UTC().Format(time.RFC3339),
		},
	}
	if o.Tool == "" {
		doc.CreationInfo.Creators[0].Creator = "basebuild"
	}
	image := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   "image",
		PackageVersion:          o.Digest,
		PackageSupplier:         &common.Supplier{Supplier: "NOASSERTION"},
		PackageDownloadLocation: "NOASSERTION",
		PackageLicenseConcluded: "NOASSERTION",
		PackageLicenseDeclared:  "NOASSERTION",
		PackageCopyrightText:    "NOASSERTION",
		PrimaryPackagePurpose:   "CONTAINER",
	}
	if h, ok := strings.CutPrefix(o.Digest, "sha256:"); ok {
		image.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: h}}
	}
	doc.Packages = append(doc.Packages, image)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA:         common.MakeDocElementID("", "DOCUMENT"),
		RefB:         common.MakeDocElementID("", "image"),
		Relationship: common.TypeRelationshipDescribe,
	})
	urls := map[string]string{}
	for _, d := range set.Packages {
		urls[d.Name+" "+d.Architecture] = d.URL
	}
	for _, p := range m.Packages {
		id := common.ElementID("deb-" + spdxIDEscape(p.Name) + "-" + spdxIDEscape(p.Architecture) + "-" + short(p.SHA256))
		pkg := &spdx.Package{
			PackageName:             p.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageSupplier:         &common.Supplier{Supplier: cmp.Or(p.Origin, "Debian"), SupplierType: "Organization"},
			PackageDownloadLocation: cmpNoAssertion(urls[p.Name+" "+p.Architecture]),
			PackageSourceInfo:       fmt.Sprintf("built from %s source package %s %s", cmp.Or(p.Origin, "Debian"), p.Source, p.SourceVersion),
			PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared:  "NOASSERTION",
			PackageCopyrightText:    "NOASSERTION",
			PrimaryPackagePurpose:   "LIBRARY",
			PackageExternalReferences: []*spdx.PackageExternalReference{{
				Category: common.CategoryPackageManager,
				RefType:  common.TypePackageManagerPURL,
				Locator:  Purl(p, set.Suite),
			}},
		}
		if p.SHA256 != "" {
			pkg.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: p.SHA256}}
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA:         common.MakeDocElementID("", "image"),
			RefB:         common.MakeDocElementID("", string(id)),
			Relationship: common.TypeRelationshipContains,
		})
	}
	return doc, nil
}

// WriteSBOM writes doc as indented SPDX JSON.
func WriteSBOM(w io.Writer, doc *spdx.Document) error {
	return spdxjson.Write(doc, w, spdxjson.Indent("  "))
}

func cmpNoAssertion(s string) string {
	if s == "" {
		return "NOASSERTION"
	}
	return s
}

// spdxIDEscape maps s to the characters an SPDX id may have: letters,
// digits, '.' and '-'.
func spdxIDEscape(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}

// short keeps ids unique where escaping made names equal
// ("libstdc++6" and "libstdc--6").
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
