package config

import (
	"github.com/sluice-proxy/sluice/internal/vars"
)

// varDirectives are the blocks that define a variable from the request, besides map (upstream.go): nginx's
// ngx_http_geo_module and ngx_http_split_clients_module.
var varDirectives = []Spec{
	{Name: "geo", Module: "http_geo", Ctx: CtxHTTP, Args: "1-2", Block: true,
		Doc:   "geo [$address] $variable { ... }: a variable whose value depends on the client address ($remote_addr, after realip) or on the address another variable holds. Lines: `default V;`, `NETWORK V;` (an IPv4 or IPv6 address or CIDR; the longest match wins), `delete NETWORK;`, `include FILE;`, `proxy CIDR;` with `proxy_recursive;` (a source address in a proxy network is replaced from X-Forwarded-For, as realip does), and `ranges;` first, then `A-B V;` IPv4 ranges. A source value that is not an address looks up 255.255.255.255, as in nginx. Values are literal text.",
		Diff:  "the networks are compiled into sorted segments at load time (one binary search per request); nginx's precompiled `.bin` includes are not read (the text file is).",
		Apply: (*parser).geoBlock},
	{Name: "split_clients", Module: "http_split_clients", Ctx: CtxHTTP, Args: "2", Block: true,
		Doc:   "split_clients STRING $variable { 0.5% a; 2% b; * c; }: for A/B tests, the value of the part that nginx's MurmurHash2 (32-bit, seed 0) of the evaluated STRING falls in; percentages have at most two decimals and add up to at most 100%, `*` takes the rest; past every part the value is empty. Values are literal text.",
		Diff:  "a line with two values (`10% a b;`, where nginx takes the first) is refused.",
		Apply: (*parser).splitClients},
}

// splitClients builds a split_clients block's variable.
func (p *parser) splitClients(d *Directive) error {
	key, target, body, err := p.varBlock(d)
	if err != nil {
		return err
	}
	s := vars.NewSplitClients(key)
	for _, e := range body {
		if len(e.Args) == 0 {
			return e.errorf("invalid number of parameters in split_clients")
		}
		if err := s.Add(e.Name, e.Args[0]); err != nil { // nginx ignores further arguments
			return e.errorf("%v", err)
		}
	}
	return p.declareBlock(d, target, s)
}

// geoBlock builds a geo block's variable.
func (p *parser) geoBlock(d *Directive) error {
	src, target, body, err := p.varBlock(d)
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
	return p.declareBlock(d, target, b.Geo())
}
