package scenarios

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Pos is where something was written: a file position, or the --set flag that set it.
type Pos struct {
	File      string
	Line, Col int
	Set       string // the --set key, when the value came from the command line
}

// String formats the position as "file:line:col" or "--set key".
func (p Pos) String() string {
	if p.Set != "" {
		set := p.Set
		if strings.IndexFunc(set, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
			set = strconv.Quote(set)
		}
		return "--set " + set
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem in a scenario, at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errors is every problem found in a scenario, in file order. Parse returns
// it (as an error) so that `bench validate` can print one per line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, for errors.As and errors.Is.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
