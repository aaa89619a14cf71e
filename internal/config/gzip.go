package config

import (
	"regexp"
	"strconv"

	"github.com/sluice-proxy/sluice/internal/compress"
)

// gzipDirectives are nginx's gzip module: responses compressed on the fly (internal/compress).
var gzipDirectives = []Spec{
	{Name: "gzip", Module: "http_gzip", Ctx: ctxHSL | CtxIf, Args: "1", Default: "off", Doc: "Compresses responses with gzip on the fly: 200, 403 and 404 responses of a gzip_types type, at least gzip_min_length long, without a Content-Encoding, to clients whose Accept-Encoding takes gzip. Static files, proxied and FastCGI responses alike; the compressed response has no Content-Length, no Accept-Ranges and a weak ETag. Not for HEAD.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.Gzip) }},
	{Name: "gzip_types", Module: "http_gzip", Ctx: ctxHSL, Args: "1+", Default: "text/html", Doc: "MIME types compressed besides text/html (always); \"*\" for any.",
		Apply: func(p *parser, d *Directive) error { p.conf.GzipTypes.set(d.Args); return nil }},
	{Name: "gzip_comp_level", Module: "http_gzip", Ctx: ctxHSL, Args: "1", Default: "1", Doc: "Compression level, 1 (fastest) to 9 (smallest).",
		Apply: func(p *parser, d *Directive) error {
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n < 1 || n > 9 {
				return d.errorf("invalid value %q in \"gzip_comp_level\" directive, it must be between 1 and 9", d.Args[0])
			}
			p.conf.GzipLevel.set(n)
			return nil
		}},
	{Name: "gzip_min_length", Module: "http_gzip", Ctx: ctxHSL, Args: "1", Default: "20", Doc: "A response whose Content-Length is shorter is sent uncompressed (one of unknown length is compressed).",
		Apply: func(p *parser, d *Directive) error {
			n, err := p.size(d, d.Args[0])
			if err != nil {
				return err
			}
			p.conf.GzipMinLength.set(n)
			return nil
		}},
	{Name: "gzip_vary", Module: "http_gzip", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Adds \"Vary: Accept-Encoding\" to every response gzip could compress, compressed or not (caches then keep both forms).",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.GzipVary) }},
	{Name: "gzip_http_version", Module: "http_gzip", Ctx: ctxHSL, Args: "1", Default: "1.1", Doc: "The oldest HTTP version whose clients get compressed responses: 1.1, or 1.0 (a compressed response to HTTP/1.0 ends with the connection).",
		Apply: func(p *parser, d *Directive) error {
			switch d.Args[0] {
			case "1.0":
				p.conf.GzipHTTP10.set(true)
			case "1.1":
				p.conf.GzipHTTP10.set(false)
			default:
				return d.errorf("invalid value %q in \"gzip_http_version\" directive, it must be \"1.0\" or \"1.1\"", d.Args[0])
			}
			return nil
		}},
	{Name: "gzip_proxied", Module: "http_gzip", Ctx: ctxHSL, Args: "1+", Default: "off", Doc: "For requests that came through a proxy (a Via header): off, any, or the responses that may be compressed: expired, no-cache, no-store, private, no_last_modified, no_etag, auth.",
		Apply: func(p *parser, d *Directive) error {
			v, bad := compress.ParseProxied(d.Args)
			if bad != "" {
				return d.errorf("invalid value %q in \"gzip_proxied\" directive", bad)
			}
			p.conf.GzipProxied.set(v)
			return nil
		}},
	{Name: "gzip_disable", Module: "http_gzip", Ctx: ctxHSL, Args: "1+", Doc: "No compression for clients whose User-Agent matches one of these regexes (without case); \"msie6\" names MSIE 4–6 without SV1.",
		Apply: func(p *parser, d *Directive) error {
			var res []*regexp.Regexp
			for _, a := range d.Args {
				if a == "msie6" {
					p.conf.GzipDisableMSIE.set(true)
					continue
				}
				re, err := regexp.Compile("(?i)" + a)
				if err != nil {
					return d.errorf("invalid regex %q in \"gzip_disable\" directive: %v", a, err)
				}
				res = append(res, re)
			}
			p.conf.GzipDisable.set(res)
			return nil
		}},
	{Name: "gunzip", Module: "http_gunzip", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Decompresses responses whose Content-Encoding is gzip (proxied, FastCGI, cached) for clients that do not take gzip by the gzip_* rules (Accept-Encoding, gzip_http_version, gzip_proxied, gzip_disable; whether gzip is on or not), as they stream: no Content-Encoding, Content-Length or Accept-Ranges, a weak ETag; with gzip_vary, Vary: Accept-Encoding on every gzip-encoded response. A body that is not valid gzip, or is cut short, cuts the response (nginx's error).",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.Gunzip) }},
	{Name: "gunzip_buffers", Module: "http_gunzip", Ctx: ctxHSL, Args: "2", Default: "32 4k", Doc: "The size is how much decompressed output is written on at once.",
		Diff: "the number is checked and not used: the output streams through one buffer of the size.",
		Apply: func(p *parser, d *Directive) error {
			if n, err := strconv.Atoi(d.Args[0]); err != nil || n <= 0 {
				return d.errorf("invalid value %q in \"gunzip_buffers\" directive", d.Args[0])
			}
			n, err := p.size(d, d.Args[1])
			if err != nil || n <= 0 {
				return d.errorf("invalid value %q in \"gunzip_buffers\" directive", d.Args[1])
			}
			p.conf.GunzipBufSize.set(n)
			return nil
		}},
	{Name: "gzip_buffers", Module: "http_gzip", Ctx: ctxHSL, Args: "2", Ignored: true, Doc: "Accepted; compressed output streams through the response's own buffer."},
}

// finishGzip compiles a merged level's gzip and gunzip settings (nil with gzip off, gunzip off).
func finishGzip(lc *LocConf) {
	lc.GzipFilter, lc.GunzipFilter = nil, nil
	on, un := lc.Gzip.Get(false), lc.Gunzip.Get(false)
	if !on && !un {
		return
	}
	g := compress.NewGzip(lc.GzipTypes.V)
	g.Level = lc.GzipLevel.Get(g.Level)
	g.MinLength = lc.GzipMinLength.Get(g.MinLength)
	g.Vary = lc.GzipVary.Get(false)
	g.HTTP10 = lc.GzipHTTP10.Get(false)
	g.Proxied = lc.GzipProxied.Get(g.Proxied)
	g.MSIE6 = lc.GzipDisableMSIE.Get(false)
	g.Disable = lc.GzipDisable.V
	if on {
		lc.GzipFilter = g
	}
	if un {
		lc.GunzipFilter = &compress.Gunzip{Test: g, BufSize: int(lc.GunzipBufSize.Get(4096))}
	}
}
