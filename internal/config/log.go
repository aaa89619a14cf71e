package config

import (
	"strings"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// CombinedFormat is nginx's predefined "combined" log format.
const CombinedFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

// logDirectives are nginx's log module directives and error_log.
var logDirectives = []Spec{
	{Name: "error_log", Module: "core", Ctx: CtxMain | ctxHSL | ctxStream, Args: "1-2", Default: "logs/error.log error", Doc: "Error log file (or stderr) and minimum level: debug info notice warn error crit alert emerg.",
		Diff: "only the main-level error_log is used; error_log in http/server/location is accepted and ignored for now.",
		Apply: func(p *parser, d *Directive) error {
			t := LogTarget{Path: p.path(d.Args[0]), Level: "error"}
			if len(d.Args) == 2 {
				switch d.Args[1] {
				case "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg":
					t.Level = d.Args[1]
				default:
					return d.errorf("invalid log level %q", d.Args[1])
				}
			}
			if p.strm != nil {
				return nil // accepted in stream, as in http: the main-level error log is used
			}
			if p.http == nil || p.conf == nil {
				p.cfg.ErrorLogs = append(p.cfg.ErrorLogs, t)
				return nil
			}
			add(&p.conf.ErrorLogs, t)
			return nil
		}},
	{Name: "access_log", Module: "http_log", Ctx: ctxHSL | CtxIf | ctxStream, Args: "1+", Default: "logs/access.log combined", Doc: "Access log path and format name (buffer=size, flush=time); `off` disables logging at this level.",
		Diff: "gzip= and if= are not supported yet.",
		Apply: func(p *parser, d *Directive) error {
			if d.Args[0] == "off" {
				p.conf.AccessLogs.set([]LogTarget{{Path: "off"}})
				return nil
			}
			t := LogTarget{Path: p.path(d.Args[0]), Format: "combined"}
			for i, a := range d.Args[1:] {
				k, v, hasEq := strings.Cut(a, "=")
				switch {
				case i == 0 && !hasEq:
					t.Format = a
				case k == "buffer":
					n, err := p.size(d, v)
					if err != nil {
						return err
					}
					t.Buffer = int(n)
				case k == "flush":
					dur, err := p.duration(d, v)
					if err != nil {
						return err
					}
					t.Flush = dur
				default:
					return d.errorf("invalid parameter %q of the \"access_log\" directive", a)
				}
			}
			if p.strm != nil && len(d.Args) < 2 {
				return d.errorf("log format is not specified") // stream has no predefined format (nginx)
			}
			add(&p.conf.AccessLogs, t)
			return nil
		}},
	{Name: "log_format", Module: "http_log", Ctx: CtxHTTP | CtxStream, Args: "2+", Doc: "Defines a named access log format; escape=default|json|none.",
		Apply: func(p *parser, d *Directive) error {
			name := d.Args[0]
			formats := p.logFormats()
			if _, dup := formats[name]; dup || name == "combined" {
				return d.errorf("duplicate \"log_format\" name %q", name)
			}
			lf := &LogFormat{Name: name}
			parts := d.Args[1:]
			if e, ok := strings.CutPrefix(parts[0], "escape="); ok {
				switch e {
				case "default":
					lf.Escape = vars.EscapeDefault
				case "json":
					lf.Escape = vars.EscapeJSON
				case "none":
					lf.Escape = vars.EscapeNone
				default:
					return d.errorf("unknown log format escaping %q", e)
				}
				parts = parts[1:]
			}
			t, err := p.compile(d, strings.Join(parts, ""))
			if err != nil {
				return err
			}
			lf.Template = t
			formats[name] = lf
			return nil
		}},
}
