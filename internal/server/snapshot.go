package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/internal/access"
	"github.com/sluice-proxy/sluice/internal/acme"
	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/certs"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/h1"
	"github.com/sluice-proxy/sluice/internal/metrics"
	"github.com/sluice-proxy/sluice/internal/observe"
	"github.com/sluice-proxy/sluice/internal/route"
	"github.com/sluice-proxy/sluice/internal/stream"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// snapshot is one compiled configuration, immutable once built. Requests read the snapshot they started with;
// a reload builds a new one and swaps a pointer, so a snapshot that fails to build never replaces the running one.
type snapshot struct {
	cfg    *config.Config
	groups map[string]*group // by listen address as written ("0.0.0.0:443")
	// bind is the set of sockets to listen on: a wildcard address on a port also serves the specific
	// addresses on that port (nginx binds only the wildcard unless told otherwise).
	bind       map[string]config.Listen
	accessLogs map[string]*observe.File
	combined   *config.LogFormat
	// noUpstreamTimes: no template of the configuration reads $upstream_*_time (see vars.Request)
	noUpstreamTimes bool
	// bytesSent: a template reads $bytes_sent (an HTTP/2 or HTTP/3 head's size is estimated only then)
	bytesSent bool
	// defaultRoot is the document root without a root directive: the prefix's html directory.
	defaultRoot string
	locations   map[string]bool           // every location name, to find tunnels a reload orphaned
	zones       *access.Zones             // limit_req/limit_conn state, carried over from the previous snapshot
	zoneKeys    map[string]*vars.Template // each zone's key
	caches      map[string]*cache.Zone    // proxy_cache and fastcgi_cache zones by name, carried over from the previous snapshot by path
	// sessions are the shared ssl_session_cache caches by name, carried over from the previous snapshot when
	// their size is the same (a reload keeps the sessions)
	sessions     map[string]*certs.SessionCache
	prevSessions map[string]*certs.SessionCache // (while building)
	acmeSites    []acme.Site                    // servers with ssl_certificate acme
	acmeMgr      *acme.Manager                  // set when the snapshot goes live with acmeSites or stapled
	stapled      []*tls.Certificate             // certificate files with ssl_stapling on
	stream       *stream.Config                 // the stream block's servers by listening address
	// series caches each location's (or server's) metrics series: *config.Location or *config.Server ->
	// *metrics.Location; it lives and dies with the snapshot.
	series sync.Map
}

// locationMetrics returns the metrics series of a request's server and location, labelled by the server's first
// name and the location as written (both bounded by the configuration).
func (s *snapshot) locationMetrics(m *metrics.Metrics, srv *config.Server, loc *config.Location) *metrics.Location {
	var key any = srv
	if loc != nil {
		key = loc
	}
	if v, ok := s.series.Load(key); ok {
		return v.(*metrics.Location)
	}
	server, location := "", ""
	if srv != nil && len(srv.Names) > 0 {
		server = srv.Names[0]
	}
	if loc != nil {
		location = loc.Name()
	}
	v, _ := s.series.LoadOrStore(key, m.For(server, location))
	return v.(*metrics.Location)
}

// group is every server listening on one address.
type group struct {
	addr          string
	ssl, http2    bool
	proxyProtocol bool   // connections start with a PROXY protocol header
	extConnect    bool   // http2_extended_connect: advertise RFC 8441 on HTTP/2 connections
	h2MaxStreams  int    // http2_max_concurrent_streams
	quic, http3   bool   // a `listen … quic` UDP socket; http3 on for its default server
	altSvc        string // Alt-Svc announcing HTTP/3 on this TLS listener's port, "" for none
	index         *route.ServerIndex[*config.Server]
	tlsConfig     *tls.Config
	// clientAuth is each SNI entry's ssl_verify_client settings (nil where off), in the order of sel's entries;
	// nil when no server of the socket checks client certificates
	clientAuth       []*certs.ClientAuth
	sel              *certs.Selector
	handshakeTimeout time.Duration
	headerTimeout    time.Duration
	idleTimeout      time.Duration
	maxHeaderBytes   int
	linger           *h1.Linger // the default server's lingering_*, for a refused head (nil: nginx's defaults)
}

// groupFor finds the group for a connection accepted on the socket bound to bound, using its local address
// (local.String(), computed once per connection; "" for none).
func (s *snapshot) groupFor(bound string, local string) *group {
	if local != "" {
		if g, ok := s.groups[local]; ok {
			return g
		}
	}
	return s.groups[bound]
}

// build compiles a configuration into a snapshot: certificates are loaded and log files opened here, so every
// error surfaces before anything changes. Limit zones of prev (the running snapshot, or nil) that keep their
// name and size keep their state. With dry (a check) it writes no certificate or CA files.
func build(cfg *config.Config, files *observe.Files, prev *snapshot, dry bool) (*snapshot, error) {
	snap, err := buildHTTP(cfg, files, prev, dry)
	if err != nil {
		return nil, err
	}
	var prevStream *stream.Config
	if prev != nil {
		prevStream = prev.stream
	}
	if err := snap.addStream(files, prevStream, dry); err != nil {
		return nil, err
	}
	snap.prevSessions = nil
	return snap, nil
}

// addStream compiles the stream block into the snapshot and adds its sockets to the set to bind. An address
// may be http's or stream's, not both.
func (s *snapshot) addStream(files *observe.Files, prev *stream.Config, dry bool) error {
	st, err := stream.Compile(s.cfg.Stream, prev, files, func(ss *config.StreamServer) (*tls.Config, error) {
		// a stream server's certificates load as an http server's would (self-signed included)
		srv := &config.Server{Names: []string{""}, Srv: ss.Srv, Pos: ss.Pos}
		var list []*tls.Certificate
		for _, cp := range ss.Srv.SSL.Certificates {
			c, err := loadCert(s.cfg, srv, cp, dry)
			if err != nil {
				return nil, err
			}
			list = append(list, c)
		}
		tc, _, err := s.tlsConfig(srv, []certs.SNIEntry{{Names: srv.Names, Default: true, Certs: list}}, false)
		if err != nil {
			return nil, err
		}
		tc.NextProtos = nil // the session's protocol is the upstream's business
		return tc, nil
	})
	if err != nil {
		return err
	}
	for addr, l := range st.Listens() {
		if _, ok := s.groups["quic/"+l.Addr]; ok && l.UDP {
			return &config.Error{File: l.Pos.File, Line: l.Pos.Line, Msg: "duplicate listen " + l.Addr + " udp (an http server listens there with quic)"}
		}
		if _, ok := s.groups[addr]; ok {
			return &config.Error{File: l.Pos.File, Line: l.Pos.Line, Msg: "duplicate listen " + addr + " (an http server listens there)"}
		}
		s.bind[addr] = l
	}
	s.stream = st
	return nil
}

// buildHTTP compiles the http block of cfg into a new snapshot.
func buildHTTP(cfg *config.Config, files *observe.Files, prev *snapshot, dry bool) (*snapshot, error) {
	snap := &snapshot{cfg: cfg, groups: map[string]*group{}, bind: map[string]config.Listen{}, accessLogs: map[string]*observe.File{},
		zones: access.NewZones(), zoneKeys: map[string]*vars.Template{}}
	snap.locations = locationNames(cfg)
	if prev != nil {
		snap.prevSessions = prev.sessions
	}
	snap.defaultRoot = strings.TrimSuffix(cfg.Prefix, "/") + "/html"
	h := cfg.HTTP
	if h == nil {
		return snap, nil
	}
	var prevZones *access.Zones
	if prev != nil {
		prevZones = prev.zones
	}
	for _, z := range h.ReqZones {
		snap.zones.AddReq(prevZones, z.Name, z.Size, z.Rate)
		snap.zoneKeys[z.Name] = z.Key
	}
	for _, z := range h.ConnZones {
		snap.zones.AddConn(prevZones, z.Name, z.Size)
		snap.zoneKeys[z.Name] = z.Key
	}
	if !dry {
		var prevCaches map[string]*cache.Zone
		if prev != nil {
			prevCaches = prev.caches
		}
		snap.caches = map[string]*cache.Zone{}
		for _, cp := range h.CachePaths {
			z, err := cache.Open(cp.Spec, prevCaches)
			if err != nil {
				return nil, &config.Error{File: cp.Pos.File, Line: cp.Pos.Line, Msg: cp.Module + "_cache_path: " + err.Error()}
			}
			snap.caches[cp.Name] = z
		}
	}
	snap.combined = compileCombined(h.Vars)
	snap.noUpstreamTimes = !h.Vars.UpstreamTimes() // every template is compiled by now
	snap.bytesSent = h.Vars.BytesSent()
	type member struct {
		srv *config.Server
		l   config.Listen
	}
	loadedAuth := map[*config.Server]*certs.ClientAuth{} // each server's client certificate files, read once
	byAddr := map[string][]member{}
	var order []string
	for _, srv := range h.Servers {
		seen := map[string]bool{}
		for _, l := range srv.Listens {
			key := listenKey(l)
			if seen[key] {
				return nil, &config.Error{File: l.Pos.File, Line: l.Pos.Line, Msg: fmt.Sprintf("duplicate listen %s", l.Addr)}
			}
			seen[key] = true
			if _, ok := byAddr[key]; !ok {
				order = append(order, key)
			}
			byAddr[key] = append(byAddr[key], member{srv, l})
		}
	}
	for _, addr := range order {
		ms := byAddr[addr]
		g := &group{addr: addr, handshakeTimeout: 60 * time.Second}
		var entries []route.ServerEntry[*config.Server]
		var sni []certs.SNIEntry
		hasACME := false
		defaults := 0
		for _, m := range ms {
			g.ssl = g.ssl || m.l.SSL || m.l.QUIC
			g.quic = m.l.QUIC
			g.http2 = g.http2 || m.l.HTTP2 || m.srv.Srv.HTTP2.Get(false)
			g.proxyProtocol = g.proxyProtocol || m.l.ProxyProtocol
			if m.l.DefaultServer {
				defaults++
				if defaults > 1 {
					return nil, &config.Error{File: m.l.Pos.File, Line: m.l.Pos.Line, Msg: "a duplicate default server for " + addr}
				}
			}
			entries = append(entries, route.ServerEntry[*config.Server]{Names: m.srv.Names, Default: m.l.DefaultServer, Value: m.srv})
		}
		idx, err := route.NewServerIndex(entries)
		if err != nil {
			return nil, &config.Error{File: ms[0].srv.Pos.File, Line: ms[0].srv.Pos.Line, Msg: err.Error()}
		}
		g.index = idx
		// the default server decides per-socket settings, as in nginx
		def, _, _ := idx.Select("")
		g.headerTimeout = def.Srv.ClientHeaderTimeout.Get(60 * time.Second)
		g.handshakeTimeout = g.headerTimeout
		g.idleTimeout = def.Loc.KeepaliveTimeout.Get(75 * time.Second)
		g.linger = def.Loc.Linger
		// net/http allows MaxHeaderBytes plus 4096 bytes of bufio slack: subtract it so the limit is the one written
		g.maxHeaderBytes = max(def.Srv.LargeHeaderBuffers.Get(4*8<<10)-4096, 1)
		g.extConnect = def.Srv.HTTP2ExtConnect.Get(true)
		g.h2MaxStreams = def.Srv.HTTP2MaxStreams.Get(128)
		if g.ssl {
			var auths []*certs.ClientAuth
			checks := false
			for _, m := range ms {
				var list []*tls.Certificate
				var get func(*tls.ClientHelloInfo) (*tls.Certificate, error)
				for _, cp := range m.srv.Srv.SSL.Certificates {
					if cp.ACME {
						get = snap.acmeCertificate
						if g.quic {
							continue // managed through the TLS listener; QUIC has no TLS-ALPN-01
						}
						site, err := acmeSite(m.srv, h.Servers, cp, addr)
						if err != nil {
							return nil, err
						}
						snap.acmeSites = append(snap.acmeSites, site)
						hasACME = true
						continue
					}
					if cp.Internal {
						if get, err = internalSource(cfg, m.srv, cp, dry); err != nil {
							return nil, err
						}
						continue
					}
					c, err := loadCert(cfg, m.srv, cp, dry)
					if err != nil {
						return nil, err
					}
					list = append(list, c)
				}
				if m.srv.Srv.SSL.Reject.Get(false) {
					list, get = nil, nil // ssl_reject_handshake: a handshake that selects this server fails
				} else if len(list) == 0 && get == nil {
					continue
				}
				if ssl := &m.srv.Srv.SSL; get == nil && ssl.Stapling.Get(false) {
					if der := ssl.StaplingFile.V; der != nil {
						list = stapledFromFile(list, der)
					} else {
						get = snap.stapling(list)
					}
				}
				sni = append(sni, certs.SNIEntry{Names: m.srv.Names, Default: m.srv == def, Certs: list, Get: get})
				a, err := clientAuth(m.srv, loadedAuth)
				if err != nil {
					return nil, err
				}
				auths = append(auths, a)
				checks = checks || a != nil
			}
			tc, sel, err := snap.tlsConfig(def, sni, g.http2)
			if err != nil {
				return nil, err
			}
			g.sel = sel
			if g.quic {
				tc.NextProtos = []string{"h3"}
				tc.MinVersion, tc.MaxVersion = tls.VersionTLS13, 0 // QUIC is TLS 1.3 only
				g.http3 = def.Srv.HTTP3.Get(true)
			}
			if hasACME {
				// TLS-ALPN-01: the CA's validation handshake asks for acme-tls/1 and gets the challenge certificate
				tc.NextProtos = append(tc.NextProtos, acmeTLSALPN)
				sel := tc.GetCertificate
				tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
					if slices.Contains(hello.SupportedProtos, acmeTLSALPN) {
						return snap.acmeCertificate(hello)
					}
					return sel(hello)
				}
			}
			if checks {
				g.clientAuth = auths
				askClientCerts(tc, sel, auths)
			}
			g.tlsConfig = tc
		}
		snap.groups[addr] = g
	}
	// bind wildcards; specific addresses only where no wildcard covers their port
	wild := map[string]bool{}
	quicPorts := map[string]bool{}
	for _, key := range order {
		l := byAddr[key][0].l
		host, port, _ := net.SplitHostPort(l.Addr)
		if host == "0.0.0.0" || host == "::" {
			wild[listenProto(l)+port+"/"+family(host)] = true
		}
		if l.QUIC && snap.groups[key].http3 {
			quicPorts[port] = true
		}
	}
	for _, key := range order {
		l := byAddr[key][0].l
		host, port, _ := net.SplitHostPort(l.Addr)
		if g := snap.groups[key]; g.ssl && !g.quic && quicPorts[port] {
			g.altSvc = `h3=":` + port + `"; ma=86400` // announce HTTP/3 on the TLS listener of the same port
		}
		if host != "0.0.0.0" && host != "::" && wild[listenProto(l)+port+"/"+family(host)] {
			continue
		}
		snap.bind[key] = l
	}
	if err := openAccessLogs(snap, files); err != nil {
		return nil, err
	}
	return snap, nil
}

// listenKey names a listening socket: the address, prefixed "quic/" for UDP (QUIC) sockets, which may share
// the address of a TCP one.
func listenKey(l config.Listen) string { return listenProto(l) + l.Addr }

func listenProto(l config.Listen) string {
	if l.QUIC {
		return "quic/"
	}
	return ""
}

func family(host string) string {
	if strings.Contains(host, ":") {
		return "6"
	}
	return "4"
}

func loadCert(cfg *config.Config, srv *config.Server, cp config.CertPair, dry bool) (*tls.Certificate, error) {
	certFile, keyFile := cp.Cert, cp.Key
	if cp.SelfSigned {
		names := []string{"localhost", "127.0.0.1", "::1"}
		for _, n := range srv.Names {
			if n != "" && !strings.ContainsAny(n, "*~") && n != "localhost" && n != "127.0.0.1" {
				names = append(names, strings.TrimPrefix(n, "."))
			}
		}
		dir := filepath.Join(cfg.Prefix, "certs")
		var err error
		if dry {
			var c *tls.Certificate
			if c, err = certs.CheckSelfSigned(dir, names); err == nil {
				return c, nil
			}
		} else {
			certFile, keyFile, err = certs.SelfSigned(dir, names)
		}
		if err != nil {
			return nil, &config.Error{File: cp.Pos.File, Line: cp.Pos.Line, Msg: "cannot create self-signed certificate: " + err.Error()}
		}
	}
	c, err := certs.Load(certFile, keyFile, cp.Passwords)
	if err != nil {
		return nil, &config.Error{File: cp.Pos.File, Line: cp.Pos.Line, Msg: "cannot load certificate: " + err.Error()}
	}
	return c, nil
}

// internalSource is the certificate source of a server with ssl_certificate internal: issued by the internal CA
// now, replaced near expiry while running.
func internalSource(cfg *config.Config, srv *config.Server, cp config.CertPair, dry bool) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	load := certs.LoadInternalCA
	if dry {
		load = certs.CheckInternalCA
	}
	ca, err := load(InternalCADir(cfg.Prefix))
	if err != nil {
		return nil, &config.Error{File: cp.Pos.File, Line: cp.Pos.Line, Msg: "internal CA: " + err.Error()}
	}
	get, err := ca.Source(certNames(srv))
	if err != nil {
		return nil, &config.Error{File: cp.Pos.File, Line: cp.Pos.Line, Msg: "internal CA: " + err.Error()}
	}
	return get, nil
}

// InternalCADir is where the internal CA (ssl_certificate internal) is kept under a prefix.
func InternalCADir(prefix string) string { return filepath.Join(prefix, "certs", "ca") }

// certNames are the names a certificate for srv must carry: its server_names that are host names or
// leading wildcards (".example.com" gives example.com and *.example.com), else localhost and the loopback addresses.
func certNames(srv *config.Server) []string {
	var names []string
	for _, n := range srv.Names {
		switch {
		case n == "" || n == "_" || n[0] == '~' || n == "$hostname":
			continue
		case n[0] == '.':
			names = append(names, n[1:], "*"+n)
		case strings.HasPrefix(n, "*.") && strings.Count(n, "*") == 1, !strings.Contains(n, "*"):
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		names = []string{"localhost", "127.0.0.1", "::1"}
	}
	return names
}

// clientAuth loads the client certificate settings of srv (nil with ssl_verify_client off), once per server.
func clientAuth(srv *config.Server, loaded map[*config.Server]*certs.ClientAuth) (*certs.ClientAuth, error) {
	ssl := &srv.Srv.SSL
	if ssl.VerifyClient.V == certs.VerifyOff {
		return nil, nil
	}
	if a, ok := loaded[srv]; ok {
		return a, nil
	}
	for _, f := range []config.Opt[config.PathAt]{ssl.ClientCertificate, ssl.TrustedCertificate, ssl.CRL} {
		if !f.Set {
			continue
		}
		if _, err := os.Stat(f.V.Path); err != nil {
			return nil, &config.Error{File: f.V.Pos.File, Line: f.V.Pos.Line, Msg: err.Error()}
		}
	}
	a, err := certs.LoadClientAuth(ssl.VerifyClient.V, ssl.ClientCertificate.V.Path, ssl.TrustedCertificate.V.Path, ssl.CRL.V.Path, ssl.VerifyDepth.Get(1))
	if err != nil {
		return nil, &config.Error{File: ssl.VerifyPos.File, Line: ssl.VerifyPos.Line, Msg: "ssl_verify_client: " + err.Error()}
	}
	loaded[srv] = a
	return a, nil
}

// askClientCerts makes the handshakes of the servers with ssl_verify_client (auths, by SNI entry of sel) ask for
// a client certificate, with their ssl_client_certificate CAs as the acceptable ones. Go's check is off
// (RequestClientCert): the certificate is verified after the handshake, which succeeds whatever the client
// sends, as nginx's accepting verify callback lets it (see verifyClient). Each such server gets its own session
// ticket keys, as every nginx server has, so a session is not resumed under another server's name.
func askClientCerts(tc *tls.Config, sel *certs.Selector, auths []*certs.ClientAuth) {
	per := make([]*tls.Config, len(auths))
	for i, a := range auths {
		if a == nil {
			continue
		}
		c := tc.Clone()
		c.ClientAuth = tls.RequestClientCert
		c.ClientCAs = a.Names
		var key [32]byte
		rand.Read(key[:])
		c.SetSessionTicketKeys([][32]byte{key})
		per[i] = c
	}
	tc.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		return per[sel.Index(hello.ServerName)], nil // nil: the socket's own settings
	}
}

// verifyClient checks the client certificate of a connection whose handshake completed on g, with the settings
// of the server its SNI name chose; nil when that server did not ask for one.
func (g *group) verifyClient(st *tls.ConnectionState) *certs.ClientResult {
	a := g.clientAuth[g.sel.Index(st.ServerName)]
	if a == nil {
		return nil
	}
	return a.Verify(st.PeerCertificates, time.Now())
}

// tlsConfig builds the TLS settings of one socket from its default server's ssl_* directives, and the
// selector of its servers' certificates by SNI.
func (snap *snapshot) tlsConfig(def *config.Server, sni []certs.SNIEntry, h2 bool) (*tls.Config, *certs.Selector, error) {
	if len(sni) == 0 {
		return nil, nil, &config.Error{File: def.Pos.File, Line: def.Pos.Line, Msg: "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive"}
	}
	sel, err := certs.NewSelector(sni)
	if err != nil {
		return nil, nil, &config.Error{File: def.Pos.File, Line: def.Pos.Line, Msg: err.Error()}
	}
	ssl := def.Srv.SSL
	minV, maxV, _, err := certs.Protocols(ssl.Protocols.V)
	if err != nil {
		return nil, nil, &config.Error{File: def.Pos.File, Line: def.Pos.Line, Msg: "ssl_protocols: " + err.Error()}
	}
	tc := &tls.Config{
		GetCertificate:         sel.GetCertificate,
		MinVersion:             minV,
		MaxVersion:             maxV,
		SessionTicketsDisabled: !ssl.SessionTickets.Get(true),
		CurvePreferences:       ssl.Curves.V,
		NextProtos:             []string{"http/1.1"},
		// nginx's ssl_buffer_size 16k: full-size records; Go's dynamic sizing otherwise splits a response of
		// more than ~1.2 KB into several records (writes) for the first 128 KiB of every connection
		DynamicRecordSizingDisabled: ssl.BufferSize.Get(16<<10) >= 16<<10,
	}
	if h2 {
		tc.NextProtos = []string{"h2", "http/1.1"}
	}
	if files := ssl.TicketKeys.V; len(files) > 0 {
		keys := make([][32]byte, len(files))
		for i, f := range files {
			b, err := os.ReadFile(f.Path)
			if err == nil && len(b) != 48 && len(b) != 80 {
				err = errors.New("it must be 48 or 80 bytes")
			}
			if err != nil {
				return nil, nil, &config.Error{File: f.Pos.File, Line: f.Pos.Line, Msg: "ssl_session_ticket_key " + strconv.Quote(f.Path) + ": " + err.Error()}
			}
			keys[i] = sha256.Sum256(b) // Go's ticket key, from the whole file (name and keys alike)
		}
		tc.SetSessionTicketKeys(keys)
	}
	if ssl.Ciphers.Set {
		ids, _, err := certs.CipherSuites(ssl.Ciphers.V)
		if err != nil {
			return nil, nil, &config.Error{File: def.Pos.File, Line: def.Pos.Line, Msg: "ssl_ciphers: " + err.Error()}
		}
		tc.CipherSuites = ids
	}
	if tc.CipherSuites == nil {
		tc.CipherSuites = certs.AEADSuites() // Go's own defaults still include CBC suites
	}
	// Session ticket keys: crypto/tls generates them and rotates them daily (each accepted for a week) when the
	// configuration sets none; a reload starts a new set.
	if !ssl.SessionTickets.Get(true) {
		if c := snap.sessionCache(ssl.SessionCache.V); c != nil {
			c.SetTimeout(ssl.SessionTimeout.Get(5 * time.Minute))
			c.Use(tc)
		}
	}
	return tc, sel, nil
}

// sessionCache is the cache ssl_session_cache names: a shared one by name (the previous snapshot's when its
// size is the same), a builtin one of its own; nil for none or off.
func (snap *snapshot) sessionCache(sc config.SessionCache) *certs.SessionCache {
	if sc.Off || sc.Sessions == 0 {
		return nil
	}
	if sc.Name == "" {
		return certs.NewSessionCache(sc.Sessions)
	}
	if snap.sessions == nil {
		snap.sessions = map[string]*certs.SessionCache{}
	}
	if c := snap.sessions[sc.Name]; c != nil {
		return c
	}
	c := snap.prevSessions[sc.Name]
	if c == nil || c.Max() != sc.Sessions {
		c = certs.NewSessionCache(sc.Sessions)
	}
	snap.sessions[sc.Name] = c
	return c
}

// openAccessLogs opens every access log file the configuration names.
func openAccessLogs(snap *snapshot, files *observe.Files) error {
	visit := func(lc *config.LocConf) error {
		for _, t := range lc.AccessLogs.V {
			if t.Path == "off" {
				continue
			}
			if _, ok := snap.accessLogs[t.Path]; ok {
				continue
			}
			f, err := files.Open(t.Path, t.Buffer, t.Flush)
			if err != nil {
				return &config.Error{Msg: fmt.Sprintf("cannot open access log %q: %v", t.Path, err)}
			}
			snap.accessLogs[t.Path] = f
		}
		return nil
	}
	var walk func(ls []*config.Location) error
	walk = func(ls []*config.Location) error {
		for _, l := range ls {
			if err := visit(l.Conf); err != nil {
				return err
			}
			if err := walk(l.Children); err != nil {
				return err
			}
		}
		return nil
	}
	for _, srv := range snap.cfg.HTTP.Servers {
		if err := visit(srv.Loc); err != nil {
			return err
		}
		if err := walk(srv.Locations); err != nil {
			return err
		}
	}
	return nil
}
