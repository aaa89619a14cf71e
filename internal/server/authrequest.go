package server

import (
	"net/http"
	"strconv"
)

// authRequest runs auth_request: a subrequest for uri through this server, as nginx's: a GET with the
// request's headers but no body, from the server rewrite phase on, with no access phase of its own, `internal`
// locations allowed, its response body dropped. auth_request_set's variables are set from it whatever it
// answered. It returns the status the request gets: 0 to go on (the subrequest answered 2xx), 401 (with the
// subrequest's WWW-Authenticate set on the response) or 403, or 500 for any other answer.
func (rq *request) authRequest(uri string) int {
	sub := rq.newSubrequest(rq.r.Context(), http.MethodGet, nil)
	sub.v.HTTP = rq.r // $request_method is the request's, as nginx's (the subrequest ends before it does)
	cw := sub.w.ResponseWriter.(*captureWriter)
	status, ok := sub.runSubrequest(uri, "")
	if !ok {
		rq.log.Error("auth request: invalid URI "+strconv.Quote(uri), rq.v.LogAttrs()...)
		status = http.StatusInternalServerError
	} else {
		for _, as := range rq.conf.AuthRequestSet.V {
			rq.v.Set(as.Var, as.Val.Eval(sub.v))
		}
	}
	wa := cw.header["Www-Authenticate"]
	sub.endSubrequest()
	if rq.r.Context().Err() != nil {
		// the client left (or half-closed) while it was authorised: nothing is answered, as nginx finalizes
		// such a request with 499; an unfinished authorisation never grants access
		rq.v.Status = 499
		return 499
	}

	switch {
	case status == http.StatusUnauthorized:
		if len(wa) > 0 {
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
