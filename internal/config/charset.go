package config

import (
	"strings"

	"github.com/sluice-proxy/sluice/internal/charset"
)

// charsetDirectives are nginx's charset module: the charset named in Content-Type, and bodies recoded between
// charsets a charset_map relates (internal/charset).
var charsetDirectives = []Spec{
	{Name: "charset", Module: "http_charset", Ctx: ctxHSL | CtxIf, Args: "1", Default: "off", Doc: "Adds \"; charset=NAME\" to the Content-Type of responses of a charset_types type (static files, proxied and FastCGI responses, return and error pages; not 301 and 302), unless the response names a charset already (see override_charset); recodes the body when source_charset or the response names another charset and a charset_map relates the two. NAME may be a variable.",
		Apply: func(p *parser, d *Directive) error { return p.charsetName(d, &p.conf.CharsetName, true) }},
	{Name: "source_charset", Module: "http_charset", Ctx: ctxHSL | CtxIf, Args: "1", Doc: "The charset of responses that do not name one; when it differs from charset, the body is recoded (a charset_map between the two must exist: checked at load).",
		Apply: func(p *parser, d *Directive) error { return p.charsetName(d, &p.conf.SourceCharset, false) }},
	{Name: "override_charset", Module: "http_charset", Ctx: ctxHSL | CtxIf, Args: "1", Default: "off", Doc: "on: a proxied or FastCGI response that names a charset gets charset's instead (recoded when a charset_map relates the two; else passed as it is, with an error logged); off: its charset stays.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.OverrideCharset) }},
	{Name: "charset_types", Module: "http_charset", Ctx: ctxHSL, Args: "1+", Default: "text/html text/xml text/plain text/vnd.wap.wml application/javascript application/rss+xml", Doc: "MIME types charset applies to, instead of the default ones but for text/html (always); \"*\" for any. A type is compared with any parameters it has.",
		Apply: func(p *parser, d *Directive) error { p.conf.CharsetTypes.set(d.Args); return nil }},
	{Name: "charset_map", Module: "http_charset", Ctx: CtxHTTP, Args: "2", Block: true, Doc: "charset_map SINGLE-BYTE OTHER { HEX HEX; ... }: the table to recode between two charsets, both ways: each line a byte of the first and its byte in the second, or its UTF-8 bytes when the second is utf-8 (Debian's /etc/nginx/koi-utf, koi-win and win-utf can be included). Bytes not listed become \"?\"; code points not listed, \"&#N;\".",
		Diff:  "a map from utf-8 (`charset_map utf-8 X`), which nginx accepts but cannot recode with, is refused.",
		Apply: (*parser).charsetMap},
}

// charsetArg is a charset or source_charset value and where it was written.
type charsetArg struct {
	charset.Name
	Pos Pos
}

// charsets returns the http block's set of charset names.
func (p *parser) charsets() *charset.Set {
	if p.http.Charsets == nil {
		p.http.Charsets = &charset.Set{}
	}
	return p.http.Charsets
}

// charsetName applies charset (mayOff) or source_charset.
func (p *parser) charsetName(d *Directive, o *Opt[charsetArg], mayOff bool) error {
	if o.Set {
		return d.errorf("%q directive is duplicate", d.Name)
	}
	a := charsetArg{Pos: d.Pos}
	switch v := d.Args[0]; {
	case mayOff && v == "off":
		a.Off = true
	case strings.HasPrefix(v, "$"):
		t, err := p.compile(d, v)
		if err != nil {
			return err
		}
		a.Var = t
		p.charsets() // a variable's value is looked up in the set
	default:
		a.Text = v
		p.charsets().Add(v)
	}
	o.set(a)
	return nil
}

// charsetMap reads a charset_map block.
func (p *parser) charsetMap(d *Directive) error {
	m, err := p.charsets().NewMap(d.Args[0], d.Args[1])
	if err != nil {
		return d.errorf("%v", err)
	}
	for _, e := range p.body(d) {
		if len(e.Args) != 1 {
			return e.errorf("invalid parameters number")
		}
		if err := m.Line(e.Name, e.Args[0]); err != nil {
			return e.errorf("%v", err)
		}
	}
	return nil
}

// finishCharset compiles a merged level's charset settings: nil when the configuration names no charset at
// all (then an upstream's X-Accel-Charset can name none either). A level that recodes between two charsets
// without a charset_map between them is refused, as nginx refuses it.
func (p *parser) finishCharset(lc *LocConf) {
	lc.Charset = nil
	set := p.cfg.HTTP.Charsets
	if set == nil {
		return
	}
	dst, src := lc.CharsetName.V, lc.SourceCharset.V
	if !lc.CharsetName.Set {
		dst.Off = true
	}
	if !lc.SourceCharset.Set {
		src.Off = true
	}
	if set.Missing(dst.Name, src.Name) && p.charsetErr == nil {
		e := src.Pos.errorf("no \"charset_map\" between the charsets %q and %q", src.Text, dst.Text)
		e.Hint = "add a charset_map block between them in http (Debian's nginx ships /etc/nginx/koi-utf, koi-win and win-utf)"
		p.charsetErr = e
	}
	types := charset.DefaultTypes
	if lc.CharsetTypes.Set {
		types = append([]string{"text/html"}, lc.CharsetTypes.V...) // as nginx: text/html stays
	}
	lc.Charset = charset.New(set, dst.Name, src.Name, lc.OverrideCharset.Get(false), types)
}
