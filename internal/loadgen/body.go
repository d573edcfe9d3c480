package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"text/template"
)

// Bodies for workers that read their jobs (job.body): a text/template
// rendered per job, or the lines of a file replayed in order. Where the TID
// goes into a JSON body is SetJSONField's.

// BodyData is what a body template sees: {{.TID}} and {{.Seq}}.
type BodyData struct {
	TID string
	Seq int64
}

// maxBodyFile bounds a body file: the harness holds it in memory.
const maxBodyFile = 256 << 20

// templateFuncs are the functions a body template may call; r draws the
// random choices (seeded by the run, so a seed replays the same bodies).
func templateFuncs(r *rand.Rand) template.FuncMap {
	return template.FuncMap{
		// randChoice picks one of its arguments.
		"randChoice": func(choices ...any) (any, error) {
			if len(choices) == 0 {
				return nil, errors.New("randChoice needs at least one choice")
			}
			return choices[r.IntN(len(choices))], nil
		},
		// randInt draws an integer in [lo, hi].
		"randInt": func(lo, hi int) (int, error) {
			if hi < lo {
				return 0, fmt.Errorf("randInt %d %d: hi is below lo", lo, hi)
			}
			return lo + r.IntN(hi-lo+1), nil
		},
	}
}

// Template renders each job's body from a text/template. It is not safe for
// concurrent use: the generator renders one job at a time.
type Template struct {
	t   *template.Template
	buf bytes.Buffer
}

// ParseTemplate parses a body template and renders it once, for a sample
// job, so that a template that cannot render is an error before any load.
// seed seeds its random functions.
func ParseTemplate(text string, seed int64) (*Template, error) {
	r := rand.New(rand.NewPCG(uint64(seed), 0x626f6479))
	t, err := template.New("body").Option("missingkey=error").Funcs(templateFuncs(r)).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse body template: %w", err)
	}
	bt := &Template{t: t}
	if _, err := bt.Render(BodyData{TID: TID("sample", 1), Seq: 1}); err != nil {
		return nil, err
	}
	return bt, nil
}

// Render returns the body of one job; the slice is reused by the next call.
func (bt *Template) Render(d BodyData) ([]byte, error) {
	bt.buf.Reset()
	if err := bt.t.Execute(&bt.buf, d); err != nil {
		return nil, fmt.Errorf("render body template: %w", err)
	}
	return bt.buf.Bytes(), nil
}

// ReadBodyFile reads a body file: one body a line, blank lines skipped. With
// jsonField set every line must be a JSON object (the TID is written into
// that field).
func ReadBodyFile(path, jsonField string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read body file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBodyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read body file %s: %w", path, err)
	}
	if len(data) > maxBodyFile {
		return nil, fmt.Errorf("read body file %s: larger than the limit of %d MiB", path, maxBodyFile>>20)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxBodyFile)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if jsonField != "" {
			if _, err := SetJSONField(b, jsonField, "t"); err != nil {
				return nil, fmt.Errorf("body file %s:%d: %w", path, line, err)
			}
		}
		out = append(out, bytes.Clone(b))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read body file %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("body file %s holds no body", path)
	}
	return out, nil
}

// SetJSONField returns the JSON object body with its top-level field set to
// the string value (added when absent); the other fields keep their order
// and bytes.
func SetJSONField(body []byte, field, value string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("the body is not a JSON object")
	}
	val, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", field, err)
	}
	key, _ := json.Marshal(field)
	out := make([]byte, 0, len(body)+len(val)+len(key)+2)
	out = append(out, '{')
	found, n := false, 0
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("the body is not a JSON object: %w", err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("the body is not a JSON object: %w", err)
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		name, _ := k.(string)
		kb, _ := json.Marshal(name)
		out = append(append(out, kb...), ':')
		if name == field {
			found = true
			out = append(out, val...)
			continue
		}
		out = append(out, raw...)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("the body is not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("the body holds more than one JSON value")
	}
	if !found {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(append(append(out, key...), ':'), val...)
	}
	return append(out, '}'), nil
}

// JSONField returns the string in the top-level field of a JSON object.
func JSONField(body []byte, field string) (string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return "", false
	}
	raw, ok := m[field]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
