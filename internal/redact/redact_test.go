package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestURL(t *testing.T) {
	tests := []struct {
		in, want, secret string
	}{
		{"amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/", ""},
		{"amqps://bench:s3cret@rabbit.example:5671/vhost?heartbeat=5", "amqps://bench:***@rabbit.example:5671/vhost?heartbeat=5", "s3cret"},
		{"amqp://u:p%40ss%2Fword@h:5672/%2F", "amqp://u:***@h:5672/%2F", "p%40ss"},
		{"http://admin:hunter2@h:15672/api", "http://admin:***@h:15672/api", "hunter2"},
		{"amqp://u:@h/", "amqp://u:***@h/", ""},
		{"amqp://guest@127.0.0.1:5672/", "amqp://guest@127.0.0.1:5672/", ""},
		{"amqp://127.0.0.1:5672/", "amqp://127.0.0.1:5672/", ""},
		{"amqp://u:pw@h/v@x", "amqp://u:***@h/v@x", "pw"},
		{"", "", ""},
		{"not a url", "not a url", ""},
		{"guest:guest@h", "guest:guest@h", ""}, // no scheme: not a URL
		// Malformed: everything between "://user:" and the last '@' goes.
		{"amqp://u:pa/ss@h:5672/", "amqp://u:***@h:5672/", "pa/ss"},
		{"amqp://u:p#ss@h/", "amqp://u:***@h/", "p#ss"},
		{"amqp://u:12?x@h/", "amqp://u:***@h/", "12?x"},
		{"amqp://u:p@ss@h/", "amqp://u:***@h/", "p@ss"},
		{"amqp://u:secret with space@h", "amqp://u:***@h", "secret with"},
		{"amqp://u:ctl\x00secret@h", "amqp://u:***@h", "ctl\x00secret"},
		{"%%%://u:secret@h", "%%%://u:***@h", "secret"},
		{"://u:secret@h", "://u:***@h", "secret"},
		{"amqp://u:secret@", "amqp://u:***@", "secret"},
		{"//:0000@", "//:***@", "0000"},
		{"//u:secret@h/", "//u:***@h/", "secret"},
		{"amqp://u:secret@h:port:bad/", "amqp://u:***@h:port:bad/", "secret"},
		// Over-redaction is accepted where '@' appears without userinfo.
		{"amqp://h:5672/v@x", "amqp://h:***@x", ""},
	}
	for _, tt := range tests {
		got := URL(tt.in)
		if got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.secret != "" && strings.Contains(got, tt.secret) {
			t.Errorf("URL(%q) = %q leaks %q", tt.in, got, tt.secret)
		}
		if again := URL(got); again != got {
			t.Errorf("URL not idempotent: URL(%q) = %q", got, again)
		}
	}
}

func TestString(t *testing.T) {
	const u = "amqp://bench:s3cret@127.0.0.1:5672/"
	tests := []struct {
		name, in, want string
		urls           []string
	}{
		{"given url", "dial " + u + ": refused", "dial amqp://bench:***@127.0.0.1:5672/: refused", []string{u}},
		{"any url", "dial amqp://a:b@h:1/ and amqps://c:dd@h2", "dial amqp://a:***@h:1/ and amqps://c:***@h2", nil},
		{"quoted", fmt.Sprintf("parse %q: bad", u), `parse "amqp://bench:***@127.0.0.1:5672/": bad`, []string{u}},
		{"bare password", "auth failed for s3cret", "auth failed for ***", []string{u}},
		{"password equals user", "user guest: amqp://guest:guest@h/", "user guest: amqp://guest:***@h/", []string{"amqp://guest:guest@h/"}},
		{"no credentials", "dial tcp 127.0.0.1:1: connection refused", "dial tcp 127.0.0.1:1: connection refused", []string{u}},
		{"empty url", "x", "x", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(tt.in, tt.urls...); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestError(t *testing.T) {
	sentinel := errors.New("broker unavailable")
	const u = "amqp://bench:s3cret@h:bad/"
	_, perr := url.Parse(u)
	if perr == nil {
		t.Fatal("url.Parse accepted a bad port")
	}
	err := Error(fmt.Errorf("%w: open %s: %w", sentinel, u, perr), u)
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), "amqp://bench:***@h:bad/") {
		t.Errorf("Error lost the redacted URL: %v", err)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is lost the sentinel: %v", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("errors.As lost the *url.Error: %v", err)
	}
	if Error(nil, u) != nil {
		t.Error("Error(nil) != nil")
	}
	plain := errors.New("connection refused")
	if Error(plain, u) != plain {
		t.Error("an error without credentials should be returned as is")
	}
}

func FuzzURL(f *testing.F) {
	for _, s := range []string{"amqp://guest:guest@127.0.0.1:5672/", "amqp://u:p@ss@h/", "://:@", "a://b:c@d@e/f@g", "amqp://u:%zz@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := URL(s)
		if URL(got) != got {
			t.Errorf("not idempotent: %q -> %q -> %q", s, got, URL(got))
		}
		u, err := url.Parse(s)
		if err != nil || u.User == nil {
			return
		}
		if p, ok := u.User.Password(); ok && len(p) >= 4 && !strings.Contains(got, Mask) {
			t.Errorf("URL(%q) = %q: password %q not masked", s, got, p)
		}
	})
}
