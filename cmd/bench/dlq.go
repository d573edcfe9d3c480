package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/benchmq/bench/chaos/broker"
	"github.com/benchmq/bench/internal/redact"
	"github.com/benchmq/bench/worker"
)

const dlqUsage = `usage: bench dlq ls|show|replay|purge QUEUE [flags]

A worker puts a job it gave up on in QUEUE.dead (with the error, the attempts
and the TID). QUEUE is a task ("billing.invoice.send") or an event queue
("<app>.<event>"); QUEUE.dead is accepted too.

  ls QUEUE       count the dead letters and list the first --limit of them
  show QUEUE     print one dead letter in full (--id ID, or --index N from the head)
  replay QUEUE   move dead letters back into QUEUE as new jobs: same ID and TID,
                 attempts counted from 1 again (--id ID..., --limit N; default:
                 all that are there when it starts)
  purge QUEUE    delete every dead letter of QUEUE (asks for --yes)

The broker is --amqp-url, else $AMQP_URL, else ` + defaultDLQURL + `.
Exit codes: 0 done, 2 bad input (flags, no such queue, purge without --yes),
3 environment (no broker, refused, failed midway).`

const defaultDLQURL = "amqp://guest:guest@127.0.0.1:5672/"

func cmdDLQ(args []string, s stdio) int { return runDLQ(args, s.out, s.err) }

// dlqFlags are every subcommand's flags; each subcommand registers the ones it takes.
type dlqFlags struct {
	url   string
	json  bool
	limit int
	index int
	ids   []string
	yes   bool
}

func runDLQ(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, dlqUsage)
		return exitInput
	}
	sub := args[0]
	switch sub {
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, dlqUsage)
		return exitOK
	case "ls", "show", "replay", "purge":
	default:
		fmt.Fprintf(stderr, "bench dlq: unknown subcommand %q\n\n%s\n", sub, dlqUsage)
		return exitInput
	}
	var f dlqFlags
	c := cli{name: "dlq " + sub, usage: "QUEUE [flags]", about: strings.TrimPrefix(dlqUsage, "usage: bench dlq ls|show|replay|purge QUEUE [flags]\n\n"),
		exits: "0 done\n2 bad input (flags, no such queue, purge without --yes)\n3 environment (no broker, refused, failed midway)"}
	fs := c.flags()
	fs.StringVar(&f.url, "amqp-url", "", "broker (default $AMQP_URL, then "+defaultDLQURL+")")
	switch sub {
	case "ls":
		fs.IntVar(&f.limit, "limit", 20, "list at most N dead letters")
		fs.BoolVar(&f.json, "json", false, "print JSON")
	case "show":
		fs.StringSliceVar(&f.ids, "id", nil, "the message ID to show (looks through the whole queue)")
		fs.IntVar(&f.index, "index", 0, "the position from the head to show, when --id is not given")
		fs.BoolVar(&f.json, "json", false, "print JSON")
	case "replay":
		fs.StringSliceVar(&f.ids, "id", nil, "replay only these message IDs (repeatable, or comma-separated)")
		fs.IntVar(&f.limit, "limit", 0, "look at most at N dead letters from the head (0: all there now)")
	case "purge":
		fs.BoolVar(&f.yes, "yes", false, "really delete every dead letter")
	}
	std := stdio{out: stdout, err: stderr}
	if code, done := c.parse(fs, args[1:], std); done {
		return code
	}
	if !c.args(fs, 1, 1, std) {
		return exitInput
	}
	if f.limit < 0 || f.index < 0 || (sub == "show" && len(f.ids) > 1) {
		fmt.Fprintf(stderr, "bench dlq %s: --limit and --index must not be negative; show takes one --id\n", sub)
		return exitInput
	}
	if sub == "purge" && !f.yes {
		fmt.Fprintf(stderr, "bench dlq purge: this deletes every dead letter of %s; run again with --yes\n", fs.Arg(0))
		return exitInput
	}
	if f.url == "" {
		f.url = os.Getenv(broker.EnvURL)
	}
	if f.url == "" {
		f.url = defaultDLQURL
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	q, err := worker.OpenDeadLetters(octx, worker.DeadLetterConfig{URL: f.url, Queue: fs.Arg(0)})
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "bench dlq %s: %v\n", sub, redact.Error(err, f.url))
		var ce *worker.ConfigError
		if errors.Is(err, worker.ErrNoDeadQueue) || (errors.As(err, &ce) && ce.Op == "open dead letters") {
			return exitInput
		}
		return exitEnv
	}
	defer q.Close()
	switch sub {
	case "ls":
		err = dlqList(ctx, q, f, stdout)
	case "show":
		err = dlqShow(ctx, q, f, stdout)
	case "replay":
		var n int
		n, err = q.Replay(ctx, worker.ReplayOptions{Limit: f.limit, IDs: f.ids})
		fmt.Fprintf(stdout, "replayed %d dead letters into %s\n", n, q.Queue())
	case "purge":
		var n int
		if n, err = q.Purge(ctx); err == nil {
			fmt.Fprintf(stdout, "purged %d dead letters of %s\n", n, q.Queue())
		}
	}
	if errors.Is(err, errNotFound) {
		fmt.Fprintf(stderr, "bench dlq %s: %v\n", sub, err)
		return exitInput
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench dlq %s: %v\n", sub, redact.Error(err, f.url))
		return exitEnv
	}
	return exitOK
}

var errNotFound = errors.New("no such dead letter")

// dlqJSON is a dead letter as `--json` prints it.
type dlqJSON struct {
	ID          string         `json:"id"`
	TID         string         `json:"tid"`
	Queue       string         `json:"queue"`
	Error       string         `json:"error"`
	Attempts    int            `json:"attempts"`
	DiedAt      *time.Time     `json:"died_at,omitempty"`
	Replays     int            `json:"replays"`
	ContentType string         `json:"content_type,omitempty"`
	Headers     map[string]any `json:"headers,omitempty"`
	Body        string         `json:"body,omitempty"`
	BodyBase64  string         `json:"body_base64,omitempty"`
}

func toJSON(dl worker.DeadLetter, full bool) dlqJSON {
	j := dlqJSON{ID: dl.ID, TID: dl.TID, Queue: dl.Queue, Error: dl.Error, Attempts: dl.Attempts, Replays: dl.Replays, ContentType: dl.ContentType}
	if !dl.DiedAt.IsZero() {
		t := dl.DiedAt.UTC()
		j.DiedAt = &t
	}
	if full {
		j.Headers = map[string]any(dl.Headers)
		if utf8.Valid(dl.Body) {
			j.Body = string(dl.Body)
		} else {
			j.BodyBase64 = base64.StdEncoding.EncodeToString(dl.Body)
		}
	}
	return j
}

func dlqList(ctx context.Context, q *worker.DeadLetters, f dlqFlags, w io.Writer) error {
	n, err := q.Len(ctx)
	if err != nil {
		return err
	}
	dls, err := q.Peek(ctx, f.limit)
	if err != nil {
		return err
	}
	if f.json {
		out := struct {
			Queue string    `json:"queue"`
			Count int       `json:"count"`
			Items []dlqJSON `json:"items"`
		}{q.Queue(), n, []dlqJSON{}}
		for _, dl := range dls {
			out.Items = append(out.Items, toJSON(dl, false))
		}
		return writeJSON(w, out)
	}
	fmt.Fprintf(w, "%s: %d dead letters", worker.DeadQueue(q.Queue()), n)
	if len(dls) < n {
		fmt.Fprintf(w, " (the first %d)", len(dls))
	}
	fmt.Fprintln(w)
	if len(dls) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTID\tATTEMPTS\tDIED (UTC)\tREPLAYS\tERROR")
	for _, dl := range dls {
		died := "-"
		if !dl.DiedAt.IsZero() {
			died = dl.DiedAt.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", dl.ID, dl.TID, dl.Attempts, died, dl.Replays, oneLine(dl.Error, 80))
	}
	return tw.Flush()
}

func dlqShow(ctx context.Context, q *worker.DeadLetters, f dlqFlags, w io.Writer) error {
	var dl *worker.DeadLetter
	if len(f.ids) == 1 {
		n, err := q.Len(ctx)
		if err != nil {
			return err
		}
		dls, err := q.Peek(ctx, n)
		if err != nil {
			return err
		}
		for i := range dls {
			if dls[i].ID == f.ids[0] {
				dl = &dls[i]
				break
			}
		}
	} else {
		dls, err := q.Peek(ctx, f.index+1)
		if err != nil {
			return err
		}
		if len(dls) == f.index+1 {
			dl = &dls[f.index]
		}
	}
	if dl == nil {
		if len(f.ids) == 1 {
			return fmt.Errorf("%w with ID %q in %s", errNotFound, f.ids[0], worker.DeadQueue(q.Queue()))
		}
		return fmt.Errorf("%w at index %d in %s", errNotFound, f.index, worker.DeadQueue(q.Queue()))
	}
	j := toJSON(*dl, true)
	if f.json {
		return writeJSON(w, j)
	}
	died := "-"
	if j.DiedAt != nil {
		died = j.DiedAt.Format(time.RFC3339Nano)
	}
	fmt.Fprintf(w, "id:           %s\ntid:          %s\nqueue:        %s\nattempts:     %d\ndied at:      %s\nreplays:      %d\nerror:        %s\ncontent type: %s\nheaders:\n",
		j.ID, j.TID, j.Queue, j.Attempts, died, j.Replays, j.Error, j.ContentType)
	keys := make([]string, 0, len(dl.Headers))
	for k := range dl.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %v\n", k, dl.Headers[k])
	}
	if j.BodyBase64 != "" {
		fmt.Fprintf(w, "body (%d bytes, base64):\n%s\n", len(dl.Body), j.BodyBase64)
	} else {
		fmt.Fprintf(w, "body (%d bytes):\n%s\n", len(dl.Body), j.Body)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
