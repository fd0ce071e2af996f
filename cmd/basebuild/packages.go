package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/basebuild/basebuild/audit"
	"github.com/basebuild/basebuild/oci"
)

const packagesUsage = `Usage: basebuild packages [--source NAME]… [--json] IMAGE…

Lists the packages of each IMAGE as 'name version arch source', from the
package manifest attached to it, or from its /var/lib/dpkg/status when
none is (a distroless image's /var/lib/dpkg/status.d). IMAGE is a registry reference or oci:DIR[:TAG]. With several
images, each line starts with the image.

Flags:
`

// imagePackages is what packages and diff print for an image.
type imagePackages struct {
	Image    string          `json:"image"`
	Digest   string          `json:"digest"`
	From     string          `json:"from"` // "manifest", "dpkg-status" or "status.d"
	Packages []audit.Package `json:"packages"`
}

func runPackages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("basebuild packages", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sources := fs.StringSlice("source", nil, "list only the binary packages of these source packages, comma-separated or repeated")
	asJSON := fs.Bool("json", false, "print a JSON array, one object per image")
	insecure := fs.Bool("insecure-registry", false, "allow plain HTTP to registries not on loopback, without credentials (loopback registries always get it)")
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: packages: %v (see basebuild packages --help)", errUsage, err)
	}
	if *help {
		fmt.Fprint(stdout, packagesUsage+fs.FlagUsages())
		return pflag.ErrHelp
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: packages: no IMAGE (see basebuild packages --help)", errUsage)
	}
	var all []imagePackages
	for _, image := range fs.Args() {
		ip, err := readPackages(ctx, image, *insecure)
		if err != nil {
			return err
		}
		if len(*sources) > 0 {
			ip.Packages = slices.DeleteFunc(ip.Packages, func(p audit.Package) bool { return !slices.Contains(*sources, p.Source) })
		}
		all = append(all, *ip)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	for _, ip := range all {
		for _, p := range ip.Packages {
			if len(all) > 1 {
				fmt.Fprintf(stdout, "%s ", ip.Image)
			}
			fmt.Fprintf(stdout, "%s %s %s %s\n", p.Name, p.Version, p.Architecture, p.Source)
		}
	}
	return nil
}

// readPackages reads the packages of image (see packagesOf).
func readPackages(ctx context.Context, image string, insecure bool) (*imagePackages, error) {
	s, err := oci.Open(ctx, image, insecure)
	if err != nil {
		return nil, err
	}
	return packagesOf(s)
}

// packagesOf reads the package manifest attached to s, or else the dpkg
// status in its layers.
func packagesOf(s *oci.Source) (*imagePackages, error) {
	image := s.Name
	ip := &imagePackages{Image: image, Digest: s.Digest.String(), From: "manifest"}
	data, err := s.Artifact(audit.ManifestType)
	var m *audit.Manifest
	switch {
	case err == nil:
		if m, err = audit.ParseManifest(data); err != nil {
			return nil, fmt.Errorf("image %s: %w", image, err)
		}
	case errors.Is(err, oci.ErrNoArtifact):
		if m, ip.From, err = dpkgStatus(s); err != nil {
			return nil, fmt.Errorf("image %s: %w", image, err)
		}
	default:
		return nil, err
	}
	ip.Packages = m.Packages
	if ip.Packages == nil {
		ip.Packages = []audit.Package{}
	}
	return ip, nil
}

// dpkgStatus reads /var/lib/dpkg/status from the topmost layer that has
// it, or else the status.d of a distroless image; from says which.
func dpkgStatus(s *oci.Source) (m *audit.Manifest, from string, err error) {
	layers, err := s.Image.Layers()
	if err != nil {
		return nil, "", err
	}
	for i := len(layers) - 1; i >= 0; i-- {
		m, from, err := statusInLayer(layers[i])
		if err != nil || m != nil {
			return m, from, err
		}
	}
	return nil, "", errors.New("no package manifest attached and no /var/lib/dpkg/status or status.d in its layers")
}

// statusInLayer reads the dpkg status of l, or else the control files in
// its var/lib/dpkg/status.d (distroless's record, in the order of the
// layer, which the manifest sorts); nil if it has neither.
func statusInLayer(l interface{ Uncompressed() (io.ReadCloser, error) }) (*audit.Manifest, string, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var statusD bytes.Buffer
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("layer: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean("/" + h.Name)
		if name == "/var/lib/dpkg/status" {
			m, err := audit.ParseStatus(tr)
			return m, "dpkg-status", err
		}
		if dir, file := path.Split(name); dir == "/var/lib/dpkg/status.d/" && !strings.HasSuffix(file, ".md5sums") {
			// A control file ends with a newline; the blank line
			// separates it from the next.
			if _, err := io.Copy(&statusD, tr); err != nil {
				return nil, "", fmt.Errorf("layer: %s: %w", name, err)
			}
			statusD.WriteString("\n")
		}
	}
	if statusD.Len() == 0 {
		return nil, "", nil
	}
	m, err := audit.ParseStatusD(&statusD)
	return m, "status.d", err
}
