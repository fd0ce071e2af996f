package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// notConfigKeys are flags that make no sense in a config file.
var notConfigKeys = []string{"config", "print-config", "help"}

// applyConfig sets, from the YAML file at path, each flag of fs that the
// command line left unset (keys in ignore, which fs lacks, are skipped): every long flag is a key, repeatable flags take
// a list (or one value). An unknown key, a value of the wrong type or a
// list for a flag that takes one value is an error naming the key and its
// line.
func applyConfig(fs *pflag.FlagSet, path string, ignore []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("--config %s:%d: want a mapping of flag names to values", path, top.Line)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		at := fmt.Sprintf("--config %s:%d", path, k.Line)
		f := fs.Lookup(k.Value)
		if f == nil && slices.Contains(ignore, k.Value) {
			continue
		}
		if k.Kind != yaml.ScalarNode || f == nil || slices.Contains(notConfigKeys, k.Value) {
			return fmt.Errorf("%s: unknown key %q (keys are basebuild's long flags)", at, k.Value)
		}
		if f.Changed {
			continue // the command line wins
		}
		_, repeatable := f.Value.(pflag.SliceValue)
		var values []*yaml.Node
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			return fmt.Errorf("%s: %s: no value", at, k.Value)
		case v.Kind == yaml.ScalarNode:
			values = []*yaml.Node{v}
		case v.Kind == yaml.SequenceNode && repeatable:
			values = v.Content
		case v.Kind == yaml.SequenceNode && slices.Contains(commaLists, k.Value):
			// The value is the list, comma-separated, as on the
			// command line.
			var items []string
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return fmt.Errorf("--config %s:%d: %s: want a list of values", path, item.Line, k.Value)
				}
				items = append(items, item.Value)
			}
			values = []*yaml.Node{{Kind: yaml.ScalarNode, Value: strings.Join(items, ","), Line: v.Line}}
		case v.Kind == yaml.SequenceNode:
			return fmt.Errorf("%s: %s takes one value, not a list", at, k.Value)
		default:
			return fmt.Errorf("%s: %s: want a value%s", at, k.Value, map[bool]string{true: " or a list"}[repeatable])
		}
		for _, item := range values {
			if item.Kind != yaml.ScalarNode {
				return fmt.Errorf("--config %s:%d: %s: want a list of values", path, item.Line, k.Value)
			}
			if err := fs.Set(k.Value, item.Value); err != nil {
				return fmt.Errorf("--config %s:%d: %s: %q is not a %s", path, item.Line, k.Value, item.Value, f.Value.Type())
			}
		}
	}
	return nil
}

// commaLists are the flags whose value is a comma-separated list, which
// a config file may give as a list.
var commaLists = []string{"suite", "variant", "arch"}

// printConfig writes the settings in effect, from the command line or a
// config file, as a config file: each flag that was set, in name order.
func printConfig(fs *pflag.FlagSet) ([]byte, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Changed || slices.Contains(notConfigKeys, f.Name) {
			return
		}
		var v *yaml.Node
		switch val := f.Value.(type) {
		case pflag.SliceValue:
			v = &yaml.Node{Kind: yaml.SequenceNode}
			for _, s := range val.GetSlice() {
				v.Content = append(v.Content, str(s))
			}
		default:
			v = str(f.Value.String())
			if t := f.Value.Type(); t == "bool" || t == "int" {
				v.Tag = "" // plain true, false, 8
			}
		}
		m.Content = append(m.Content, str(f.Name), v)
	})
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{m}}); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}
