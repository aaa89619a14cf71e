package config

import (
	"strings"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// varDirectives are the blocks that define a variable from the request, besides map (upstream.go): nginx's
// ngx_http_geo_module and ngx_http_split_clients_module.
var varDirectives = []Spec{
	{Name: "geo", Module: "http_geo", Ctx: CtxHTTP, Args: "1-2", Block: true,
		Doc:   "geo [$address] $variable { ... }: a variable whose value depends on the client address ($remote_addr, after realip) or on the address another variable holds. Lines: `default V;`, `NETWORK V;` (an IPv4 or IPv6 address or CIDR; the longest match wins), `delete NETWORK;`, `include FILE;`, `proxy CIDR;` with `proxy_recursive;` (a source address in a proxy network is replaced from X-Forwarded-For, as realip does), and `ranges;` first, then `A-B V;` IPv4 ranges. A source value that is not an address looks up 255.255.255.255, as in nginx. Values are literal text.",
		Diff:  "the networks are compiled into sorted segments at load time (one binary search per request); nginx's precompiled `.bin` includes are not read (the text file is).",
		Apply: (*parser).geoBlock},
}

// geoBlock builds a geo block's variable.
func (p *parser) geoBlock(d *Directive) error {
	var src *vars.Template
	if len(d.Args) == 2 {
		t, err := p.compile(d, d.Args[0])
		if err != nil {
			return err
		}
		src = t
	}
	target, ok := strings.CutPrefix(d.Args[len(d.Args)-1], "$")
	if !ok {
		return d.errorf("invalid variable name %q", d.Args[len(d.Args)-1])
	}
	body, err := p.entries(d)
	if err != nil {
		return err
	}
	b := vars.NewGeo(src)
	for _, e := range body {
		w, err := b.Line(e.Name, e.Args)
		if err != nil {
			return e.errorf("%v", err)
		}
		if w != "" {
			p.cfg.Warnings = append(p.cfg.Warnings, e.errorf("%s", w))
		}
	}
	if _, err := p.tab.DeclareMap(target, b.Geo()); err != nil {
		return d.errorf("%v", err)
	}
	return nil
}
