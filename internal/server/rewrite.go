package server

import (
	"net/http"
	"os"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
)

// exec runs rewrite-module statements in order (nginx's rewrite phase): done means a response was produced,
// again that `rewrite … last` changed the URI and the location must be searched anew.
func (rq *request) exec(ops []config.Op) (done, again bool) {
	for i := range ops {
		op := &ops[i]
		switch op.Kind {
		case config.OpSet:
			rq.v.Set(op.Var, op.Val.Eval(rq.v))
		case config.OpBreak:
			return false, false
		case config.OpReturn:
			rq.doReturn(op)
			return true, false
		case config.OpRewrite:
			m := op.Re.FindStringSubmatch(rq.v.URI)
			if m == nil {
				continue
			}
			rq.v.Captures, rq.v.CaptureNames = m, op.Re.SubexpNames()
			target := op.Val.Eval(rq.v)
			if op.Code != 0 {
				if !strings.HasSuffix(target, "?") && rq.v.Args != "" && !strings.Contains(target, "?") {
					target += "?" + rq.v.Args
				}
				rq.redirect(op.Code, strings.TrimSuffix(target, "?"))
				return true, false
			}
			path, args, hasArgs := strings.Cut(target, "?")
			if hasArgs {
				if args != "" && rq.v.Args != "" {
					args += "&" + rq.v.Args
				} else if args == "" {
					args = ""
				}
				rq.v.Args = args
			}
			rq.v.URI, rq.uriChanged = path, true
			switch op.Flag {
			case "last":
				return false, true
			case "break":
				return false, false
			}
		case config.OpIf:
			if !rq.test(op.Cond) {
				continue
			}
			if op.IfConf != nil && op.IfConf.AddHeaders.Set {
				rq.conf = withAddHeaders(rq.conf, op.IfConf)
			}
			if done, again := rq.exec(op.Then); done || again {
				return done, again
			}
		}
	}
	return false, false
}

// withAddHeaders returns a copy of conf carrying the add_header of a matched `if` body.
func withAddHeaders(conf, ifc *config.LocConf) *config.LocConf {
	c := *conf
	c.AddHeaders = ifc.AddHeaders
	return &c
}

// doReturn performs `return`.
func (rq *request) doReturn(op *config.Op) {
	code := op.Code
	text := ""
	if op.Val != nil {
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
		h["Content-Type"], h["Content-Length"] = vals[0:1:1], vals[1:2:2]
		rq.w.WriteHeader(code)
		if rq.r.Method != http.MethodHead {
			rq.w.WriteString(text)
		}
	}
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
		if m != nil {
			rq.v.Captures, rq.v.CaptureNames = m, c.Re.SubexpNames()
		}
		return m != nil
	case "!~", "!~*":
		return !c.Re.MatchString(val)
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
