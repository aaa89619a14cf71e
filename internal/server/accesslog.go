package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/internal/vars"
)

func itoa(n int) string { return strconv.Itoa(n) }

// finish is the log phase: it records the response in the variables and writes the access log lines.
func (rq *request) finish() {
	rq.w.endFilters(false) // (a response that ended normally has closed its own)
	rq.w.finished.Store(true)
	for _, release := range rq.releases {
		release()
	}
	// HTTP/1: net/http flushes the rest of the response after the handler returns and clears the deadline
	// itself after that flush, so send_timeout (armed by the last write) still bounds the flush. Clearing it
	// here would let a client that stops reading hold that flush, and its goroutine, forever.
	if rq.w.deadline && !rq.w.hijacked && rq.r.ProtoMajor != 1 {
		rq.w.rc.SetWriteDeadline(time.Time{})
	}
	if rq.v.Status == 0 {
		rq.v.Status = rq.w.status
	}
	if rq.v.Status == 0 && !rq.w.hijacked {
		rq.v.Status = 200
	}
	if rq.v.BodyBytesSent == 0 {
		rq.v.BodyBytesSent = rq.w.bytes
	}
	rq.v.BytesSent = rq.bytesSent()
	if rq.w.ResponseWriter != nil {
		rq.v.ResponseHeader = rq.w.Header()
	}
	rq.record()
	rq.writeAccessLog()
}

// writeAccessLog writes the request's access log lines (those of its location, or of its server's level).
func (rq *request) writeAccessLog() {
	if rq.conf == nil {
		return
	}
	var bp *[]byte
	for _, t := range rq.conf.AccessLogs.V {
		if t.Path == "off" {
			continue
		}
		f := rq.snap.accessLogs[t.Path]
		if f == nil {
			continue
		}
		if bp == nil {
			bp = rq.s.lineBufs.Get().(*[]byte)
		}
		line := (*bp)[:0]
		if lf := rq.format(t.Format); lf != nil {
			line = lf.Template.AppendEscaped(line, rq.v, lf.Escape)
		}
		line = append(line, '\n')
		f.Write(line)
		*bp = line
	}
	if bp != nil {
		rq.s.lineBufs.Put(bp) // not deferred in the loop: a deferred call there is allocated per request
	}
}

// completer is the HTTP/1 writer's end of a response (h1's Complete): it finishes the response and reports the
// bytes written to the connection for it.
type completer interface{ Complete() int64 }

// bytesSent is $bytes_sent, every byte sent to the client for the response as nginx counts it. On HTTP/1 it
// is exact: the connection's writer completes the response (the log line comes after the response is out, as
// in nginx) and reports what it wrote, head and body framing included. A tunnel adds the bytes it relayed to
// the client to its 101 head's (the proxy counts both). HTTP/2 and HTTP/3 frame and compress the head in
// their libraries, which report nothing: the body's bytes plus headSize's estimate of the head, computed only
// when a template reads $bytes_sent (nginx counts the HPACK or QPACK block and the frame headers: the
// estimate is larger than nginx's figure for the head, by what compression saves).
func (rq *request) bytesSent() int64 {
	if rq.w.hijacked {
		if rq.v.BytesSent > 0 {
			return rq.v.BytesSent // the tunnel's: its 101 head and what it relayed to the client
		}
		return rq.v.BodyBytesSent
	}
	if c, ok := rq.w.ResponseWriter.(completer); ok {
		if !rq.served {
			return rq.v.BodyBytesSent // a panic: the connection closes with what went out
		}
		return c.Complete()
	}
	if rq.w.ResponseWriter != nil && rq.r.ProtoMajor >= 2 && rq.snap.bytesSent {
		rq.headBytes = headSize(rq.w.status, rq.w.Header())
	}
	return rq.headBytes + rq.v.BodyBytesSent
}

// headSize is the size of a response head written as HTTP/1.1 writes it ("HTTP/1.1 200 OK\r\n", a
// "Name: value\r\n" line per value, the empty line): an estimate of what a head costs on the wire where the
// protocol library reports nothing.
func headSize(status int, h http.Header) int64 {
	n := len("HTTP/1.1 200 \r\n\r\n") + len(httpsyntax.Reason(status))
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return int64(n)
}

// record counts the request in the server's metrics, labelled by server name and location (both bounded by the
// configuration).
func (rq *request) record() {
	d := time.Since(rq.v.Start)
	rq.s.done.requests.Add(1)
	rq.s.done.nanos.Add(uint64(d))
	sc := &rq.series
	if sc.m == nil || sc.snap != rq.snap || sc.srv != rq.srv || sc.loc != rq.loc {
		*sc = seriesCache{rq.snap, rq.srv, rq.loc, rq.snap.locationMetrics(rq.s.metrics, rq.srv, rq.loc)}
	}
	sc.m.Request(rq.v.Status, d, rq.v.RequestLength, rq.v.BodyBytesSent)
	rq.s.metrics.Upstream(rq.v.UpstreamAddr, rq.v.UpstreamStatus, &rq.peer)
}

// format returns the named log format; "combined" is predefined.
func (rq *request) format(name string) *config.LogFormat {
	if lf, ok := rq.snap.cfg.HTTP.LogFormats[name]; ok {
		return lf
	}
	return rq.snap.combined
}

// compileCombined compiles nginx's predefined combined format against a configuration's variable table.
func compileCombined(t *vars.Table) *config.LogFormat {
	tp, err := vars.Compile(config.CombinedFormat, t)
	if err != nil {
		panic("combined log format: " + err.Error())
	}
	return &config.LogFormat{Name: "combined", Escape: vars.EscapeDefault, Template: tp}
}

// detach drops the request's references to net/http's per-connection objects before a tunnel outlives the
// handler, keeping only what the access log line needs.
func (rq *request) detach() {
	rq.detached = nil
	if !rq.logsAccess() {
		// No access log line: keep only the request line and host for the error log's context, so an idle
		// tunnel does not hold the parsed headers, the request's contexts and the response headers.
		h := rq.v.HTTP
		rq.v.HTTP = &http.Request{Method: h.Method, RequestURI: h.RequestURI, Proto: h.Proto, Host: h.Host}
		rq.r = rq.v.HTTP
		rq.v.UpstreamHeader, rq.v.ResponseHeader = nil, nil
	} else {
		rq.v.ResponseHeader = rq.w.Header().Clone()
	}
	if rq.r.ProtoMajor >= 2 && rq.snap.bytesSent {
		rq.headBytes = headSize(rq.w.status, rq.w.Header()) // an HTTP/2 or HTTP/3 WebSocket's 200 (see bytesSent)
	}
	rq.w.ResponseWriter, rq.w.rc = nil, http.ResponseController{}
	// the proxy's view of the request (its ResponseWriter, whole *http.Request and closures) is done with once
	// the tunnel is established; kept, it would hold net/http's per-connection objects for the tunnel's life
	rq.proxy = proxy.Request{}
	rq.proxyState = nil
}

// logsAccess reports whether the request's location writes an access log line.
func (rq *request) logsAccess() bool {
	if rq.conf == nil {
		return false
	}
	for _, t := range rq.conf.AccessLogs.V {
		if t.Path != "off" && rq.snap.accessLogs[t.Path] != nil {
			return true
		}
	}
	return false
}
