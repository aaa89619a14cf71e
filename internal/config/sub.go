package config

import "github.com/sluice-proxy/sluice/internal/subfilter"

// subDirectives are nginx's sub module: strings replaced in response bodies as they stream (internal/subfilter).
var subDirectives = []Spec{
	{Name: "sub_filter", Module: "http_sub", Ctx: ctxHSL, Args: "2", Doc: "Replaces a string in response bodies with another, without case, as the body streams (a match split across two reads is found; the response holds back at most the longest string). Both may contain variables (a search whose value is empty is left out). Several may be given: at one place the one written first wins. Responses of any status and of a sub_filter_types type are rewritten (one with a Content-Encoding too, as nginx: its bytes are searched as they are), before gzip compresses them; they lose Content-Length, and Last-Modified and ETag (see sub_filter_last_modified). A level with any sub_filter replaces the inherited list.",
		Apply: func(p *parser, d *Directive) error {
			if d.Args[0] == "" {
				return d.errorf("empty search pattern")
			}
			if len(p.conf.SubFilters.V) == 255 {
				return d.errorf("number of search patterns exceeds 255")
			}
			search, err := p.compile(d, d.Args[0])
			if err != nil {
				return err
			}
			repl, err := p.compile(d, d.Args[1])
			if err != nil {
				return err
			}
			add(&p.conf.SubFilters, subfilter.Pair{Search: search, Replacement: repl})
			return nil
		}},
	{Name: "sub_filter_types", Module: "http_sub", Ctx: ctxHSL, Args: "1+", Default: "text/html", Doc: "MIME types sub_filter rewrites besides text/html (always); \"*\" for any.",
		Apply: func(p *parser, d *Directive) error { p.conf.SubFilterTypes.set(d.Args); return nil }},
	{Name: "sub_filter_once", Module: "http_sub", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "on: each sub_filter string is replaced at its first match only (once all are, the rest of the body is not searched); off: every match.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.SubFilterOnce) }},
	{Name: "sub_filter_last_modified", Module: "http_sub", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: a rewritten response keeps its Last-Modified and its ETag, made weak; off: both are removed.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.SubFilterLastModified) }},
}

// finishSub compiles a merged level's sub_filter settings (nil without sub_filter).
func finishSub(lc *LocConf) {
	if len(lc.SubFilters.V) == 0 {
		lc.SubFilter = nil
		return
	}
	lc.SubFilter = subfilter.New(lc.SubFilters.V, lc.SubFilterTypes.V, lc.SubFilterOnce.Get(true), lc.SubFilterLastModified.Get(false))
}
