package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/sluice-proxy/sluice/internal/route"
)

// newSubrequest prepares an internal request through rq's server, as nginx's subrequests: rq's headers,
// method and arguments, the body given (nil: none, and no Content-Length, Transfer-Encoding or Expect), never
// an upgrade; its own variables, with rq's client address and server; no access phase of its own, `internal`
// locations allowed, not logged. Its response goes to a captureWriter: the head is kept, the body dropped.
// It holds nothing of rq once made, so it may outlive it (mirror).
func (rq *request) newSubrequest(ctx context.Context, method string, body []byte) *request {
	sr := rq.r.Clone(ctx)
	sr.Method, sr.TransferEncoding = method, nil
	drop := []string{"Upgrade", "Connection"}
	if body == nil {
		sr.Body, sr.ContentLength = http.NoBody, 0
		drop = append(drop, "Content-Length", "Transfer-Encoding", "Expect")
	} else {
		sr.Body, sr.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		sr.Header.Set("Content-Length", strconv.Itoa(len(body)))
		drop = append(drop, "Transfer-Encoding", "Expect")
	}
	for _, k := range drop {
		delete(sr.Header, k)
	}
	cw := &captureWriter{header: http.Header{}}
	sub := rq.s.getRequest()
	sub.s, sub.snap, sub.r, sub.ci, sub.log = rq.s, rq.snap, sr, rq.ci, rq.log
	rq.s.initVars(sub.v, sr, rq.ci)
	sub.v.RemoteAddr, sub.v.RemoteUser, sub.v.ServerName = rq.v.RemoteAddr, rq.v.RemoteUser, rq.v.ServerName
	sub.v.NoUpstreamTimes = rq.v.NoUpstreamTimes
	sub.w.ResponseWriter, sub.w.rq, sub.w.rc = cw, sub, *http.NewResponseController(cw)
	sub.subrequest, sub.internal, sub.limited = true, true, true
	sub.srv, sub.conf = rq.srv, rq.srv.Loc
	return sub
}

// runSubrequest serves the subrequest for uri (with args) from the server rewrite phase on and returns the
// status it answered: the one written, else the one it ended with unwritten (499: the client left), else 0
// (nothing at all); ok false for a URI that does not normalise.
func (sub *request) runSubrequest(uri, args string) (status int, ok bool) {
	norm, err := route.Normalize(uri)
	if err != nil {
		return 0, false
	}
	sub.v.URI, sub.v.Args = norm, args
	if sub.exec(sub.srv.Ops) != flowDone {
		sub.findAndServe()
	}
	sub.w.endFilters(false)
	status = sub.w.status
	if status == 0 {
		status = sub.v.Status
	}
	return status, true
}

// endSubrequest releases what the subrequest holds and gives it back to the pool when nothing else can reach it.
func (sub *request) endSubrequest() {
	for _, release := range sub.releases {
		release()
	}
	if sub.detached == nil && !sub.w.hijacked {
		sub.s.putRequest(sub)
	}
}

// captureWriter is the response writer of a subrequest: it keeps the head and drops the body.
type captureWriter struct {
	header http.Header
	status int
}

func (w *captureWriter) Header() http.Header { return w.header }

func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}

// Flush has nothing to send (proxy streaming flushes through it).
func (w *captureWriter) Flush() {}
