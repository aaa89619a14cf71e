package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/upstream"
	"github.com/sluice-proxy/sluice/internal/vars"
)

func TestRetryPolicy(t *testing.T) {
	set := upstream.NewSet(slog.New(slog.NewTextHandler(io.Discard, nil)))
	set.Update(map[string]*config.Upstream{"u": {Name: "u", Servers: []config.UpstreamServer{
		{Addr: "a:1", Weight: 1, MaxFails: 1, FailTimeout: time.Second},
		{Addr: "b:1", Weight: 1, MaxFails: 1, FailTimeout: time.Second},
		{Addr: "c:1", Weight: 1, MaxFails: 1, FailTimeout: time.Second}}}})
	def := config.ProxyDefaults.NextUpstream
	for _, tc := range []struct {
		name   string
		nu     config.NextUpstream
		method string
		body   bool
		f      failure
		sent   bool
		tries  int
		n      int
		want   bool
	}{
		{"GET error", def, "GET", false, failError, true, 0, 1, true},
		{"GET timeout", def, "GET", false, failTimeout, true, 0, 1, true},
		{"invalid header not listed", def, "GET", false, failInvalidHeader, true, 0, 1, false},
		{"POST not sent", def, "POST", true, failError, false, 0, 1, true},
		{"POST sent", def, "POST", false, failError, true, 0, 1, false},
		{"PATCH sent", def, "PATCH", false, failTimeout, true, 0, 1, false},
		{"POST sent, non_idempotent", config.NextUpstream{Error: true, NonIdempotent: true}, "POST", false, failError, true, 0, 1, true},
		{"PUT body sent", def, "PUT", true, failError, true, 0, 1, false},
		{"off", config.NextUpstream{}, "GET", false, failError, false, 0, 1, false},
		{"tries reached", def, "GET", false, failError, true, 2, 2, false},
		{"status listed", config.NextUpstream{Status: []int{503}}, "GET", false, failStatus, true, 0, 1, true},
		{"status, POST", config.NextUpstream{Status: []int{503}}, "POST", false, failStatus, true, 0, 1, false},
	} {
		rp := &retryPolicy{nu: tc.nu, tries: tc.tries, start: time.Now(), method: tc.method, body: tc.body}
		try := set.Group("u").Begin(upstream.Key{})
		try.Next()
		if got := rp.next(context.Background(), try, tc.f, tc.n, tc.sent); got != tc.want {
			t.Errorf("%s: next = %v, want %v", tc.name, got, tc.want)
		}
		try.Done(upstream.Success).End()
	}
	// proxy_next_upstream_timeout
	rp := &retryPolicy{nu: def, timeout: time.Millisecond, start: time.Now().Add(-time.Second), method: "GET"}
	try := set.Group("u").Begin(upstream.Key{})
	try.Next()
	if rp.next(context.Background(), try, failError, 1, true) {
		t.Error("retried after proxy_next_upstream_timeout")
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want failure
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, failError},
		{errReadTimeout, failTimeout},
		{context.DeadlineExceeded, failTimeout},
		{io.ErrUnexpectedEOF, failError},
		{errHeaderTooBig, failInvalidHeader},
		{fmt.Errorf("malformed HTTP status code %q", "abc"), failInvalidHeader},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestOutcomeBlamesOnlyThePeer(t *testing.T) {
	rp := &retryPolicy{nu: config.ProxyDefaults.NextUpstream}
	live, gone := context.Background(), func() context.Context {
		c, cancel := context.WithCancel(context.Background())
		cancel()
		return c
	}()
	pr := &Request{}
	badBody := &Request{body: &clientBody{err: errors.New("client body timeout")}}
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		pr     *Request
		f      failure
		status int
		want   upstream.Outcome
	}{
		{"upstream error", live, pr, failError, 0, upstream.Failed},
		{"listed 503", live, pr, failStatus, 503, upstream.Failed},
		{"listed 404", live, pr, failStatus, 404, upstream.Next},
		{"client gone", gone, pr, failError, 0, upstream.Next},
		{"client body failed", live, badBody, failError, 0, upstream.Next},
	} {
		if got := rp.outcome(tc.ctx, tc.pr, tc.f, tc.status); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Every try is listed, comma separated, in each $upstream_* variable; a single try needs no joining.
func TestAttemptsSet(t *testing.T) {
	var v vars.Request
	var at attempts
	at.add("10.0.0.1:80", "502", "0.001", "-", "0.002")
	at.set(&v)
	if v.UpstreamAddr != "10.0.0.1:80" || v.UpstreamStatus != "502" || v.UpstreamConnectTime != "0.001" || v.UpstreamHeaderTime != "-" || v.UpstreamResponseTime != "0.002" {
		t.Fatalf("one try: %q %q %q %q %q", v.UpstreamAddr, v.UpstreamStatus, v.UpstreamConnectTime, v.UpstreamHeaderTime, v.UpstreamResponseTime)
	}
	at.add("10.0.0.2:80", "504", "0.000", "-", "1.000")
	at.add("10.0.0.3:80", "200", "0.000", "0.004", "0.004")
	at.set(&v)
	at.finish(&v, time.Now().Add(-1234*time.Millisecond), time.Time{})
	if v.UpstreamAddr != "10.0.0.1:80, 10.0.0.2:80, 10.0.0.3:80" || v.UpstreamStatus != "502, 504, 200" ||
		v.UpstreamHeaderTime != "-, -, 0.004" || v.UpstreamResponseTime != "0.002, 1.000, 1.234" {
		t.Fatalf("three tries: %q %q %q %q", v.UpstreamAddr, v.UpstreamStatus, v.UpstreamHeaderTime, v.UpstreamResponseTime)
	}
	if at.last()[aAddr] != "10.0.0.3:80" {
		t.Fatalf("last = %q", at.last()[aAddr])
	}
	// when nothing reads the times they are not formatted (and the clock is not read for them)
	v = vars.Request{NoUpstreamTimes: true}
	if s, d := v.UpstreamSince(time.Now().Add(-time.Second)), v.UpstreamTime(time.Second); s != "" || d != "" {
		t.Fatalf("NoUpstreamTimes: since %q, time %q", s, d)
	}
	var quiet attempts
	quiet.add("10.0.0.1:80", "200", "", "", "")
	quiet.set(&v)
	quiet.finish(&v, time.Now().Add(-time.Second), time.Time{})
	if v.UpstreamAddr != "10.0.0.1:80" || v.UpstreamResponseTime != "" {
		t.Fatalf("NoUpstreamTimes: addr %q, response time %q", v.UpstreamAddr, v.UpstreamResponseTime)
	}
}

// TestClientBodyRewind: a body read to its end within the limit gives each rewind a reader of the whole body;
// one over the limit, not read to its end, or not kept, does not.
func TestClientBodyRewind(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		limit int
		read  int // bytes read before the rewind; -1: to the end
		want  bool
	}{
		{"kept whole", "hello, world", 16, -1, true},
		{"exactly the limit", "0123456789abcdef", 16, -1, true},
		{"over the limit", "0123456789abcdefg", 16, -1, false},
		{"not read to its end", "hello, world", 16, 5, false},
		{"not kept", "hello, world", 0, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &clientBody{ReadCloser: io.NopCloser(strings.NewReader(tc.body))}
			b.keepUpTo(tc.limit)
			if tc.read < 0 {
				io.Copy(io.Discard, iotest.OneByteReader(b))
			} else {
				io.CopyN(io.Discard, b, int64(tc.read))
			}
			r1, ok := b.rewind()
			if ok != tc.want {
				t.Fatalf("rewind = %v, want %v", ok, tc.want)
			}
			if !tc.want {
				return
			}
			// a late read by the failed try's sender (net/http looks past Content-Length) takes nothing from
			// the copies; each rewind reads the whole body whatever another has read
			if n, err := b.Read(make([]byte, 8)); n != 0 || err != io.EOF {
				t.Fatalf("late read: %d, %v", n, err)
			}
			io.CopyN(io.Discard, r1, 3)
			r2, _ := b.rewind()
			for _, r := range []io.Reader{r2, r1} {
				again, err := io.ReadAll(r)
				if err != nil || (r == r2 && string(again) != tc.body) || (r == r1 && string(again) != tc.body[3:]) {
					t.Fatalf("after rewind read %q, %v", again, err)
				}
			}
		})
	}
}
