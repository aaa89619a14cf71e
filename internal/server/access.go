package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/access"
	"github.com/sluice-proxy/sluice/internal/proxy"
	"github.com/sluice-proxy/sluice/internal/tunnel"
)

// realIP replaces the client address with the one a trusted proxy reports (set_real_ip_from, real_ip_header);
// the peer's own address stays in $realip_remote_addr. Untrusted peers never change $remote_addr.
func (rq *request) realIP() {
	ri := rq.srv.Srv.RealIP
	if ri == nil {
		return
	}
	peer := rq.v.RemoteAddr
	if client := ri.Client(peer, rq.r.Header, rq.ci.proxied); client != peer {
		rq.v.RealipRemoteAddr, rq.v.RemoteAddr = peer, client
	}
}

// access is the access phase, in nginx's order: limits (limit_req, limit_conn), allow/deny, then sluice's CORS
// preflight answer and WebSocket origin check, then basic authentication. It reports whether the request goes
// on to the content handler; when it does not, the request has been answered.
func (rq *request) access() bool {
	if rq.subrequest {
		return true // nginx runs no access phase for subrequests
	}
	c := rq.conf
	if rq.cors == nil {
		rq.cors = c.CORS // the policy of the location that admitted the request also covers its error pages
	}
	if !rq.limited {
		rq.limited = true // limits count a request once, not again for an error page
		if !rq.limitReq() || !rq.limitConn() {
			return false
		}
	}
	allowed, matched := access.Check(c.Access.V, rq.v.RemoteAddr.Addr())
	satisfyAny := c.SatisfyAny.V
	authRequest := c.AuthRequest.V
	if matched && !allowed && (!satisfyAny || c.AuthBasic.V == nil && authRequest == "") {
		rq.log.Error("access forbidden by rule", rq.v.LogAttrs()...)
		rq.special(http.StatusForbidden)
		return false
	}
	if c.CORS != nil && access.IsPreflight(rq.r) {
		// browsers send preflights without credentials: they are answered before authentication
		rq.preflight = true
		rq.w.Header().Set("Content-Length", "0")
		rq.w.WriteHeader(http.StatusNoContent)
		return false
	}
	if c.WSOrigins != nil {
		_, up := tunnel.RequestedProtocol(rq.r.Header, rq.r.ProtoMajor, rq.r.ProtoMinor)
		if _, xc := proxy.ExtendedConnect(rq.r); up || xc { // HTTP/1.1 upgrade, or WebSocket over HTTP/2 (RFC 8441)
			origin := rq.r.Header.Get("Origin")
			if origin != "" && !access.SameOrigin(origin, rq.r) && !c.WSOrigins.Match(origin) {
				rq.log.Error("upgrade refused: origin "+strconv.Quote(origin)+" is not in websocket_origins", rq.v.LogAttrs()...)
				rq.special(http.StatusForbidden)
				return false
			}
		}
	}
	if satisfyAny && matched && allowed {
		return true
	}
	// nginx's access handlers in their order (allow/deny, auth_basic, auth_request): with satisfy all the first
	// refusal is the answer; with satisfy any the first that grants lets the request on, and if none does the
	// refusal is 401 when any asked for credentials, else 403
	refused := 0
	if matched && !allowed {
		refused = http.StatusForbidden
	}
	if c.AuthBasic.V != nil {
		if rq.authBasic() {
			if satisfyAny {
				return true
			}
		} else {
			if !satisfyAny {
				rq.refuse(http.StatusUnauthorized)
				return false
			}
			refused = http.StatusUnauthorized
		}
	}
	if authRequest != "" {
		switch status := rq.authRequest(authRequest); status {
		case 0:
			if satisfyAny {
				return true
			}
		case http.StatusUnauthorized, http.StatusForbidden:
			if !satisfyAny {
				rq.refuse(status)
				return false
			}
			if refused != http.StatusUnauthorized {
				refused = status
			}
		case 499:
			return false // the client left: no answer
		default:
			rq.special(status)
			return false
		}
	}
	if refused != 0 {
		rq.refuse(refused)
		return false
	}
	return true
}

// refuse answers the access phase's refusal; a 401 waits auth_delay first, as nginx's, so a password
// guesser learns nothing from the time a check took (a client that leaves meanwhile gets nothing).
func (rq *request) refuse(status int) {
	if d := rq.conf.AuthDelay.V; d > 0 && status == http.StatusUnauthorized {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-rq.r.Context().Done():
			rq.v.Status = 499
			return
		}
	}
	rq.special(status)
}

// authBasic checks HTTP basic credentials against auth_basic_user_file; a missing or wrong one sets
// WWW-Authenticate with the realm for the 401 the caller answers.
func (rq *request) authBasic() bool {
	c := rq.conf
	user, pass, ok := rq.r.BasicAuth()
	if ok && c.AuthUserFile.V.Match(user, pass) {
		rq.v.RemoteUser = user
		return true
	}
	if ok {
		rq.log.Error("user "+strconv.Quote(user)+": password mismatch or unknown user", rq.v.LogAttrs()...)
	} else if rq.r.Header.Get("Authorization") != "" {
		rq.log.Error("client sent invalid basic authorization", rq.v.LogAttrs()...)
	}
	realm := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(c.AuthBasic.V.Eval(rq.v))
	rq.w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	return false
}

// limitReq applies limit_req: a request over a zone's burst is refused, one within it may wait its turn.
func (rq *request) limitReq() bool {
	var wait time.Duration
	dry := rq.conf.LimitReqDryRun.V
	for _, lr := range rq.conf.LimitReqs.V {
		z := rq.snap.zones.Req[lr.Zone]
		key := rq.snap.zoneKeys[lr.Zone].Eval(rq.v)
		if z == nil || key == "" {
			continue
		}
		if rq.v.LimitReqStatus == "" {
			rq.v.LimitReqStatus = "PASSED"
		}
		verdict, d, excess := z.Take(key, time.Now(), lr.Burst, lr.Delay)
		switch verdict {
		case access.Reject, access.ZoneFull:
			msg := "limiting requests, " + dryRun(dry) + "excess: " + strconv.FormatFloat(excess, 'f', 3, 64) + " by zone " + strconv.Quote(lr.Zone)
			if verdict == access.ZoneFull {
				msg = "could not allocate new state in limit_req zone " + strconv.Quote(lr.Zone)
			}
			rq.log.Log(rq.r.Context(), rq.conf.LimitReqLog.Get(slog.LevelError), msg, rq.v.LogAttrs()...)
			if dry {
				rq.v.LimitReqStatus = "REJECTED_DRY_RUN"
				continue
			}
			rq.v.LimitReqStatus = "REJECTED"
			rq.special(rq.conf.LimitReqStatus.Get(http.StatusServiceUnavailable))
			return false
		case access.Delay:
			rq.log.Log(rq.r.Context(), rq.conf.LimitReqLog.Get(slog.LevelError)-4, "delaying request, "+dryRun(dry)+"excess: "+
				strconv.FormatFloat(excess, 'f', 3, 64)+" by zone "+strconv.Quote(lr.Zone), rq.v.LogAttrs()...)
			if dry {
				rq.v.LimitReqStatus = "DELAYED_DRY_RUN"
				continue
			}
			rq.v.LimitReqStatus = "DELAYED"
			wait = max(wait, d)
		}
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-rq.r.Context().Done():
			return false
		}
	}
	return true
}

// dryRun is the part of a limit's log line that says it only counted (limit_req_dry_run, limit_conn_dry_run).
func dryRun(dry bool) string {
	if dry {
		return "dry run, "
	}
	return ""
}

// dryRunComma is limit_conn's wording of a dry run: "limiting connections, dry run, by zone", and without one
// "limiting connections by zone" (nginx).
func dryRunComma(dry bool) string {
	if dry {
		return ", dry run,"
	}
	return ""
}

// limitConn applies limit_conn: the request (and a tunnel it opens) counts in each zone until it is logged.
func (rq *request) limitConn() bool {
	dry := rq.conf.LimitConnDryRun.V
	for _, lc := range rq.conf.LimitConns.V {
		z := rq.snap.zones.Conn[lc.Zone]
		key := rq.snap.zoneKeys[lc.Zone].Eval(rq.v)
		if z == nil || key == "" {
			continue
		}
		if rq.v.LimitConnStatus == "" {
			rq.v.LimitConnStatus = "PASSED"
		}
		release, ok := z.Acquire(key, lc.N)
		if !ok {
			rq.log.Log(rq.r.Context(), rq.conf.LimitConnLog.Get(slog.LevelError), "limiting connections"+dryRunComma(dry)+" by zone "+strconv.Quote(lc.Zone), rq.v.LogAttrs()...)
			if dry {
				rq.v.LimitConnStatus = "REJECTED_DRY_RUN"
				continue
			}
			rq.v.LimitConnStatus = "REJECTED"
			rq.special(rq.conf.LimitConnStatus.Get(http.StatusServiceUnavailable))
			return false
		}
		rq.releases = append(rq.releases, release)
	}
	return true
}

// corsHeaders applies the CORS policy to a response about to be sent: preflight answers get the allow lists,
// every other response Vary: Origin and, for an allowed origin, Access-Control-Allow-Origin.
func (rq *request) corsHeaders(h http.Header) {
	p := rq.cors
	if p == nil && rq.conf != nil {
		p = rq.conf.CORS
	}
	if p == nil {
		return
	}
	if rq.preflight {
		p.Preflight(h, rq.r)
		return
	}
	p.Response(h, rq.r.Header.Get("Origin"))
}
