package config

import (
	"errors"
	"net"
	"reflect"
	"strings"

	"github.com/sluice-proxy/sluice/internal/route"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// finish merges inherited values down the tree, resolves names and validates what needs the whole file.
func (p *parser) finish() error {
	c := p.cfg
	if c.Pid == "" {
		c.Pid = p.path("logs/sluice.pid")
	}
	if len(c.ErrorLogs) == 0 {
		c.ErrorLogs = []LogTarget{{Path: p.path("logs/error.log"), Level: "error"}}
	}
	if c.Stream != nil {
		if err := p.finishStream(c.Stream); err != nil {
			return err
		}
	}
	h := c.HTTP
	if h == nil {
		return nil
	}
	if !h.Loc.AccessLogs.Set {
		h.Loc.AccessLogs.set([]LogTarget{{Path: p.path("logs/access.log"), Format: "combined"}})
	}
	for _, u := range h.Upstreams {
		if u.Resolver == nil {
			u.Resolver = h.Resolver
		}
		for _, s := range u.Servers {
			if s.Resolve && u.Resolver == nil {
				e := s.Pos.errorf("no resolver defined to resolve %s", s.Addr)
				e.Hint = "add `resolver ADDRESS;` to the http or upstream block"
				return e
			}
		}
	}
	if !h.Loc.ProxyCache.Key.Set {
		// proxy_cache_key's default, inherited by every level that sets none (fastcgi_cache_key has none)
		t, err := vars.Compile("$scheme$proxy_host$request_uri", p.tab)
		if err != nil {
			return err
		}
		h.Loc.ProxyCache.Key.V = t
	}
	for _, s := range h.Servers {
		mergeOpts(s.Loc, h.Loc)
		mergeOpts(&s.Srv, &h.Srv)
		mergeSSL(&s.Srv.SSL, &h.Srv.SSL)
		finishRealIP(&s.Srv)
		if err := p.finishServer(s); err != nil {
			return err
		}
	}
	if p.charsetErr != nil {
		return p.charsetErr
	}
	return p.checkLogFormats(h)
}

func (p *parser) checkLogFormats(h *HTTP) error {
	check := func(loc *LocConf, pos Pos) error {
		for _, t := range loc.AccessLogs.V {
			if t.Path == "off" || t.Format == "combined" {
				continue
			}
			if _, ok := h.LogFormats[t.Format]; !ok {
				return pos.errorf("unknown log format %q", t.Format)
			}
		}
		return nil
	}
	var walk func(ls []*Location) error
	walk = func(ls []*Location) error {
		for _, l := range ls {
			if err := check(l.Conf, l.Pos); err != nil {
				return err
			}
			if err := walk(l.Children); err != nil {
				return err
			}
		}
		return nil
	}
	for _, s := range h.Servers {
		if err := check(s.Loc, s.Pos); err != nil {
			return err
		}
		if err := walk(s.Locations); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) finishServer(s *Server) error {
	ssl := &s.Srv.SSL
	if err := pairCertificates(ssl); err != nil {
		return err
	}
	for i := range s.Listens {
		l := &s.Listens[i]
		if s.sslOn {
			l.SSL = true
		}
		if (l.SSL || l.QUIC) && len(ssl.Certificates) == 0 && !ssl.Reject.Get(false) {
			e := l.Pos.errorf("no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive")
			e.Hint = "add ssl_certificate and ssl_certificate_key to the server (or `ssl_certificate self-signed;` for testing)"
			return e
		}
	}
	if err := checkClientVerify(s); err != nil {
		return err
	}
	for i, n := range s.Names {
		if strings.HasPrefix(n, "~") {
			continue
		}
		s.Names[i] = strings.TrimSuffix(n, ".")
	}
	var perr error
	var conv func(ls []*Location, parent *LocConf) []*route.Location[*Location]
	conv = func(ls []*Location, parent *LocConf) []*route.Location[*Location] {
		var out []*route.Location[*Location]
		for _, l := range ls {
			mergeOpts(l.Conf, parent)
			compileLinger(l.Conf)
			p.mergeIfConfs(l.Ops, l.Conf)
			if err := p.resolveProxy(l.Conf); err != nil && perr == nil {
				perr = err
			}
			p.compileLevel(l.Conf)
			if err := p.finishAccess(l.Conf, l.Pos); err != nil && perr == nil {
				perr = err
			}
			if err := p.finishLimitExcept(l.Conf); err != nil && perr == nil {
				perr = err
			}
			if err := p.resolveFastCGI(l.Conf); err != nil && perr == nil {
				perr = err
			}
			if err := p.resolveGRPC(l.Conf); err != nil && perr == nil {
				perr = err
			}
			if err := p.checkCache(l.Conf); err != nil && perr == nil {
				perr = err
			}
			out = append(out, &route.Location[*Location]{Modifier: l.Modifier, Pattern: l.Pattern, Value: l, Children: conv(l.Children, l.Conf),
				AutoRedirect: l.Conf.Handler == HandlerProxy || l.Conf.Handler == HandlerFastCGI || l.Conf.Handler == HandlerUWSGI || l.Conf.Handler == HandlerSCGI || l.Conf.Handler == HandlerGRPC})
		}
		return out
	}
	compileLinger(s.Loc)
	p.mergeIfConfs(s.Ops, s.Loc)
	p.compileLevel(s.Loc)
	if err := p.finishAccess(s.Loc, s.Pos); err != nil {
		return err
	}
	rl := conv(s.Locations, s.Loc)
	if perr != nil {
		return perr
	}
	m, err := route.Compile(rl)
	if err != nil {
		var le *route.LocationError[*Location]
		if errors.As(err, &le) && le.Loc != nil && le.Loc.Value != nil {
			return le.Loc.Value.Pos.errorf("%s", le.Msg)
		}
		return s.Pos.errorf("%v", err)
	}
	s.Matcher = m
	return nil
}

// pairCertificates pairs certificates with keys by position, as nginx does.
func pairCertificates(ssl *SSLConf) error {
	j := 0
	for i := range ssl.Certificates {
		if ssl.Certificates[i].SelfSigned || ssl.Certificates[i].Internal || ssl.Certificates[i].ACME {
			continue
		}
		if j >= len(ssl.keys) {
			return ssl.Certificates[i].Pos.errorf("no \"ssl_certificate_key\" is defined for certificate %q", ssl.Certificates[i].Cert)
		}
		ssl.Certificates[i].Key = ssl.keys[j]
		ssl.Certificates[i].Passwords = ssl.Passwords.V
		j++
	}
	return nil
}

// finishLimitExcept merges a location's limit_except configuration from the location's own, as nginx merges
// the block's implicit location: everything is inherited (the content handler too) except try_files.
func (p *parser) finishLimitExcept(lc *LocConf) error {
	le := lc.LimitExcept
	if le == nil {
		return nil
	}
	c := le.Conf
	mergeOpts(c, lc)
	c.TryFiles = Opt[[]*vars.Template]{}
	c.Handler, c.Proxy, c.FastCGI, c.UWSGI, c.SCGI = lc.Handler, lc.Proxy, lc.FastCGI, lc.UWSGI, lc.SCGI
	c.Linger = lc.Linger // (compiled, not an Opt)
	p.compileLevel(c)
	return p.finishAccess(c, le.Pos)
}

// compileLevel builds what a merged level (server, location, if body, limit_except block) uses compiled: the
// gzip filter and the secure_link settings.
func (p *parser) compileLevel(lc *LocConf) {
	finishSub(lc)
	p.finishCharset(lc)
	finishGzip(lc)
	lc.ProxyCacheConf = lc.ProxyCache.compile(lc.ProxyIgnoreHeaders.V, true)
	lc.FastCGIOpts.CacheConf = lc.FastCGIOpts.Cache.compile(lc.FastCGIOpts.IgnoreHeaders.V, false)
	lc.UWSGIOpts.CacheConf = lc.UWSGIOpts.Cache.compile(lc.UWSGIOpts.IgnoreHeaders.V, false)
	lc.SCGIOpts.CacheConf = lc.SCGIOpts.Cache.compile(lc.SCGIOpts.IgnoreHeaders.V, false)
	lc.SecureLink = nil
	if lc.SecureLinkSecret.V != "" || lc.SecureLinkExpr.V != nil || lc.SecureLinkMD5.V != nil {
		lc.SecureLink = &vars.SecureLink{Expr: lc.SecureLinkExpr.V, MD5: lc.SecureLinkMD5.V, Secret: lc.SecureLinkSecret.V}
	}
}

// mergeIfConfs lets the bodies of `if` blocks inherit from their enclosing block.
func (p *parser) mergeIfConfs(ops []Op, outer *LocConf) {
	for i := range ops {
		if ops[i].Kind == OpIf {
			mergeOpts(ops[i].IfConf, outer)
			p.compileLevel(ops[i].IfConf)
			ops[i].IfConf.Linger = outer.Linger // (lingering_* are not allowed in if)
			p.mergeIfConfs(ops[i].Then, ops[i].IfConf)
		}
	}
}

// resolveProxy points proxy_pass at its upstream block when its host names one.
func (p *parser) resolveProxy(lc *LocConf) error {
	pp := lc.Proxy
	if pp == nil || pp.Template != nil {
		return nil
	}
	if u, ok := p.cfg.HTTP.Upstreams[pp.Host]; ok {
		pp.Upstream = u
		if u.HealthCheck != nil && !u.HealthCheck.SchemeSet && pp.Scheme == "https" {
			u.HealthCheck.TLS = true // the peers speak TLS, so must the probes
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(pp.Host); err != nil {
		port := "80"
		if pp.Scheme == "https" {
			port = "443"
		}
		pp.Port = port
		pp.Host = net.JoinHostPort(strings.Trim(pp.Host, "[]"), port)
		// keep the host as written for $proxy_host: nginx omits the default port
	}
	host, _, _ := net.SplitHostPort(pp.Host)
	if net.ParseIP(host) == nil {
		if _, err := net.LookupHost(host); err != nil {
			return pp.Pos.errorf("host not found in upstream %q", pp.Raw)
		}
	}
	return nil
}

// mergeOpts fills every Opt field of child that was not set from parent (nginx's merge for scalars; array
// directives are Opt too, so a level that sets any replaces the inherited list). The Opts of an UpstreamSSL,
// CacheOpts, Gateway or Spooling family are merged one by one.
func mergeOpts(child, parent any) {
	cv := reflect.ValueOf(child).Elem()
	pv := reflect.ValueOf(parent).Elem()
	for i := 0; i < cv.NumField(); i++ {
		f := cv.Field(i)
		if f.Kind() != reflect.Struct || !f.CanSet() {
			continue
		}
		if t := f.Type(); t == reflect.TypeFor[UpstreamSSL]() || t == reflect.TypeFor[CacheOpts]() || t == reflect.TypeFor[Gateway]() || t == reflect.TypeFor[Spooling]() {
			mergeOpts(f.Addr().Interface(), pv.Field(i).Addr().Interface())
			continue
		}
		set := f.FieldByName("Set")
		if !set.IsValid() || set.Kind() != reflect.Bool {
			continue
		}
		if !set.Bool() {
			f.Set(pv.Field(i))
		}
	}
}

func mergeSSL(child, parent *SSLConf) {
	if !child.VerifyClient.Set {
		child.VerifyPos = parent.VerifyPos
	}
	mergeOpts(child, parent)
	if !child.certSet {
		child.Certificates = append([]CertPair(nil), parent.Certificates...)
		child.certSet = parent.certSet
	}
	if !child.keysSet {
		child.keys = parent.keys
		child.keysSet = parent.keysSet
	}
}
