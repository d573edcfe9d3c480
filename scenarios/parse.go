package scenarios

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads a scenario file and parses it with the --set overrides.
func Load(path string, sets []string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	defer f.Close()
	data, err := Read(f, path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, sets)
}

// Read reads a scenario from r (a file, or standard input) up to
// MaxFileSize; a longer one (or an endless one, such as /dev/zero) is an error.
func Read(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read scenario %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("read scenario %s: larger than the limit of %d bytes (1 MiB)", name, MaxFileSize)
	}
	return data, nil
}

// Parse decodes and validates a scenario. sets are --set overrides
// ("key.path=yaml value"), applied to the document before it is decoded; a
// --set of a matrix key pins it (the axis is dropped). Every matrix
// combination is decoded and validated too. All problems are returned at
// once as Errors, each "file:line:col: message" or "--set key: message".
func Parse(file string, data []byte, sets []string) (*Scenario, error) {
	root, errs := parseYAML(file, data)
	if root == nil {
		return nil, errs
	}
	org := origins{}
	setVals := map[string]*yaml.Node{}
	for _, raw := range sets {
		key, val, err := parseSet(raw, org)
		if err == nil {
			err = setPath(root, key, val, Pos{Set: key}, org)
			if err != nil {
				err = &Error{Pos: Pos{Set: key}, Msg: err.Error()}
			}
		}
		var e *Error
		if errors.As(err, &e) {
			errs = append(errs, e)
			continue
		}
		setVals[key] = val
	}

	d := &decoder{file: file, origin: org}
	s := d.decode(root)
	errs = append(errs, d.errs...)
	sum := sha256.Sum256(data)
	s.File, s.SHA256, s.Source, s.root, s.origin = file, hex.EncodeToString(sum[:]), data, root, org
	s.Overrides = append([]string(nil), sets...)
	errs = append(errs, checkGateWhen(s)...)
	s.pin(setVals)
	if e := checkAB(s); e != nil {
		errs = append(errs, e)
	}
	if e := checkSLO(s); e != nil {
		errs = append(errs, e)
	}
	s.Effective, errs = effective(s.root, s.Pinned, file, errs)
	sum = sha256.Sum256(s.Effective)
	s.EffectiveSHA256 = hex.EncodeToString(sum[:])

	seen := map[string]bool{}
	for _, e := range errs {
		seen[e.Error()] = true
	}
	_, verrs := expand(s, seen)
	errs = append(errs, verrs...)
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return s, nil
}

// pin drops the matrix keys a --set gave a value (setVals: key -> value) from
// the matrix, and from the document, so that the effective scenario reads as
// what runs; it records their values in Pinned.
func (s *Scenario) pin(setVals map[string]*yaml.Node) {
	axes := s.Matrix[:0:0]
	matrix := mappingValue(s.root, "matrix")
	for _, ax := range s.Matrix {
		val, pinned := setVals[ax.Key]
		if !pinned {
			axes = append(axes, ax)
			continue
		}
		if s.Pinned == nil {
			s.Pinned = map[string]any{}
		}
		var v any
		_ = val.Decode(&v) // a bad value was reported by the decoder
		s.Pinned[ax.Key] = v
		deleteKey(matrix, ax.Key)
	}
	if matrix != nil && len(matrix.Content) == 0 {
		deleteKey(s.root, "matrix")
	}
	s.Matrix = axes
	if len(s.Matrix) == 0 {
		s.Matrix = nil
	}
}

// pinGates rewrites the gate list of a document for the pinned matrix keys,
// so that the effective scenario runs as this one does: a when key pinned to
// the gate's value is dropped (the gate applies), a gate whose when key is
// pinned to another value is dropped (it is skipped in every variant). It
// changes copies of the nodes it rewrites: aliases may share them.
func pinGates(gates *yaml.Node, pinned map[string]any) {
	if gates == nil || gates.Kind != yaml.SequenceNode || len(pinned) == 0 {
		return
	}
	kept := gates.Content[:0:0]
	for _, item := range gates.Content {
		it := deref(item)
		when := mappingValue(it, "when")
		if when == nil || when.Kind != yaml.MappingNode {
			kept = append(kept, item)
			continue
		}
		drop := false
		w := *when
		w.Content = nil
		for j := 0; j+1 < len(when.Content); j += 2 {
			k, v := deref(when.Content[j]), deref(when.Content[j+1])
			var pv any
			ok := false
			if k != nil {
				pv, ok = pinned[k.Value]
			}
			if !ok {
				w.Content = append(w.Content, when.Content[j], when.Content[j+1])
				continue
			}
			var want any
			if v == nil || v.Decode(&want) != nil || !sameValue(pv, want) {
				drop = true
			}
		}
		if drop {
			continue
		}
		g := *it
		g.Content = nil
		for j := 0; j+1 < len(it.Content); j += 2 {
			if k := deref(it.Content[j]); k != nil && k.Value == "when" {
				if len(w.Content) > 0 {
					g.Content = append(g.Content, it.Content[j], &w)
				}
				continue
			}
			g.Content = append(g.Content, it.Content[j], it.Content[j+1])
		}
		kept = append(kept, &g)
	}
	gates.Content = kept
}

// effective renders the document as it runs: its gates rewritten for the
// pinned matrix keys (the variants keep the gates as written, to report the
// skipped ones).
func effective(root *yaml.Node, pinned map[string]any, file string, errs Errors) ([]byte, Errors) {
	doc := clone(root, origins{}, origins{})
	pinGates(mappingValue(doc, "gates"), pinned)
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, append(errs, &Error{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: fmt.Sprintf("render the effective scenario: %v", err)})
	}
	return out, errs
}

// mappingValue returns the value of key in mapping n, nil when absent.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k := deref(n.Content[j]); k != nil && k.Value == key {
			return deref(n.Content[j+1])
		}
	}
	return nil
}

var yamlLineRe = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: `)

// parseYAML reads the single YAML document in data and returns its root node.
func parseYAML(file string, data []byte) (root *yaml.Node, errs Errors) {
	defer func() {
		// The YAML library must not take the process down on hostile input.
		if r := recover(); r != nil {
			root, errs = nil, Errors{{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: fmt.Sprintf("parse YAML: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}, nil
	}
	if err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, Errors{yamlError(file, err)}
		}
		return nil, Errors{{Pos: Pos{File: file, Line: max(extra.Line, 1), Col: max(extra.Column, 1)}, Msg: "a scenario file holds one YAML document; found another"}}
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}, nil
	}
	return doc.Content[0], nil
}

// yamlError turns a YAML syntax error into a positioned Error.
func yamlError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Pos{File: file, Line: 1, Col: 1}
	if m := yamlLineRe.FindStringSubmatchIndex(msg); m != nil {
		p.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
		if m[4] >= 0 {
			p.Col, _ = strconv.Atoi(msg[m[4]:m[5]])
		}
		msg = msg[:m[0]] + msg[m[1]:]
	}
	return &Error{Pos: p, Msg: strings.TrimSpace(msg)}
}
