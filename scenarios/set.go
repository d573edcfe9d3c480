package scenarios

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// freeKeyed are mappings whose keys may contain dots: the rest of a path
// after them is a single key.
var freeKeyed = []string{"matrix", "baseline.thresholds"}

// splitPath splits a dotted key path (workers.retry.max_attempts, load.0.spike.jobs,
// matrix.workers.prefetch) into segments.
func splitPath(path string) ([]string, error) {
	for _, fk := range freeKeyed {
		if rest, ok := strings.CutPrefix(path, fk+"."); ok && rest != "" {
			return append(strings.Split(fk, "."), rest), nil
		}
	}
	segs := strings.Split(path, ".")
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("bad key path %q: empty segment", path)
		}
	}
	return segs, nil
}

// parseSet parses one --set key=value into its key and YAML value node,
// recording in org that the value's nodes came from the flag.
func parseSet(raw string, org origins) (string, *yaml.Node, error) {
	key, val, ok := strings.Cut(raw, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		label := raw
		if strings.TrimSpace(label) == "" {
			label = strconv.Quote(raw)
		}
		return "", nil, &Error{Pos: Pos{Set: label}, Msg: "want key=value, e.g. workers.prefetch=50"}
	}
	at := Pos{Set: key}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(val), &doc); err != nil {
		return "", nil, &Error{Pos: at, Msg: fmt.Sprintf("bad value: %s", strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	if len(doc.Content) > 0 {
		v = doc.Content[0]
	}
	mark(v, at, org)
	return key, v, nil
}

func mark(n *yaml.Node, at Pos, org origins) {
	if n == nil {
		return
	}
	org[n] = at
	for _, c := range n.Content {
		mark(c, at, org)
	}
}

// setPath puts val at the dotted path in the tree, creating missing mapping
// keys (recorded at pos `at`, so that an unknown key is reported there).
func setPath(root *yaml.Node, path string, val *yaml.Node, at Pos, org origins) error {
	segs, err := splitPath(path)
	if err != nil {
		return err
	}
	n := root
	for i, seg := range segs {
		last := i == len(segs)-1
		if isNull(n) {
			// `workers:` with nothing under it is an empty mapping to fill.
			n.Kind, n.Tag, n.Value = yaml.MappingNode, "!!map", ""
		}
		var slot **yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for j := 0; j+1 < len(n.Content); j += 2 {
				if k := deref(n.Content[j]); k != nil && k.Value == seg {
					slot = &n.Content[j+1]
				}
			}
			if slot == nil {
				k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: seg}
				v := val
				if !last {
					v = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
					org[v] = at
				}
				org[k] = at
				n.Content = append(n.Content, k, v)
				slot = &n.Content[len(n.Content)-1]
			}
		case yaml.SequenceNode:
			idx, err := strconv.Atoi(seg)
			if err != nil || idx < 0 || idx >= len(n.Content) {
				return fmt.Errorf("%s: no item %s (the list has %d)", strings.Join(segs[:i], "."), seg, len(n.Content))
			}
			slot = &n.Content[idx]
		default:
			where := strings.Join(segs[:i], ".")
			if where == "" {
				where = "the document"
			}
			return fmt.Errorf("%s is %s, not a mapping or a list", where, describe(n))
		}
		if last {
			*slot = val
			return nil
		}
		if (*slot).Kind == yaml.AliasNode {
			// Write into a copy: the anchor is shared with other places.
			*slot = clone(deref(*slot), org, org)
		}
		n = *slot
		if n == nil {
			return fmt.Errorf("%s: bad alias", strings.Join(segs[:i+1], "."))
		}
	}
	return nil
}

// clone deep-copies a node tree (aliases still point at their shared
// targets), carrying origins from org to out.
func clone(n *yaml.Node, org, out origins) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	if n.Content != nil {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, ch := range n.Content {
			c.Content[i] = clone(ch, org, out)
		}
	}
	if p, ok := org[n]; ok {
		out[&c] = p
	}
	return &c
}

// deleteKey removes key from a mapping node.
func deleteKey(n *yaml.Node, key string) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k := deref(n.Content[j]); k != nil && k.Value == key {
			n.Content = append(n.Content[:j:j], n.Content[j+2:]...)
			return
		}
	}
}
