package config

import "net/textproto"

// headerDirectives are nginx's ngx_http_headers_module directives.
var headerDirectives = []Spec{
	{Name: "add_header", Module: "http_headers", Ctx: ctxHSL | CtxIf, Args: "2-3", Doc: "Adds a response header for 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 responses, or any status with `always`. A level with any add_header replaces the inherited list.",
		Apply: func(p *parser, d *Directive) error {
			h := AddHeader{Name: d.Args[0], Key: textproto.CanonicalMIMEHeaderKey(d.Args[0])}
			if len(d.Args) == 3 {
				if d.Args[2] != "always" {
					return d.errorf("invalid parameter %q of the \"add_header\" directive", d.Args[2])
				}
				h.Always = true
			}
			t, err := p.compile(d, d.Args[1])
			if err != nil {
				return err
			}
			h.Value = t
			add(&p.conf.AddHeaders, h)
			return nil
		}},
}
