package server

import (
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/observe"
	"github.com/sluice-proxy/sluice/internal/route"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// flow is where the rewrite statements leave a request.
type flow uint8

const (
	flowNext  flow = iota // on to the statements after them
	flowDone              // a response was produced (return, a redirect)
	flowLast              // rewrite … last: stop, and search the locations with the new URI
	flowBreak             // break, rewrite … break: stop, and stay in this location
)

// exec runs rewrite-module statements in order (nginx's rewrite phase). A rewrite without a flag changes the
// URI and goes on (rq.rewritten records it: the location phase then searches the locations again, as nginx
// does once the phase ends); break and last stop every statement left, including those around an `if`.
func (rq *request) exec(ops []config.Op) flow {
	for i := range ops {
		op := &ops[i]
		switch op.Kind {
		case config.OpSet:
			rq.v.Set(op.Var, op.Val.Eval(rq.v))
		case config.OpBreak:
			return flowBreak
		case config.OpReturn:
			rq.doReturn(op)
			return flowDone
		case config.OpRewrite:
			m := op.Re.FindStringSubmatch(rq.v.URI)
			logged := rq.conf.RewriteLog.V
			if logged {
				rq.logMatch(op.Re, rq.v.URI, m != nil)
			}
			if m == nil {
				continue
			}
			rq.v.Captures, rq.v.CaptureNames = m, op.Re.SubexpNames()
			// As nginx: when the request's path came %-escaped (or with a "+"), captures are escaped again where
			// they land in arguments or in a redirect's path; an internal path takes them decoded.
			quoted := rq.quotedURI()
			var path string
			if quoted && op.Code != 0 {
				path = rq.evalEscaped(op.Val, m, redirectPathEscape)
			} else {
				path = op.Val.Eval(rq.v)
			}
			args, hasArgs := "", op.Args != nil
			if hasArgs {
				if quoted {
					args = rq.evalEscaped(op.Args, m, argsEscape)
				} else {
					args = op.Args.Eval(rq.v)
				}
			}
			keepArgs := !op.DropArgs
			if keepArgs && rq.v.Args != "" {
				if hasArgs && args != "" {
					args += "&" + rq.v.Args
				} else {
					args, hasArgs = rq.v.Args, true
				}
			}
			if op.Code != 0 {
				if hasArgs && args != "" {
					path += "?" + args
				}
				if logged {
					rq.notice(`rewritten redirect: "` + path + `"`)
				}
				rq.redirect(op.Code, path)
				return flowDone
			}
			if hasArgs || !keepArgs {
				rq.v.Args = args
			}
			if logged {
				rq.notice(`rewritten data: "` + path + `", args: "` + rq.v.Args + `"`)
			}
			rq.v.URI, rq.uriChanged = path, true
			switch op.Flag {
			case "last":
				return flowLast
			case "break":
				rq.rewritten, rq.rewriteBreak = false, true // nginx: the URI stays in this location, sent whole
				return flowBreak
			}
			rq.rewritten = true
		case config.OpIf:
			if !rq.test(op.Cond) {
				continue
			}
			if ic := op.IfConf; ic != nil && (ic.AddHeaders.Set || ic.CharsetName.Set || ic.SourceCharset.Set || ic.OverrideCharset.Set) {
				rq.conf = withIfHeaders(rq.conf, ic)
			}
			if f := rq.exec(op.Then); f != flowNext {
				return f
			}
		}
	}
	return flowNext
}

// quotedURI reports whether the request's path holds a %-escape or a "+" (nginx's quoted_uri, plus_in_uri).
func (rq *request) quotedURI() bool {
	p, _, _ := strings.Cut(rq.r.RequestURI, "?")
	return strings.ContainsAny(p, "%+")
}

// evalEscaped evaluates t with the captures m escaped by esc (m stays the request's captures).
func (rq *request) evalEscaped(t *vars.Template, m []string, esc *[256]bool) string {
	e := make([]string, len(m))
	for i, c := range m {
		e[i] = route.Escape(c, esc)
	}
	rq.v.Captures = e
	out := t.Eval(rq.v)
	rq.v.Captures = m
	return out
}

// The bytes nginx 1.22 escapes in captures (observed from it): in arguments, and in a redirect's path.
var argsEscape, redirectPathEscape = route.EscapeSet(`"#%&+;?<>\^` + "`{|}"), route.EscapeSet(`"#%`)

// withIfHeaders returns a copy of conf carrying the add_header and charset settings of a matched `if` body.
func withIfHeaders(conf, ifc *config.LocConf) *config.LocConf {
	c := *conf
	c.AddHeaders = ifc.AddHeaders
	c.Charset = ifc.Charset
	return &c
}

// doReturn performs `return`.
func (rq *request) doReturn(op *config.Op) {
	code := op.Code
	text := ""
	if op.Val != nil {
		if code != 444 && rq.v.Status == 0 {
			rq.v.Status = code // nginx's $status in the text is the code being returned
		}
		text = op.Val.Eval(rq.v)
	}
	switch {
	case code == 444:
		rq.special(444)
	case code >= 301 && code <= 308 && code != 304 && code != 305 && code != 306:
		rq.redirect(code, text)
	case op.Val == nil:
		rq.special(code)
	default:
		h := rq.w.Header()
		vals := []string{rq.contentType(), itoa(len(text))} // one allocation for both headers' values
		if _, preset := h["Content-Type"]; !preset {
			// (an X-Accel-Redirect to here keeps the upstream's type, as nginx's return does)
			h["Content-Type"] = vals[0:1:1]
		}
		h["Content-Length"] = vals[1:2:2]
		rq.w.WriteHeader(code)
		if rq.r.Method != http.MethodHead {
			rq.w.WriteString(text)
		}
	}
}

// logMatch is rewrite_log's line for a regex tried on val, at notice as nginx writes it.
func (rq *request) logMatch(re *regexp.Regexp, val string, matched bool) {
	verb := `" matches "`
	if !matched {
		verb = `" does not match "`
	}
	rq.notice(`"` + strings.TrimPrefix(re.String(), "(?i)") + verb + val + `"`)
}

// notice writes msg to the error log at nginx's notice level.
func (rq *request) notice(msg string) {
	rq.log.Log(rq.r.Context(), observe.LevelNotice, msg, rq.v.LogAttrs()...)
}

// test evaluates an `if` condition.
func (rq *request) test(c *config.Cond) bool {
	val := c.Var.Eval(rq.v)
	switch c.Op {
	case "":
		return val != "" && val != "0"
	case "=":
		return val == c.Value
	case "!=":
		return val != c.Value
	case "~", "~*":
		m := c.Re.FindStringSubmatch(val)
		if rq.conf.RewriteLog.V {
			rq.logMatch(c.Re, val, m != nil)
		}
		if m != nil {
			rq.v.Captures, rq.v.CaptureNames = m, c.Re.SubexpNames()
		}
		return m != nil
	case "!~", "!~*":
		ok := c.Re.MatchString(val)
		if rq.conf.RewriteLog.V {
			rq.logMatch(c.Re, val, ok)
		}
		return !ok
	}
	neg := strings.HasPrefix(c.Op, "!")
	fi, err := os.Stat(val)
	var r bool
	switch strings.TrimPrefix(c.Op, "!") {
	case "-f":
		r = err == nil && fi.Mode().IsRegular()
	case "-d":
		r = err == nil && fi.IsDir()
	case "-e":
		r = err == nil
	case "-x":
		r = err == nil && fi.Mode()&0o111 != 0
	}
	return r != neg
}

// contentType is the type of a response sluice generates for the current URI: by its extension from the types
// map, else default_type (nginx's ngx_http_set_content_type).
func (rq *request) contentType() string {
	uri := rq.v.URI
	if i := strings.LastIndexByte(uri, '.'); i >= 0 && !strings.Contains(uri[i:], "/") {
		if t, ok := rq.conf.MimeTypes()[strings.ToLower(uri[i+1:])]; ok {
			return t
		}
	}
	return rq.conf.DefaultType.Get("text/plain")
}
