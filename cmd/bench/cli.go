package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// stdio is where a command reads and writes: the process's own in main,
// buffers and pipes in tests.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// cli is how one command presents itself: its help (on stdout, for --help)
// and its usage errors (on stderr, exit 2). Every command goes through it, so
// they all answer a bad flag the same way.
type cli struct {
	name     string   // "run", or "broker up"
	usage    string   // the synopsis after "bench NAME", e.g. "FILE.yaml [flags]"
	about    string   // what the command does; may hold several paragraphs
	examples []string // command lines, and "# comment" lines about the next one
	exits    string   // the exit codes this command uses
}

// Exit code texts, for the commands' help.
const (
	exitsRun     = "0 every gate passed (and no regression against --baseline)\n1 a gate failed, a variant was aborted, or a metric regressed\n2 bad input: the scenario, a flag, the baseline file\n3 environment failure: no broker, a foreign queue in the way, a port taken, a process died"
	exitsCheck   = "0 every file is valid\n2 a file is invalid or cannot be read, or a bad flag"
	exitsDefault = "0 done\n2 bad input (flags, arguments, files)\n3 environment failure"
	exitsPerf    = "0 done; 1 a target was missed (with --strict)\n2 bad input (flags)\n3 environment failure"
)

// flags returns an empty flag set for the command that prints nothing by
// itself: parse decides what goes where.
func (c cli) flags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("bench "+c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	return fs
}

// parse parses args. done is true when the command must end with code: after
// --help (the help on stdout, exit 0) or a bad flag (pflag's message and the
// usage line on stderr, exit 2).
func (c cli) parse(fs *pflag.FlagSet, args []string, s stdio) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, pflag.ErrHelp):
		c.help(s.out, fs)
		return exitOK, true
	default:
		return c.fail(s, "%v", err), true
	}
}

// fail prints a usage error, the usage line and where to find more; it
// returns exitInput.
func (c cli) fail(s stdio, format string, args ...any) int {
	fmt.Fprintf(s.err, "bench %s: %s\n", c.name, fmt.Sprintf(format, args...))
	fmt.Fprintf(s.err, "usage: bench %s %s\nRun 'bench %s --help' for the flags, examples and exit codes.\n", c.name, c.usage, c.name)
	return exitInput
}

// args checks the number of positional arguments: at least lo, at most hi
// (hi < 0: no limit). It reports a usage error and returns false otherwise.
func (c cli) args(fs *pflag.FlagSet, lo, hi int, s stdio) bool {
	n := fs.NArg()
	switch {
	case n < lo:
		c.fail(s, "missing arguments")
		return false
	case hi >= 0 && n > hi:
		c.fail(s, "unexpected argument %q", fs.Arg(hi))
		return false
	}
	return true
}

// help writes the command's help: synopsis, description, flags, examples and
// exit codes.
func (c cli) help(w io.Writer, fs *pflag.FlagSet) {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: bench %s %s\n\n%s\n", c.name, c.usage, strings.TrimSpace(c.about))
	if fs != nil && fs.HasFlags() {
		fmt.Fprintf(&b, "\nFlags:\n%s", fs.FlagUsages())
	}
	if len(c.examples) > 0 {
		b.WriteString("\nExamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	exits := c.exits
	if exits == "" {
		exits = exitsDefault
	}
	b.WriteString("\nExit codes:\n")
	for _, l := range strings.Split(exits, "\n") {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	_, _ = io.WriteString(w, b.String())
}
