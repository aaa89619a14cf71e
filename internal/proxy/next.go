package proxy

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/upstream"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// attempts records every peer a request tried, for $upstream_addr, $upstream_status, $upstream_connect_time,
// $upstream_header_time and $upstream_response_time (comma separated, as nginx). The first try is kept
// inline: most requests make one, and then the variables are its strings, with nothing to join.
type attempts struct {
	first attempt
	more  []attempt
	n     int
	// chain holds the values of an earlier upstream pass of the same request (see follow)
	chain   attempt
	chained bool
}

// attempt is one try's values: address, status, connect, header and response time.
type attempt [5]string

// the fields of an attempt
const (
	aAddr = iota
	aStatus
	aConnect
	aHeader
	aTotal
)

func (a *attempts) add(addr, status string, connect, header, total string) {
	t := attempt{addr, status, connect, header, total}
	if a.n == 0 {
		a.first = t
	} else {
		a.more = append(a.more, t)
	}
	a.n++
}

// last is the latest try.
func (a *attempts) last() *attempt {
	if len(a.more) > 0 {
		return &a.more[len(a.more)-1]
	}
	return &a.first
}

// follow makes these tries a new group after an earlier upstream pass of the same request, whose values v
// holds (an internal redirect after proxying: error_page with proxy_intercept_errors, or after a failed
// pass): nginx lists each pass's tries and joins the passes with " : ".
func (a *attempts) follow(v *vars.Request) {
	if v.UpstreamAddr == "" {
		return
	}
	a.chained = true
	a.chain = attempt{v.UpstreamAddr, v.UpstreamStatus, v.UpstreamConnectTime, v.UpstreamHeaderTime, v.UpstreamResponseTime}
}

// set writes the variables; the last try's response time may be updated later with finish.
func (a *attempts) set(v *vars.Request) {
	v.UpstreamAddr = a.join(aAddr)
	v.UpstreamStatus = a.join(aStatus)
	v.UpstreamConnectTime = a.join(aConnect)
	v.UpstreamHeaderTime = a.join(aHeader)
	v.UpstreamResponseTime = a.join(aTotal)
}

// join lists one field of every try, comma separated.
func (a *attempts) join(f int) string {
	if a.n == 0 {
		return ""
	}
	list := a.first[f]
	if a.n > 1 {
		var b strings.Builder
		b.WriteString(list)
		for i := range a.more {
			b.WriteString(", ")
			b.WriteString(a.more[i][f])
		}
		list = b.String()
	}
	if a.chained {
		return vars.AfterPass(cmp.Or(a.chain[f], "-"), list)
	}
	return list
}

// finish sets the last try's response time, from start to end (zero: now, when its body has been relayed; a
// spool's end when it read the body ahead of the client).
func (a *attempts) finish(v *vars.Request, start, end time.Time) {
	if a.n > 0 && !v.NoUpstreamTimes {
		d := time.Since(start) // (cheaper than time.Now: no wall clock read)
		if !end.IsZero() {
			d = end.Sub(start)
		}
		a.last()[aTotal] = vars.Seconds(d)
		v.UpstreamResponseTime = a.join(aTotal)
	}
}

// failure is why a try failed, in proxy_next_upstream's terms.
type failure int

const (
	failError failure = iota
	failTimeout
	failInvalidHeader
	failStatus
)

// classify maps a transport error to its proxy_next_upstream condition.
func classify(err error) failure {
	var ne net.Error
	switch {
	case errors.Is(err, errReadTimeout) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return failTimeout
	case errors.Is(err, errHeaderTooBig) || errors.Is(err, errSwitched):
		return failInvalidHeader
	case errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled):
		return failError
	case strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"):
		return failError
	}
	// anything else came from parsing the response head
	return failInvalidHeader
}

// nonIdempotent is nginx's set of methods never passed to a next peer once sent (unless non_idempotent).
func nonIdempotent(method string) bool {
	return method == http.MethodPost || method == http.MethodPatch || method == "LOCK"
}

// retryPolicy is a location's proxy_next_upstream settings for one request.
type retryPolicy struct {
	nu      config.NextUpstream
	tries   int           // proxy_next_upstream_tries, 0 = no limit
	timeout time.Duration // proxy_next_upstream_timeout, 0 = no limit
	start   time.Time
	method  string
	body    bool        // the request has a body (streamed: once read, it can be sent again only if kept)
	rewind  func() bool // set when the body is kept: gives the next try a reader of the whole body
}

// mayResend reports whether a request with a body could go to another peer once sent, so that keeping the
// body is worth it: proxy_next_upstream is not off, and the method may be repeated.
func (r *retryPolicy) mayResend() bool {
	on := r.nu.Error || r.nu.Timeout || r.nu.InvalidHeader || len(r.nu.Status) > 0
	return on && r.tries != 1 && (!nonIdempotent(r.method) || r.nu.NonIdempotent)
}

func newRetryPolicy(pr *Request, out *http.Request) retryPolicy {
	c := pr.Conf
	r := retryPolicy{
		nu:      c.ProxyNextUpstream.Get(config.ProxyDefaults.NextUpstream),
		tries:   c.ProxyNextTries.Get(0),
		timeout: c.ProxyNextTimeout.Get(0),
		method:  pr.R.Method, // the client's, as nginx, also where proxy_method sends another
		body:    out.Body != nil && out.Body != http.NoBody,
	}
	if r.timeout > 0 {
		r.start = time.Now() // a clock read only for proxy_next_upstream_timeout
	}
	return r
}

// statusListed reports whether proxy_next_upstream lists an upstream status.
func (r *retryPolicy) statusListed(status int) bool { return slices.Contains(r.nu.Status, status) }

// outcome is how a try counts toward the peer's health: errors and listed 5xx/429 are failures, listed
// 403/404 only pass the request on (nginx). A try cut short by the client (gone, or its body failed) is not
// held against the peer.
func (r *retryPolicy) outcome(ctx context.Context, pr *Request, f failure, status int) upstream.Outcome {
	if f == failStatus && (status == http.StatusForbidden || status == http.StatusNotFound) {
		return upstream.Next
	}
	if ctx.Err() != nil || pr.body.readErr() != nil {
		return upstream.Next
	}
	return upstream.Failed
}

// next decides whether a failed try goes on to another peer (asked before the try is reported, as nginx's
// peer.tries > 1). n is the number of tries made, sent whether the request may have reached the peer.
func (r *retryPolicy) next(ctx context.Context, try *upstream.Try, f failure, n int, sent bool) bool {
	switch f {
	case failError:
		if !r.nu.Error {
			return false
		}
	case failTimeout:
		if !r.nu.Timeout {
			return false
		}
	case failInvalidHeader:
		if !r.nu.InvalidHeader {
			return false
		}
	}
	switch {
	case try.Left() <= 1, r.tries > 0 && n >= r.tries, r.timeout > 0 && time.Since(r.start) >= r.timeout, ctx.Err() != nil:
		return false
	case sent && nonIdempotent(r.method) && !r.nu.NonIdempotent:
		return false
	case sent && r.body:
		// the failed try consumed the body: it goes again only if it was kept whole
		return r.rewind != nil && r.rewind()
	}
	return true
}

// balanceKey is what hash policies balance this request on.
func balanceKey(pr *Request, t *target) upstream.Key {
	k := upstream.Key{Client: pr.V.RemoteAddr.Addr()}
	if t.upstream != nil && t.upstream.HashKey != nil {
		k.Hash = t.upstream.HashKey.Eval(pr.V)
	}
	if t.upstream != nil && t.upstream.Sticky != nil {
		if c, err := pr.R.Cookie(t.upstream.Sticky.Name); err == nil {
			k.Sticky = c.Value
		}
	}
	return k
}

// setSticky adds the sticky cookie naming peer to h unless the request already carried it.
func setSticky(h http.Header, pr *Request, t *target, peer *upstream.Peer) {
	if t.upstream == nil || t.upstream.Sticky == nil || peer == nil {
		return
	}
	st := t.upstream.Sticky
	if c, err := pr.R.Cookie(st.Name); err == nil && c.Value == peer.ID {
		return
	}
	c := &http.Cookie{Name: st.Name, Value: peer.ID, Path: st.Path, Domain: st.Domain, Secure: st.Secure, HttpOnly: st.HTTPOnly}
	switch st.SameSite {
	case "strict":
		c.SameSite = http.SameSiteStrictMode
	case "lax":
		c.SameSite = http.SameSiteLaxMode
	case "none":
		c.SameSite = http.SameSiteNoneMode
	}
	switch {
	case st.Expires < 0:
		c.Expires = time.Date(2037, 12, 31, 23, 55, 55, 0, time.UTC) // nginx's "max"
	case st.Expires > 0:
		c.Expires = time.Now().Add(st.Expires)
		c.MaxAge = int(st.Expires / time.Second)
	}
	h.Add("Set-Cookie", c.String())
}

// statusText is $upstream_status for a failed try: the status it answered, 504 for a timeout, 502 for an
// error, "-" when the client went away first (no answer came).
func statusText(clientGone bool, f failure, status int) string {
	if f == failStatus {
		return httpsyntax.Status(status)
	}
	if clientGone {
		return "-"
	}
	if f == failTimeout {
		return "504"
	}
	return "502"
}
