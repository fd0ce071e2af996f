package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// CycloneDXSchema returns the CycloneDX 1.6 JSON schema, with format
// assertions, from the copy in audit/testdata/cyclonedx.
func CycloneDXSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	dir := filepath.Join(moduleRoot(t), "audit", "testdata", "cyclonedx")
	const base = "http://cyclonedx.org/schema/"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range []string{"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(base+name, doc); err != nil {
			t.Fatal(err)
		}
	}
	schema, err := c.Compile(base + "bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return schema
}
