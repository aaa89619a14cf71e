package proxy

import (
	"iter"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 (plus the de-facto Proxy-Connection and
// Keep-Alive): they describe one connection and are never forwarded in either direction.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// RemoveHopHeaders deletes hop-by-hop headers and the headers the sender's Connection header names. It must
// run on the headers as received, before sluice adds its own, so that a client's "Connection: X-Real-IP"
// cannot strip a header the configuration sets.
func RemoveHopHeaders(h http.Header) {
	removeNamed(h, h["Connection"])
	for _, name := range hopHeaders {
		delete(h, name) // canonical already: Del would only canonicalise it again
	}
}

// removeNamed deletes the headers that Connection header values name.
func removeNamed(h http.Header, connection []string) {
	for name := range namedTokens(connection) {
		h.Del(name)
	}
}

// namedTokens yields the comma-separated names of Connection header values, trimmed, empty ones left out.
func namedTokens(connection []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range connection {
			for v != "" {
				var name string
				name, v, _ = strings.Cut(v, ",")
				if name = textproto.TrimString(name); name != "" && !yield(name) {
					return
				}
			}
		}
	}
}

// hiddenByDefault are response headers nginx does not pass from the upstream unless proxy_pass_header names
// them: sluice sets its own Date and Server, and X-Accel-* are instructions to the proxy.
var hiddenByDefault = []string{"Date", "Server", "X-Pad", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"}

// namedIn reports whether a Connection header's comma-separated tokens name the header name.
func namedIn(connection []string, name string) bool {
	for tok := range namedTokens(connection) {
		if strings.EqualFold(tok, name) {
			return true
		}
	}
	return false
}

// AccelKept are the upstream's fields an X-Accel-Redirect response passes on to the response the redirect
// ends in (nginx's upstream headers marked "redirect").
var AccelKept = []string{"Content-Type", "Set-Cookie", "Content-Disposition", "Cache-Control", "Expires"}

// AccelLimitRate applies an upstream's X-Accel-Limit-Rate to the response's $limit_rate, as nginx: a number
// of bytes per second (0: none); anything else is ignored.
func AccelLimitRate(v *vars.Request, value string) {
	if n, err := strconv.ParseUint(value, 10, 62); err == nil {
		v.LimitRate, v.LimitRateSet = int64(n), true
	}
}

// isHop reports whether a header name is one of hopHeaders, in any case (names parsed from the wire are
// canonical, which the switch answers without folding; a name of another length is not one either).
func isHop(k string) bool {
	if !lengthIn(hopLengths, k) {
		return false
	}
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return httpsyntax.ContainsFold(hopHeaders, k)
}

// hiddenDefault reports whether a header name is one of hiddenByDefault, in any case.
func hiddenDefault(k string) bool {
	if !lengthIn(hiddenLengths, k) {
		return false
	}
	switch k {
	case "Date", "Server", "X-Pad", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset":
		return true
	}
	return httpsyntax.ContainsFold(hiddenByDefault, k)
}

// The lengths of the names in hopHeaders and hiddenByDefault, as bit sets: most names differ in length from
// all of them, and are answered without comparing (or folding) a byte.
var hopLengths, hiddenLengths = lengths(hopHeaders), lengths(hiddenByDefault)

func lengths(names []string) (set uint64) {
	for _, n := range names {
		set |= 1 << len(n)
	}
	return set
}

// lengthIn reports whether k's length is in the set.
func lengthIn(set uint64, k string) bool { return len(k) < 64 && set&(1<<len(k)) != 0 }
