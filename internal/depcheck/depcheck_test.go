// Package depcheck holds the layering test: data flows one way through
// basebuild's stages, and a package never imports a later one.
package depcheck

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/basebuild/basebuild"

// allowed lists, for each package of the module, the module's packages it
// may link (directly or not). The stages run in this order:
// snapshots → apt → rootfs → oci → audit → pipeline → cmd/basebuild;
// debian and plan are the vocabulary every stage shares; internal/...
// packages are helpers any stage may use unless a rule below says not. An
// entry with a slash allows one package of an earlier stage, not all of
// it: oci reads rootfs's list of excluded files without linking rootfs.
var allowed = map[string][]string{
	"debian":    {},
	"plan":      {"debian"},
	"snapshots": {"debian"},
	"apt":       {"debian", "plan", "snapshots"},
	"rootfs":    {"debian", "plan", "snapshots"},
	"oci":       {"debian", "plan", "snapshots", "rootfs/exclude"},
	"audit":     {"debian", "plan", "oci", "snapshots", "rootfs/exclude"},
	"pipeline":  {"debian", "plan", "snapshots", "apt", "rootfs", "oci", "audit"},
}

// offline lists third-party modules a stage must never link: the OpenPGP
// stack and the fetcher belong to apt alone.
var offline = map[string][]string{
	"rootfs": {"github.com/ProtonMail/go-crypto"},
	"oci":    {"github.com/ProtonMail/go-crypto"},
	"audit":  {"github.com/ProtonMail/go-crypto"},
	"plan":   {"github.com/ProtonMail/go-crypto"},
	"debian": {"github.com/ProtonMail/go-crypto"},
}

type pkg struct {
	ImportPath string
	Deps       []string
}

func listDeps(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Deps", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

// stage is the top-level directory of a module package ("apt" for
// apt/...), or "" for one outside the module.
func stage(path string) string {
	rest, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	top, _, _ := strings.Cut(rest, "/")
	return top
}

func TestLayering(t *testing.T) {
	pkgs := listDeps(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	linked := map[string]bool{}
	for _, p := range pkgs {
		from := stage(p.ImportPath)
		for _, d := range p.Deps {
			if strings.HasPrefix(d, module+"/cmd/") {
				t.Errorf("%s imports the CLI (%s)", p.ImportPath, d)
			}
			to := stage(d)
			if to == "" {
				for _, bad := range offline[from] {
					if (d == bad || strings.HasPrefix(d, bad+"/")) && !linked[p.ImportPath+" "+bad] {
						linked[p.ImportPath+" "+bad] = true
						t.Errorf("%s links %s", p.ImportPath, bad)
					}
				}
				continue
			}
			if to == from || to == "internal" || to == "cmd" {
				continue
			}
			ok, known := allowed[from]
			if !known {
				continue // cmd, internal, scripts: no rule
			}
			if !slices.Contains(ok, to) && !slices.Contains(ok, strings.TrimPrefix(d, module+"/")) {
				t.Errorf("%s links %s: %s may use only %v", p.ImportPath, d, from, ok)
			}
		}
	}
}
