package main

import (
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/oci"
)

// platformImage returns a random image of linux/arch with its package
// manifest of pkgs attached.
func platformImage(t *testing.T, arch string, pkgs ...string) (v1.Image, []v1.Image) {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img, auditArtifacts(t, img, arch, pkgs...)
}

// TestInventory lists every tag of a loopback registry repository, a
// multi-architecture index's images each, through the binary, and answers
// "which images have libssl3 older than 3.0.15-1~deb12u1".
func TestInventory(t *testing.T) {
	registry := testenv.Registry(t)
	ctx := t.Context()
	repo := registry + "/inventory/" + strings.ToLower(t.Name())
	push := func(tag string, img v1.Image, arts []v1.Image) {
		t.Helper()
		if _, err := oci.Push(ctx, img, repo+":"+tag, oci.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := oci.PushArtifacts(ctx, repo+":"+tag, arts, oci.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	old, oldArts := platformImage(t, "amd64", "libc6 2.36-9 glibc", "libssl3 3.0.11-1~deb12u2 openssl")
	push("bookworm-20240101", old, oldArts)
	fixed, fixedArts := platformImage(t, "amd64", "libc6 2.36-9 glibc", "libssl3 3.0.15-1~deb12u1 openssl")
	push("bookworm-20241201", fixed, fixedArts)
	nossl, nosslArts := platformImage(t, "amd64", "libc6 2.36-9 glibc")
	push("bookworm-slim", nossl, nosslArts)
	// An index whose arm64 image has the old libssl3, its amd64 the fixed one.
	arm, armArts := platformImage(t, "arm64", "libssl3 3.0.11-1~deb12u2 openssl")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: fixed, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if _, err := oci.PushIndex(ctx, idx, repo+":multi", oci.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := oci.PushArtifacts(ctx, repo+":multi", armArts, oci.PushOptions{}); err != nil {
		t.Fatal(err)
	}

	out, stderr, err := runBinary(t, "inventory", "--package", "libssl3", "--older-than", "3.0.15-1~deb12u1", repo)
	if err != nil {
		t.Fatalf("inventory: %v\n%s", err, stderr)
	}
	want := repo + ":bookworm-20240101 linux/amd64 libssl3 3.0.11-1~deb12u2 amd64 openssl 3.0.11-1~deb12u2\n" +
		repo + ":multi linux/arm64 libssl3 3.0.11-1~deb12u2 arm64 openssl 3.0.11-1~deb12u2\n"
	if out != want {
		t.Errorf("inventory --older-than:\n%s\nwant\n%s", out, want)
	}

	out, stderr, err = runBinary(t, "inventory", "--csv", repo)
	if err != nil {
		t.Fatalf("inventory --csv: %v\n%s", err, stderr)
	}
	records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// 2 + 2 + 1 packages, and the index's 2 + 1.
	if len(records) != 1+8 || strings.Join(records[0], ",") != "image,platform,digest,name,version,architecture,source,source_version" {
		t.Errorf("inventory --csv: %d records:\n%s", len(records), out)
	}

	out, stderr, err = runBinary(t, "inventory", "--json", "--package", "libssl3", repo+":multi")
	if err != nil {
		t.Fatalf("inventory --json: %v\n%s", err, stderr)
	}
	var rows []inventoryRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Platform != "linux/amd64" || rows[1].Platform != "linux/arm64" ||
		rows[0].Packages[0].Version != "3.0.15-1~deb12u1" || rows[1].From != "manifest" {
		t.Errorf("inventory --json of the index: %+v", rows)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inventory", registry + "/inventory/nothing-here"}, 1, "repository " + registry + "/inventory/nothing-here"},
		{[]string{"inventory", repo + ":missing"}, 1, "image " + repo + ":missing"},
		{[]string{"inventory", "--older-than", "1.0", repo}, 2, "--older-than needs --package"},
		{[]string{"inventory", "--package", "libssl3", "--older-than", "not a version!", repo}, 2, `--older-than "not a version!"`},
		{[]string{"inventory", "--json", "--csv", repo}, 2, "--json and --csv contradict each other"},
		{[]string{"inventory"}, 2, "no REPOSITORY or IMAGE"},
	} {
		_, _, err := runBinary(t, tc.args...)
		oneLineError(t, strings.Join(tc.args, " "), err, tc.want)
		if code := exitCode(err); code != tc.code {
			t.Errorf("%s: exit %d, want %d", strings.Join(tc.args, " "), code, tc.code)
		}
	}
}
