package config

import (
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/access"
)

// accessDirectives are the access phase's directives (internal/access): CORS, WebSocket origins, real IP,
// allow/deny, basic authentication and request/connection limits.
var accessDirectives = []Spec{
	{Name: "cors_origins", Module: "sluice_cors", Ctx: ctxHSL, Args: "1+", Doc: "Origins allowed to make cross-origin requests: exact (https://app.example.org), wildcard subdomains (https://*.example.org) or *. Preflights are answered by sluice (204); every response, error pages included, carries Vary: Origin and, for an allowed origin, Access-Control-Allow-Origin. `off` turns an inherited policy off.",
		Diff: "sluice only (nginx users combine add_header and if). When set, sluice owns the Access-Control-Allow-* headers: an upstream's are replaced.",
		Apply: func(p *parser, d *Directive) error {
			if len(d.Args) == 1 && d.Args[0] == "off" {
				p.conf.CORSOrigins.set(nil)
				return nil
			}
			o, err := access.ParseOrigins(d.Args)
			if err != nil {
				return d.errorf("%v", err)
			}
			p.conf.CORSOrigins.set(o)
			return nil
		}},
	{Name: "cors_methods", Module: "sluice_cors", Ctx: ctxHSL, Args: "1+", Default: "GET HEAD POST", Doc: "Methods listed in Access-Control-Allow-Methods of a preflight answer.",
		Diff:  "sluice only.",
		Apply: func(p *parser, d *Directive) error { return p.tokens(d, &p.conf.CORSMethods, true) }},
	{Name: "cors_headers", Module: "sluice_cors", Ctx: ctxHSL, Args: "1+", Doc: "Request headers a cross-origin request may carry (Access-Control-Allow-Headers of a preflight); * reflects the headers the preflight asks for.",
		Diff:  "sluice only.",
		Apply: func(p *parser, d *Directive) error { return p.tokens(d, &p.conf.CORSHeaders, false) }},
	{Name: "cors_expose_headers", Module: "sluice_cors", Ctx: ctxHSL, Args: "1+", Doc: "Response headers scripts of an allowed origin may read (Access-Control-Expose-Headers).",
		Diff:  "sluice only.",
		Apply: func(p *parser, d *Directive) error { return p.tokens(d, &p.conf.CORSExpose, false) }},
	{Name: "cors_credentials", Module: "sluice_cors", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Allow credentialed requests (Access-Control-Allow-Credentials: true); the allowed origin is then reflected, never a literal *.",
		Diff:  "sluice only.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.CORSCredentials) }},
	{Name: "cors_max_age", Module: "sluice_cors", Ctx: ctxHSL, Args: "1", Doc: "How long a browser may cache a preflight answer (Access-Control-Max-Age); unset sends none (browser default, 5s).",
		Diff:  "sluice only.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.CORSMaxAge) }},
	{Name: "websocket_origins", Module: "sluice_cors", Ctx: ctxHSL, Args: "1+", Default: "cors_origins", Doc: "Origins a WebSocket upgrade may come from (against cross-site WebSocket hijacking): another Origin gets 403 and never reaches the upstream. Requests without Origin (non-browser clients) and same-origin pages pass. Defaults to cors_origins when that is set; `*` or `off` allows any.",
		Diff: "sluice only.",
		Apply: func(p *parser, d *Directive) error {
			if len(d.Args) == 1 && d.Args[0] == "off" {
				d.Args = []string{"*"}
			}
			o, err := access.ParseOrigins(d.Args)
			if err != nil {
				return d.errorf("%v", err)
			}
			p.conf.WebSocketOrigins.set(o)
			return nil
		}},

	{Name: "set_real_ip_from", Module: "http_realip", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "A trusted proxy (address or CIDR): only its requests may set the client address through real_ip_header.",
		Diff: "not allowed in location (the real address is decided once, before server rewrites); unix: is not supported.",
		Apply: func(p *parser, d *Directive) error {
			pf, err := parsePrefix(d.Args[0])
			if err != nil {
				return d.errorf("invalid address or CIDR %q in \"set_real_ip_from\"", d.Args[0])
			}
			add(&p.sc.RealIPFrom, pf)
			return nil
		}},
	{Name: "real_ip_header", Module: "http_realip", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "X-Real-IP", Doc: "Where a trusted proxy reports the client address: X-Real-IP, X-Forwarded-For, proxy_protocol or another header.",
		Diff: "not allowed in location.",
		Apply: func(p *parser, d *Directive) error {
			p.sc.RealIPHeader.set(d.Args[0])
			return nil
		}},
	{Name: "real_ip_recursive", Module: "http_realip", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "off", Doc: "With X-Forwarded-For: skip trusted addresses from the right and take the first untrusted one (off: the last address).",
		Diff: "not allowed in location.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.onOff(d)
			p.sc.RealIPRecursive.set(v)
			return err
		}},

	{Name: "allow", Module: "http_access", Ctx: ctxHSL | CtxLimitExcept | ctxStream, Args: "1", Doc: "Allows an address, CIDR or all; allow and deny rules are checked in order, the first match decides.",
		Diff:  "unix: is not supported.",
		Apply: func(p *parser, d *Directive) error { return p.rule(d, true) }},
	{Name: "deny", Module: "http_access", Ctx: ctxHSL | CtxLimitExcept | ctxStream, Args: "1", Doc: "Denies (403) an address, CIDR or all; see allow. In stream, a denied connection is closed at once and logged with $status 403.",
		Diff:  "unix: is not supported.",
		Apply: func(p *parser, d *Directive) error { return p.rule(d, false) }},

	{Name: "auth_request", Module: "http_auth_request", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Authorises each request by a subrequest to this URI (a location of the same server, usually internal and proxying to an authentication service): a 2xx lets the request on, 401 and 403 are the answer (401 with the subrequest's WWW-Authenticate), anything else is a 500. The subrequest is a GET with the request's headers and without its body; its response body is dropped.",
		Diff: "the subrequest carries no Content-Length, Transfer-Encoding, Expect, Upgrade or Connection from the request (nginx passes them on, hence the usual proxy_pass_request_body off; proxy_set_header Content-Length \"\";), and is never upgraded to a tunnel.",
		Apply: func(p *parser, d *Directive) error {
			if d.Args[0] == "off" {
				p.conf.AuthRequest.set("")
				return nil
			}
			if !strings.HasPrefix(d.Args[0], "/") {
				return d.errorf("invalid URI %q in \"auth_request\" directive, it must start with \"/\"", d.Args[0])
			}
			p.conf.AuthRequest.set(d.Args[0])
			return nil
		}},
	{Name: "auth_request_set", Module: "http_auth_request", Ctx: ctxHSL, Args: "2", Doc: "Sets a variable once the auth_request subrequest has answered, to a value evaluated in the subrequest ($upstream_http_x_user, $upstream_status, …), for the rest of the request and its error pages.",
		Apply: func(p *parser, d *Directive) error {
			if !strings.HasPrefix(d.Args[0], "$") {
				return d.errorf("invalid variable name %q", d.Args[0])
			}
			idx, err := p.tab.Declare(strings.TrimPrefix(d.Args[0], "$"))
			if err != nil {
				return d.errorf("%v", err)
			}
			t, err := p.compile(d, d.Args[1])
			if err != nil {
				return err
			}
			add(&p.conf.AuthRequestSet, AuthSet{Var: idx, Val: t})
			return nil
		}},
	{Name: "limit_except", Module: "http_core", Ctx: CtxLocation, Args: "1+", Block: true, Doc: "limit_except METHOD ... { allow/deny/auth_basic/auth_basic_user_file }: a request whose method is not listed (GET implies HEAD; any method nginx does not know is never listed) takes the block's access rules, which inherit the location's (satisfy included). As in nginx, such a request also skips the location's own rewrite statements (set, rewrite, return, if) and try_files; nested locations do not inherit the block. Methods: GET HEAD POST PUT DELETE MKCOL COPY MOVE OPTIONS PROPFIND PROPPATCH LOCK UNLOCK PATCH.",
		Diff:  "only the access directives above are allowed in the block: proxy_pass, access_log and perl, which nginx also takes there, are refused. A WebSocket over HTTP/2 or HTTP/3 (extended CONNECT) counts as GET, as its HTTP/1.1 form is.",
		Apply: (*parser).limitExcept},
	{Name: "secure_link", Module: "http_secure_link", Ctx: ctxHSL, Args: "1", Doc: "The value $secure_link checks: a base64url MD5, optionally followed by a comma and an expiry time (Unix seconds), usually from the request's arguments ($arg_md5,$arg_expires).",
		Apply: func(p *parser, d *Directive) error { return p.setTemplate(d, &p.conf.SecureLinkExpr) }},
	{Name: "secure_link_md5", Module: "http_secure_link", Ctx: ctxHSL, Args: "1", Doc: "The string whose MD5 the link must carry, with a secret and the parts the link binds (\"$secure_link_expires$uri$remote_addr secret\").",
		Apply: func(p *parser, d *Directive) error { return p.setTemplate(d, &p.conf.SecureLinkMD5) }},
	{Name: "secure_link_secret", Module: "http_secure_link", Ctx: CtxLocation, Args: "1", Doc: "The older form: a URI /PREFIX/HASH/LINK is valid when HASH is the hex MD5 of LINK followed by this secret; $secure_link is then LINK.",
		Apply: func(p *parser, d *Directive) error { p.conf.SecureLinkSecret.set(d.Args[0]); return nil }},
	{Name: "mirror", Module: "http_mirror", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Sends a copy of each request to this URI (a location of the same server, usually internal and proxying to a test or shadow service) in the background: same method, headers and arguments, the body too with mirror_request_body on; its answer is dropped. Several lines mirror to several URIs.",
		Diff: "the request's own response and its connection never wait for a mirror (nginx holds the request until its mirrors end); a body over 1 MiB is not mirrored (logged at warn), and at most 256 mirror requests run at once per server (more are dropped, logged).",
		Apply: func(p *parser, d *Directive) error {
			if d.Args[0] == "off" {
				p.conf.Mirrors.set([]string{})
				return nil
			}
			if !strings.HasPrefix(d.Args[0], "/") {
				return d.errorf("invalid URI %q in \"mirror\" directive, it must start with \"/\"", d.Args[0])
			}
			add(&p.conf.Mirrors, d.Args[0])
			return nil
		}},
	{Name: "mirror_request_body", Module: "http_mirror", Ctx: ctxHSL, Args: "1", Default: "on", Doc: "Whether mirrors get the request's body (it is then read before the request is handled). Off: they get an empty body (nginx sends the request's Content-Length without the body).",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.MirrorBody) }},
	{Name: "auth_delay", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "0s", Doc: "Delays every 401 of auth_basic and auth_request by this long, so the time a refusal takes tells a guesser nothing.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.conf.AuthDelay) }},
	{Name: "satisfy", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "all", Doc: "all: a request must pass both allow/deny and auth_basic; any: a matching allow rule or valid credentials suffice (a failure then answers 401 so the browser asks for credentials).",
		Apply: func(p *parser, d *Directive) error {
			switch d.Args[0] {
			case "all":
				p.conf.SatisfyAny.set(false)
			case "any":
				p.conf.SatisfyAny.set(true)
			default:
				return d.errorf("invalid value %q in \"satisfy\" directive, it must be \"all\" or \"any\"", d.Args[0])
			}
			return nil
		}},
	{Name: "auth_basic", Module: "http_auth_basic", Ctx: ctxHSL | CtxLimitExcept, Args: "1", Default: "off", Doc: "Requires HTTP basic authentication with the given realm (variables allowed); off turns it off.",
		Apply: func(p *parser, d *Directive) error {
			if d.Args[0] == "off" {
				p.conf.AuthBasic.set(nil)
				return nil
			}
			t, err := p.compile(d, d.Args[0])
			p.conf.AuthBasic.set(t)
			return err
		}},
	{Name: "auth_basic_user_file", Module: "http_auth_basic", Ctx: ctxHSL | CtxLimitExcept, Args: "1", Doc: "htpasswd file with the users: bcrypt ($2y$), Apache MD5 ($apr1$), {SHA}, {SSHA}, $1$/$5$/$6$ crypt. Changes are picked up without a reload.",
		Diff: "read when the configuration loads (a missing file or a line in an unknown format is a configuration error) and again when it changes; variables in the path and plain-text passwords are not supported.",
		Apply: func(p *parser, d *Directive) error {
			f, err := access.OpenUserFile(p.confPath(d.Args[0]))
			if err != nil {
				return d.errorf("auth_basic_user_file: %v", err)
			}
			p.conf.AuthUserFile.set(f)
			return nil
		}},

	{Name: "valid_referers", Module: "http_referer", Ctx: CtxServer | CtxLocation, Args: "1+", Doc: "valid_referers none | blocked | server_names | HOST[/PATH] | ~regex ...: sets $invalid_referer to \"\" for an accepted Referer and \"1\" otherwise (use it with `if ($invalid_referer) { return 403; }`). none: no Referer header; blocked: one without http:// or https:// (as firewalls leave it); server_names: the server's names; a host may be *.example.com, .example.com or www.example.*, is compared without case and without its port, and with /PATH the referer's path must start with PATH; ~regex (caseless) is matched against the referer without its scheme. Several lines at one level add up.",
		Apply: func(p *parser, d *Directive) error {
			if !p.conf.ValidReferers.Set {
				p.conf.ValidReferers.set(&access.Referers{})
				p.conf.ValidReferersPos = d.Pos
			}
			if err := p.conf.ValidReferers.V.Add(d.Args, p.srv.Names); err != nil {
				return d.errorf("%v", err)
			}
			return nil
		}},
	{Name: "limit_req_zone", Module: "http_limit_req", Ctx: CtxHTTP, Args: "3-4", Doc: "A request rate zone: key (e.g. $binary_remote_addr), zone=name:size, rate=Nr/s or Nr/m. Requests with an empty key are not limited.",
		Diff: "the zone lives in the process (no shared memory); it keeps its state across a reload when name and size stay the same. `sync` is refused.",
		Apply: func(p *parser, d *Directive) error {
			z, err := p.zone(d, true)
			if err != nil {
				return err
			}
			p.http.ReqZones = append(p.http.ReqZones, z)
			return nil
		}},
	{Name: "limit_req", Module: "http_limit_req", Ctx: ctxHSL, Args: "1-3", Doc: "Limits the request rate by a zone (nginx's leaky bucket): zone=name [burst=N] [nodelay | delay=N]. Requests over the burst get limit_req_status.",
		Apply: func(p *parser, d *Directive) error {
			lr := LimitReq{}
			nodelay := false
			for _, a := range d.Args {
				k, v, _ := strings.Cut(a, "=")
				var err error
				switch k {
				case "zone":
					lr.Zone = v
				case "burst":
					lr.Burst, err = strconv.Atoi(v)
				case "delay":
					lr.Delay, err = strconv.Atoi(v)
				case "nodelay":
					nodelay = true
				default:
					return d.errorf("invalid parameter %q", a)
				}
				if err != nil || lr.Burst < 0 || lr.Delay < 0 {
					return d.errorf("invalid parameter %q", a)
				}
			}
			if lr.Zone == "" {
				return d.errorf("\"limit_req\" must have \"zone\" parameter")
			}
			if nodelay {
				lr.Delay = math.MaxInt32
			}
			add(&p.conf.LimitReqs, lr)
			return nil
		}},
	{Name: "limit_req_dry_run", Module: "http_limit_req", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "on: limit_req counts and logs (\"dry run\") but neither refuses nor delays; $limit_req_status tells what it would have done.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.LimitReqDryRun) }},
	{Name: "limit_req_status", Module: "http_limit_req", Ctx: ctxHSL, Args: "1", Default: "503", Doc: "Status for requests refused by limit_req.",
		Apply: func(p *parser, d *Directive) error { return p.status(d, &p.conf.LimitReqStatus) }},
	{Name: "limit_req_log_level", Module: "http_limit_req", Ctx: ctxHSL, Args: "1", Default: "error", Doc: "Error log level for refused requests (info, notice, warn, error); delayed ones log one level lower.",
		Apply: func(p *parser, d *Directive) error { return p.logLevel(d, &p.conf.LimitReqLog) }},
	{Name: "limit_conn_zone", Module: "http_limit_conn", Ctx: CtxHTTP | CtxStream, Args: "2", Doc: "A connection-count zone: key (e.g. $binary_remote_addr) and zone=name:size. In stream, a zone of stream sessions (TCP connections and UDP sessions), named apart from http's.",
		Diff: "counts requests in progress (HTTP/2 streams each count) and open WebSocket tunnels; the zone lives in the process and keeps its counts across a reload when name and size stay the same.",
		Apply: func(p *parser, d *Directive) error {
			z, err := p.zone(d, false)
			if err != nil {
				return err
			}
			if p.strm != nil {
				p.strm.ConnZones = append(p.strm.ConnZones, z)
			} else {
				p.http.ConnZones = append(p.http.ConnZones, z)
			}
			return nil
		}},
	{Name: "limit_conn", Module: "http_limit_conn", Ctx: ctxHSL | ctxStream, Args: "2", Doc: "Most requests in progress (WebSocket tunnels count while open) per key of a zone; more get limit_conn_status. In stream: most open sessions per key; one more is closed at once, logged with $status 503.",
		Apply: func(p *parser, d *Directive) error {
			n, err := strconv.Atoi(d.Args[1])
			if err != nil || n < 1 {
				return d.errorf("invalid number of connections %q", d.Args[1])
			}
			add(&p.conf.LimitConns, LimitConn{Zone: d.Args[0], N: n})
			return nil
		}},
	{Name: "limit_conn_log_level", Module: "http_limit_conn", Ctx: ctxHSL | ctxStream, Args: "1", Default: "error", Doc: "Error log level for requests refused by limit_conn (info, notice, warn, error).",
		Apply: func(p *parser, d *Directive) error { return p.logLevel(d, &p.conf.LimitConnLog) }},
	{Name: "limit_conn_dry_run", Module: "http_limit_conn", Ctx: ctxHSL | ctxStream, Args: "1", Default: "off", Doc: "on: limit_conn counts and logs (\"dry run\") but does not refuse; $limit_conn_status tells what it would have done.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.conf.LimitConnDryRun) }},
	{Name: "limit_conn_status", Module: "http_limit_conn", Ctx: ctxHSL, Args: "1", Default: "503", Doc: "Status for requests refused by limit_conn.",
		Apply: func(p *parser, d *Directive) error { return p.status(d, &p.conf.LimitConnStatus) }},
}

// limitExceptMethods are the methods nginx's limit_except knows.
var limitExceptMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "OPTIONS", "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "PATCH"}

// notInLimitExcept are the directives nginx takes in limit_except that sluice does not honour there: each is
// refused with a reason rather than ignored.
var notInLimitExcept = map[string]string{
	"proxy_pass": "a content handler per method is not supported; put proxy_pass in the location",
	"access_log": "a log per method is not supported; log $request_method in the location's access_log",
	"perl":       "sluice has no embedded perl",
}

// limitExcept parses limit_except: its methods and, into a configuration of its own that finish merges
// from the location's, the access rules for the other methods.
func (p *parser) limitExcept(d *Directive) error {
	if p.conf.LimitExcept != nil {
		return p.dup(d)
	}
	le := &LimitExcept{Conf: &LocConf{}, Pos: d.Pos}
	for _, a := range d.Args {
		m := strings.ToUpper(a)
		if !slices.Contains(limitExceptMethods, m) {
			return d.errorf("invalid method %q", a)
		}
		le.Methods = append(le.Methods, m)
		if m == "GET" {
			le.Methods = append(le.Methods, "HEAD") // GET implies HEAD, as in nginx
		}
	}
	body := p.body(d)
	for _, c := range body {
		if why, ok := notInLimitExcept[c.Name]; ok {
			return c.errorf("%q inside \"limit_except\" is not supported: %s", c.Name, why)
		}
	}
	outer := p.conf
	p.conf = le.Conf
	err := p.walk(body, CtxLimitExcept)
	p.conf = outer
	outer.LimitExcept = le
	return err
}

// tokens sets a list directive of header names or methods; each must be an HTTP token.
func (p *parser) tokens(d *Directive, o *Opt[[]string], upper bool) error {
	for _, a := range d.Args {
		for _, part := range strings.Split(a, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if !isToken(part) {
				return d.errorf("invalid value %q in %q directive", part, d.Name)
			}
			if upper {
				part = strings.ToUpper(part)
			}
			add(o, part)
		}
	}
	return nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

func (p *parser) status(d *Directive, o *Opt[int]) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 400 || n > 599 {
		return d.errorf("value must be between 400 and 599")
	}
	o.set(n)
	return nil
}

// logLevel parses limit_*_log_level (nginx's info, notice, warn, error; notice logs as info).
func (p *parser) logLevel(d *Directive, o *Opt[slog.Level]) error {
	switch d.Args[0] {
	case "info", "notice":
		o.set(slog.LevelInfo)
	case "warn":
		o.set(slog.LevelWarn)
	case "error":
		o.set(slog.LevelError)
	default:
		return d.errorf("invalid value %q in %q directive (info, notice, warn or error)", d.Args[0], d.Name)
	}
	return nil
}

// rule parses one allow or deny.
func (p *parser) rule(d *Directive, allow bool) error {
	r := access.Rule{Allow: allow}
	if d.Args[0] == "all" {
		r.All = true
	} else {
		pf, err := parsePrefix(d.Args[0])
		if err != nil {
			return d.errorf("invalid parameter %q", d.Args[0])
		}
		r.Prefix = pf
	}
	add(&p.conf.Access, r)
	return nil
}

// parsePrefix reads an address or CIDR; host bits set in a CIDR are cleared (nginx warns and does the same).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		bits := pf.Bits()
		if pf.Addr().Is4In6() {
			bits -= 96
		}
		return netip.PrefixFrom(pf.Addr().Unmap(), bits).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// zone parses limit_req_zone (rate) or limit_conn_zone arguments.
func (p *parser) zone(d *Directive, rate bool) (ZoneSpec, error) {
	z := ZoneSpec{Pos: d.Pos}
	t, err := p.compile(d, d.Args[0])
	if err != nil {
		return z, err
	}
	z.Key = t
	for _, a := range d.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		switch {
		case k == "zone":
			name, size, ok := strings.Cut(v, ":")
			n, err := ParseSize(size)
			if !ok || name == "" || err != nil || n < 8<<10 {
				return z, d.errorf("invalid zone size %q (at least 8k)", a)
			}
			z.Name, z.Size = name, n
		case k == "rate" && rate:
			num, per := v, time.Second
			if s, ok := strings.CutSuffix(v, "r/s"); ok {
				num = s
			} else if s, ok := strings.CutSuffix(v, "r/m"); ok {
				num, per = s, time.Minute
			} else {
				return z, d.errorf("invalid rate %q (Nr/s or Nr/m)", v)
			}
			n, err := strconv.Atoi(num)
			if err != nil || n <= 0 {
				return z, d.errorf("invalid rate %q", v)
			}
			z.Rate = float64(n) / per.Seconds()
		default:
			return z, d.errorf("invalid parameter %q", a)
		}
	}
	if z.Name == "" {
		return z, d.errorf("%q must have \"zone\" parameter", d.Name)
	}
	if rate && z.Rate == 0 {
		return z, d.errorf("no rate is defined for limit_req_zone %q", z.Name)
	}
	var names []ZoneSpec
	if p.http != nil {
		names = append(append(names, p.http.ReqZones...), p.http.ConnZones...)
	}
	if p.cfg.Stream != nil {
		names = append(names, p.cfg.Stream.ConnZones...)
	}
	for _, o := range names {
		if o.Name == z.Name {
			return z, d.errorf("duplicate zone %q", z.Name)
		}
	}
	return z, nil
}

// finishAccess compiles a merged level's access settings and checks the zones its limits name.
func (p *parser) finishAccess(lc *LocConf, pos Pos) error {
	if lc.CORSOrigins.V != nil {
		lc.CORS = access.NewCORS(lc.CORSOrigins.V, lc.CORSMethods.V, lc.CORSHeaders.V, lc.CORSExpose.V,
			lc.CORSCredentials.V, lc.CORSMaxAge.V, lc.CORSMaxAge.Set)
	}
	lc.WSOrigins = lc.CORSOrigins.V
	if lc.WebSocketOrigins.Set {
		lc.WSOrigins = lc.WebSocketOrigins.V
	}
	if lc.WSOrigins != nil && lc.WSOrigins.Any {
		lc.WSOrigins = nil
	}
	if rf := lc.ValidReferers.V; rf != nil {
		if err := rf.Check(); err != nil {
			return lc.ValidReferersPos.errorf("%v", err)
		}
	}
	if lc.AuthBasic.V != nil && lc.AuthUserFile.V == nil {
		e := pos.errorf("auth_basic without auth_basic_user_file")
		e.Hint = "add auth_basic_user_file with an htpasswd file"
		return e
	}
	for _, lr := range lc.LimitReqs.V {
		if !hasZone(p.http.ReqZones, lr.Zone) {
			return pos.errorf("limit_req: unknown zone %q (declare it with limit_req_zone in http)", lr.Zone)
		}
	}
	for _, c := range lc.LimitConns.V {
		if !hasZone(p.http.ConnZones, c.Zone) {
			return pos.errorf("limit_conn: unknown zone %q (declare it with limit_conn_zone in http)", c.Zone)
		}
	}
	return nil
}

func hasZone(zs []ZoneSpec, name string) bool {
	for _, z := range zs {
		if z.Name == name {
			return true
		}
	}
	return false
}

// finishRealIP compiles a server's merged realip settings.
func finishRealIP(sc *SrvConf) {
	if len(sc.RealIPFrom.V) == 0 {
		return
	}
	sc.RealIP = &access.RealIP{From: sc.RealIPFrom.V, Header: sc.RealIPHeader.Get("X-Real-IP"), Recursive: sc.RealIPRecursive.V}
}
