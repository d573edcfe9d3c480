// Package redact keeps credentials out of logs and error messages: it masks the
// password of AMQP (and any other scheme://user:pass@host) URLs.
package redact

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Mask replaces a password.
const Mask = "***"

// URL returns s with the password of its userinfo replaced by Mask:
// amqp://guest:guest@127.0.0.1:5672/ becomes amqp://guest:***@127.0.0.1:5672/.
// Everything else is kept byte for byte. When s does not parse, everything
// between "://user:" and the last "@" is masked, so a malformed URL may lose
// more than its password but never leaks it. URL never panics.
func URL(s string) string {
	colon, at, ok := locate(s)
	if !ok {
		return s
	}
	return s[:colon+1] + Mask + s[at:]
}

// locate finds the password of s: it is s[colon+1:at].
func locate(s string) (colon, at int, ok bool) {
	var start int
	switch i := strings.Index(s, "://"); {
	case i >= 0:
		start = i + 3
	case strings.HasPrefix(s, "//"): // scheme-relative, as net/url accepts
		start = 2
	default:
		return 0, 0, false
	}
	rest := s[start:]
	at = -1
	if u, err := url.Parse(s); err == nil && u.User != nil {
		// The rule net/url applies: the authority ends at the first '/', '?'
		// or '#', and the userinfo at its last '@'.
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		at = strings.LastIndex(rest[:end], "@")
	}
	if at < 0 {
		// Unparsable, or parsed without userinfo although an '@' may follow:
		// be conservative.
		at = strings.LastIndex(rest, "@")
	}
	if at < 0 {
		return 0, 0, false
	}
	colon = strings.Index(rest[:at], ":")
	if colon < 0 {
		return 0, 0, false
	}
	return start + colon, start + at, true
}

// inText finds scheme://user:password@ anywhere in a text; the password is
// taken up to the next '@' that is not followed by another one before a
// space or quote.
var inText = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@"'\x60]*:)[^\s"'\x60]*@`)

// String returns s with the credentials of every URL in urls masked, and any
// other scheme://user:password@ it contains masked as well. It also masks the
// URLs' passwords where they appear on their own (for example inside a quoted,
// escaped copy of the URL), unless the password equals the user name, which is
// shown anyway.
func String(s string, urls ...string) string {
	for _, u := range urls {
		if u == "" {
			continue
		}
		r := URL(u)
		s = strings.ReplaceAll(s, u, r)
		if q, rq := strconv.Quote(u), strconv.Quote(r); q != u {
			s = strings.ReplaceAll(s, q[1:len(q)-1], rq[1:len(rq)-1])
		}
	}
	s = inText.ReplaceAllString(s, "${1}"+Mask+"@")
	for _, u := range urls {
		user, pass, ok := credentials(u)
		if !ok || pass == "" || pass == Mask || pass == user {
			continue
		}
		s = strings.ReplaceAll(s, pass, Mask)
		if dec, err := url.PathUnescape(pass); err == nil && dec != pass && dec != user && dec != "" {
			s = strings.ReplaceAll(s, dec, Mask)
		}
	}
	return s
}

// credentials returns the raw user and password of a URL as URL finds them.
func credentials(s string) (user, pass string, ok bool) {
	colon, at, ok := locate(s)
	if !ok {
		return "", "", false
	}
	start := strings.Index(s, "://") + 3
	if start < 3 {
		start = 2
	}
	return s[start:colon], s[colon+1 : at], true
}

// Error returns err with its message passed through String: the credentials of
// urls (and of any other URL in the message) are masked. The result still
// matches err with errors.Is and errors.As. A nil err gives nil; an error whose
// message needs no change is returned as is.
func Error(err error, urls ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := String(msg, urls...)
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }

// Unwrap keeps errors.Is and errors.As working. Printing the unwrapped error
// shows the original message again; callers print the redacted one.
func (e *redacted) Unwrap() error { return e.err }
