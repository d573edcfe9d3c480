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
	var setKeys []string
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
		setKeys = append(setKeys, key)
	}

	d := &decoder{file: file, origin: org}
	s := d.decode(root)
	errs = append(errs, d.errs...)
	sum := sha256.Sum256(data)
	s.File, s.SHA256, s.Source, s.root, s.origin = file, hex.EncodeToString(sum[:]), data, root, org

	axes := s.Matrix[:0:0]
	for _, ax := range s.Matrix {
		if !contains(setKeys, ax.Key) {
			axes = append(axes, ax)
		}
	}
	s.Matrix = axes
	if len(s.Matrix) == 0 {
		s.Matrix = nil
	}
	if e := checkAB(s); e != nil {
		errs = append(errs, e)
	}
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
