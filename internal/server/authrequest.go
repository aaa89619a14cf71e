package server

import (
	"net/http"
	"strconv"

	"github.com/sluice-proxy/sluice/internal/route"
)

// authRequest runs auth_request: a subrequest for uri through this server, as nginx's: a GET with the
// request's headers but no body, from the server rewrite phase on, with no access phase of its own, `internal`
// locations allowed, its response body dropped. auth_request_set's variables are set from it whatever it
// answered. It returns the status the request gets: 0 to go on (the subrequest answered 2xx), 401 (with the
// subrequest's WWW-Authenticate set on the response) or 403, or 500 for any other answer.
func (rq *request) authRequest(uri string) int {
	sr := rq.r.Clone(rq.r.Context())
	sr.Method, sr.Body, sr.ContentLength, sr.TransferEncoding = http.MethodGet, http.NoBody, 0, nil
	for _, k := range [...]string{"Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Connection"} {
		delete(sr.Header, k) // no body, and never a tunnel: an upgrade request is authorised, not upgraded twice
	}
	cw := &captureWriter{header: http.Header{}}

	sub := rq.s.getRequest()
	sub.s, sub.snap, sub.r, sub.ci, sub.log = rq.s, rq.snap, sr, rq.ci, rq.log
	rq.s.initVars(sub.v, rq.r, rq.ci) // $request_method, $request_uri and $http_* are the main request's, as nginx's
	sub.v.RemoteAddr, sub.v.RemoteUser, sub.v.ServerName = rq.v.RemoteAddr, rq.v.RemoteUser, rq.v.ServerName
	sub.v.NoUpstreamTimes = rq.v.NoUpstreamTimes
	sub.w.ResponseWriter, sub.w.rq, sub.w.rc = cw, sub, *http.NewResponseController(cw)
	sub.subrequest, sub.internal, sub.limited = true, true, true
	sub.srv, sub.conf = rq.srv, rq.srv.Loc

	status := http.StatusInternalServerError
	if norm, err := route.Normalize(uri); err != nil {
		rq.log.Error("auth request: invalid URI "+strconv.Quote(uri), rq.v.LogAttrs()...)
	} else {
		sub.v.URI = norm
		if sub.exec(sub.srv.Ops) != flowDone {
			sub.findAndServe()
		}
		sub.w.endGzip(false)
		status = sub.w.status
		if status == 0 && !sub.w.hijacked {
			status = http.StatusOK // a handler that wrote nothing: net/http's 200
		}
		for _, as := range rq.conf.AuthRequestSet.V {
			rq.v.Set(as.Var, as.Val.Eval(sub.v))
		}
	}
	for _, release := range sub.releases {
		release()
	}
	reusable := sub.detached == nil && !sub.w.hijacked
	if reusable {
		rq.s.putRequest(sub)
	}

	switch {
	case status == http.StatusUnauthorized:
		if wa := cw.header["Www-Authenticate"]; len(wa) > 0 {
			rq.w.Header()["Www-Authenticate"] = wa
		}
		return status
	case status == http.StatusForbidden:
		return status
	case status >= 200 && status < 300:
		return 0
	}
	rq.log.Error("auth request unexpected status: "+strconv.Itoa(status), rq.v.LogAttrs()...)
	return http.StatusInternalServerError
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
