package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/route"
	"github.com/sluice-proxy/sluice/internal/static"
)

// staticDirectives are the file-serving directives (nginx's core, autoindex, headers and gzip_static modules).
var staticDirectives = []Spec{
	{Name: "try_files", Module: "http_core", Ctx: CtxServer | CtxLocation, Args: "2+", Doc: "Serves the first file (or directory, written with a trailing \"/\") that exists, else the last argument: an internal redirect to a URI or @name, or =code.",
		Apply: func(p *parser, d *Directive) error {
			if p.conf.TryFiles.Set {
				return p.dup(d)
			}
			last := d.Args[len(d.Args)-1]
			if code, ok := strings.CutPrefix(last, "="); ok {
				if n, err := atoiStatus(code); err != nil || n < 100 || n > 999 {
					return d.errorf("invalid code %q in \"try_files\" directive", last)
				}
			}
			for _, a := range d.Args {
				t, err := p.compile(d, a)
				if err != nil {
					return err
				}
				add(&p.conf.TryFiles, t)
			}
			return nil
		}},
	{Name: "alias", Module: "http_core", Ctx: CtxLocation, Args: "1", Doc: "Replaces the matched location prefix by this path (in a regex location: the whole file name, using captures).",
		Apply: (*parser).alias},
	{Name: "autoindex", Module: "http_autoindex", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "A request ending in \"/\" with no index file gets an HTML listing of the directory.",
		Diff:  "the listing omits dotfiles unless serve_dotfiles is on (nginx always omits them).",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.Autoindex) }},
	{Name: "autoindex_format", Module: "http_autoindex", Ctx: ctxHSL, Args: "1", Default: "html", Doc: "The listing's form: html, json, jsonp (wrapped in the callback named by the callback argument; letters, digits, '_' and '.' only, else 400), xml; each as nginx writes it.",
		Apply: func(p *parser, d *Directive) error {
			switch d.Args[0] {
			case "html", "json", "jsonp", "xml":
				p.conf.AutoindexFormat.set(d.Args[0])
				return nil
			}
			return d.errorf("invalid value %q in \"autoindex_format\" directive, it must be \"html\", \"xml\", \"json\" or \"jsonp\"", d.Args[0])
		}},
	{Name: "autoindex_exact_size", Module: "http_autoindex", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "off: HTML listings show sizes rounded to K, M or G.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.AutoindexExactSize) }},
	{Name: "autoindex_localtime", Module: "http_autoindex", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: HTML and XML listings show times in the server's time zone rather than UTC.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.AutoindexLocaltime) }},
	{Name: "etag", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Send an ETag (nginx's \"mtime-size\" form) for static files; If-None-Match, If-Match and If-Range compare with it.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.ETag) }},
	{Name: "if_modified_since", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "exact", Doc: "How a static file's If-Modified-Since is compared: exact (304 only for the file's own time), before (304 for that time or a later one), off (ignored).",
		Apply: func(p *parser, d *Directive) error {
			v, ok := static.ParseIMS(d.Args[0])
			if !ok {
				return d.errorf("invalid value %q in \"if_modified_since\" directive, it must be \"off\", \"exact\" or \"before\"", d.Args[0])
			}
			p.conf.IMS.set(v)
			return nil
		}},
	{Name: "max_ranges", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "unlimited", Doc: "The most byte ranges one request for a static file may ask for; a request for more gets the whole file. 0 turns range requests off (no Accept-Ranges).",
		Apply: func(p *parser, d *Directive) error { return p.setCount(d, &p.conf.MaxRanges) }},
	{Name: "expires", Module: "http_headers", Ctx: ctxHSL | CtxIf, Args: "1-2", Default: "off", Doc: "Adds Expires and Cache-Control: max-age to 2xx/3xx responses: a time, -time (no-cache), epoch, max, modified time, @time of day (local time), off. A value with variables (h5bp: `expires $expires` from a map on $sent_http_content_type) is read for each response; one that is not an expires value sends nothing, as in nginx.",
		Apply: (*parser).expires},
	{Name: "gzip_static", Module: "http_gzip_static", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Serves file.gz in the place of file (Content-Encoding: gzip, Vary: Accept-Encoding, its own length and validators) to clients that accept gzip, when it is a regular file; file itself need not exist, as in nginx.",
		Apply: func(p *parser, d *Directive) error {
			m, ok := map[string]static.GzipStatic{"off": static.GzipStaticOff, "on": static.GzipStaticOn, "always": static.GzipStaticAlways}[d.Args[0]]
			if !ok {
				return d.errorf("invalid value %q in \"gzip_static\" directive, it must be \"on\", \"off\" or \"always\"", d.Args[0])
			}
			p.conf.GzipStatic.set(m)
			return nil
		}},
	{Name: "serve_dotfiles", Module: "sluice", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Serve static files and directories whose name starts with \".\" (.git, .env, .htpasswd); /.well-known/ is always served.",
		Diff:  "sluice only; nginx serves dotfiles unless a location denies them.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.Dotfiles) }},
	{Name: "disable_symlinks", Module: "http_core", Ctx: ctxHSL, Args: "1-2", Default: "off", Doc: "on: a static file whose path contains a symbolic link below the root is refused (403); off: links are followed, as nginx.",
		Diff: "if_not_owner and from= are treated as on (stricter).",
		Apply: func(p *parser, d *Directive) error {
			switch d.Args[0] {
			case "off":
				p.conf.NoSymlinks.set(false)
			case "on", "if_not_owner":
				p.conf.NoSymlinks.set(true)
			default:
				return d.errorf("invalid value %q in \"disable_symlinks\" directive", d.Args[0])
			}
			return nil
		}},
	{Name: "internal", Module: "http_core", Ctx: CtxLocation, Args: "0", Doc: "The location serves only internal redirects (error_page, try_files, index); a client's request for it gets 404.",
		Apply: func(p *parser, d *Directive) error {
			if p.loc == nil {
				return d.errorf("\"internal\" directive is not allowed here")
			}
			p.loc.Internal = true
			return nil
		}},
	{Name: "log_not_found", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Log a static file that was not found (404) in the error log.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.LogNotFound) }},
	{Name: "client_body_buffer_size", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "16k", Doc: "A chunked request body for a FastCGI application is held in memory up to this size, then spooled to a temporary file (php-fpm needs CONTENT_LENGTH). A proxied request body up to this size is kept in memory while it streams to the upstream, so that proxy_next_upstream can send it to the next peer.",
		Diff: "bodies of known length stream to FastCGI; proxied bodies always stream (a copy of one up to this size is kept for a next peer), where nginx reads the whole body first, into memory or a temporary file.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.size(d, d.Args[0])
			p.conf.ClientBodyBufferSize.set(v)
			return err
		}},
}

func atoiStatus(s string) (int, error) { return strconv.Atoi(s) }

func (p *parser) alias(d *Directive) error {
	if p.conf.Alias.Set {
		return p.dup(d)
	}
	if p.conf.Root.Set {
		return d.errorf("\"alias\" directive is duplicate, \"root\" directive was specified earlier")
	}
	if p.loc != nil && p.loc.Modifier == route.Named {
		return d.errorf("\"alias\" directive cannot be used inside the named location")
	}
	v := d.Args[0]
	if !strings.Contains(v, "$") {
		v = p.path(v)
		if strings.HasSuffix(d.Args[0], "/") && !strings.HasSuffix(v, "/") {
			v += "/" // the trailing slash is part of the alias's meaning
		}
	}
	t, err := p.compile(d, v)
	if err != nil {
		return err
	}
	p.conf.Alias.set(t)
	if l := p.loc; l != nil && (l.Modifier == route.Prefix || l.Modifier == route.PrefixNoRegex) &&
		!strings.HasSuffix(l.Pattern, "/") && strings.HasSuffix(d.Args[0], "/") {
		w := d.errorf("alias %q ends with \"/\" but location %q does not: \"%s../\" reaches the parent of the alias directory", d.Args[0], l.Pattern, l.Pattern)
		w.Hint = "end both with \"/\" or neither"
		p.cfg.Warnings = append(p.cfg.Warnings, w)
	}
	return nil
}

func (p *parser) expires(d *Directive) error {
	args := d.Args
	modified := false
	if args[0] == "modified" {
		if len(args) != 2 {
			return d.errorf("invalid number of arguments in \"expires\" directive")
		}
		modified = true
		args = args[1:]
	} else if len(args) != 1 {
		return d.errorf("invalid value %q in \"expires\" directive", args[0])
	}
	if strings.Contains(args[0], "$") {
		t, err := p.compile(d, args[0])
		if err != nil {
			return err
		}
		if !t.IsConst() {
			p.conf.Expires.set(Expires{Modified: modified, Value: t})
			return nil
		}
	}
	e, err := ParseExpires(args[0])
	if err != nil {
		return d.errorf("invalid value %q in \"expires\" directive: %v", args[0], err)
	}
	if e.Daily && modified {
		return d.errorf("daily time cannot be used with \"modified\" parameter in \"expires\" directive")
	}
	e.Modified = modified
	p.conf.Expires.set(e)
	return nil
}

// ParseExpires reads an expires time as nginx does: off, epoch, max, @time of day, or a time with an optional
// sign (a negative one sends Cache-Control: no-cache). A value with variables is read with it for each response.
func ParseExpires(s string) (Expires, error) {
	switch s {
	case "off":
		return Expires{Off: true}, nil
	case "epoch":
		return Expires{Epoch: true}, nil
	case "max":
		return Expires{Max: true}, nil
	}
	if t, ok := strings.CutPrefix(s, "@"); ok {
		dur, err := ParseDuration(t)
		if err != nil {
			return Expires{}, err
		}
		if dur >= 24*time.Hour {
			return Expires{}, fmt.Errorf("daily time value must be less than 24 hours")
		}
		return Expires{Daily: true, D: dur}, nil
	}
	neg := strings.HasPrefix(s, "-")
	dur, err := ParseDuration(strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+"))
	if err != nil {
		return Expires{}, err
	}
	if neg {
		dur = -dur
	}
	return Expires{D: dur}, nil
}
