package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleEntry = `enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
`

func TestParseBinfmtEntry(t *testing.T) {
	e := parseBinfmtEntry(sampleEntry)
	want := binfmtEntry{enabled: true, interpreter: "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", flags: "POF"}
	if e != want {
		t.Errorf("parseBinfmtEntry = %+v, want %+v", e, want)
	}
	e = parseBinfmtEntry(strings.Replace(strings.Replace(sampleEntry, "enabled", "disabled", 1), "flags: POF", "flags: ", 1))
	if e.enabled || e.flags != "" {
		t.Errorf("disabled entry without flags: got %+v", e)
	}
}

// TestCheckArch feeds checkArch a fake binfmt_misc directory.
func TestCheckArch(t *testing.T) {
	mount := func(t *testing.T, status string, entries map[string]string) string {
		dir := t.TempDir()
		files := map[string]string{"register": "", "status": status + "\n"}
		for k, v := range entries {
			files[k] = v
		}
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	noF := strings.Replace(sampleEntry, "flags: POF", "flags: PO", 1)
	disabled := strings.Replace(sampleEntry, "enabled", "disabled", 1)
	for _, tc := range []struct {
		name, dir, host, arch string
		want                  string // substring of the error; "" for nil
	}{
		{"native", "/nonexistent", "amd64", "amd64", ""},
		{"i386 on amd64", "/nonexistent", "amd64", "i386", ""},
		{"not mounted", t.TempDir(), "amd64", "arm64", "architecture arm64: cannot run arm64 programs: binfmt_misc is not mounted"},
		{"i386 on arm64", mount(t, "enabled", nil), "arm64", "i386", "no binfmt_misc entry qemu-i386"},
		{"no entry", mount(t, "enabled", nil), "amd64", "arm64", "architecture arm64: cannot run arm64 programs: no binfmt_misc entry qemu-aarch64 (install qemu-user-static"},
		{"armhf", mount(t, "enabled", nil), "amd64", "armhf", "no binfmt_misc entry qemu-arm "},
		{"ppc64el", mount(t, "enabled", nil), "amd64", "ppc64el", "no binfmt_misc entry qemu-ppc64le "},
		{"unknown arch", mount(t, "enabled", nil), "amd64", "hurd-i386", "no qemu-user emulator"},
		{"binfmt disabled", mount(t, "disabled", map[string]string{"qemu-aarch64": sampleEntry}), "amd64", "arm64", "binfmt_misc is disabled"},
		{"entry disabled", mount(t, "enabled", map[string]string{"qemu-aarch64": disabled}), "amd64", "arm64", "entry qemu-aarch64 is disabled"},
		{"no F flag", mount(t, "enabled", map[string]string{"qemu-aarch64": noF}), "amd64", "arm64", "lacks the F (fix-binary) flag"},
		{"ok", mount(t, "enabled", map[string]string{"qemu-aarch64": sampleEntry}), "amd64", "arm64", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkArch(tc.dir, tc.host, tc.arch)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("checkArch: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("checkArch = %v, want an error with %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("checkArch: error is not one line: %q", err)
			}
		})
	}
}
