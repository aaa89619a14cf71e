// Package config turns nginx-language configuration text into validated, typed structures.
//
// Text is parsed by nginx-go-crossplane into a directive tree; each directive is then handled by the one
// entry of the directive registry that owns it (see registry.go and the per-module tables in this package),
// which checks its context and arguments and fills the typed structures below. Location-level settings are
// merged down from http to server to location with nginx's rules once the whole file is read.
package config

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"time"

	"github.com/sluice-proxy/sluice/internal/access"
	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/certs"
	"github.com/sluice-proxy/sluice/internal/charset"
	"github.com/sluice-proxy/sluice/internal/compress"
	"github.com/sluice-proxy/sluice/internal/h1"
	"github.com/sluice-proxy/sluice/internal/route"
	"github.com/sluice-proxy/sluice/internal/static"
	"github.com/sluice-proxy/sluice/internal/subfilter"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// Config is one complete, validated configuration.
type Config struct {
	File   string // main configuration file ("" for the built-in default)
	Prefix string // prefix directory that relative paths resolve against
	Source []SourceFile

	Pid                   string        // pid file path (absolute)
	ErrorLogs             []LogTarget   // main-level error_log
	WorkerShutdownTimeout time.Duration // 0 = no limit
	WorkerProcesses       int           // cores to use (GOMAXPROCS); 0 = auto (every core)
	// WorkerPriority is worker_priority's nice value; WorkerRlimitCore worker_rlimit_core in bytes (-1: unset)
	WorkerPriority   Opt[int]
	WorkerRlimitCore Opt[int64]
	HTTP             *HTTP
	Stream           *Stream  // the stream block (TCP proxying); nil without one
	Warnings         []*Error // legal but likely mistaken settings, reported at start and by -t
}

// SourceFile is one file that was read, for `sluice -T`.
type SourceFile struct {
	Name string
	Text []byte
}

// LogTarget names a log destination and its level or format.
type LogTarget struct {
	Path   string // absolute path, "stderr", "stdout" or "off"
	Level  string // error_log level
	Format string // access_log format name
	Buffer int
	Flush  time.Duration
}

// HTTP is the http block.
type HTTP struct {
	Servers    []*Server
	Upstreams  map[string]*Upstream
	LogFormats map[string]*LogFormat
	Vars       *vars.Table
	ReqZones   []ZoneSpec   // limit_req_zone
	ConnZones  []ZoneSpec   // limit_conn_zone
	CachePaths []CachePath  // proxy_cache_path, fastcgi_cache_path
	Resolver   *Resolver    // http-level resolver, for upstream servers marked resolve
	Charsets   *charset.Set // the charsets named by charset, source_charset and charset_map; nil: none
	Loc        *LocConf     // http-level values of location-scope directives
	Srv        SrvConf      // http-level values of server-scope directives
}

// LogFormat is a compiled log_format.
type LogFormat struct {
	Name     string
	Escape   vars.Escape
	Template *vars.Template
}

// Listen is one `listen` directive.
type Listen struct {
	Addr          string // host:port as bound ("0.0.0.0:443", "[::]:443", "127.0.0.1:8080")
	SSL           bool
	HTTP2         bool
	DefaultServer bool
	Reuseport     bool
	Backlog       int
	IPv6Only      bool // an IPv6 wildcard socket accepts IPv6 only (default on, as nginx)
	ProxyProtocol bool // every connection starts with a PROXY protocol (v1 or v2) header
	QUIC          bool // `listen … quic`: a UDP socket serving HTTP/3
	UDP           bool // `listen … udp` in stream: datagrams, a session per client address and port
	// KeepAlive is so_keepalive: TCP keep-alive probes on accepted connections, off unless set (as nginx).
	KeepAlive net.KeepAliveConfig
	Pos       Pos
}

// SrvConf holds directives whose scope is the server (settable at http level and inherited).
type SrvConf struct {
	ClientHeaderTimeout Opt[time.Duration]
	HTTP2               Opt[bool]
	HTTP2ExtConnect     Opt[bool] // http2_extended_connect: WebSocket over HTTP/2 (RFC 8441)
	HTTP2MaxStreams     Opt[int]  // http2_max_concurrent_streams
	HTTP3               Opt[bool] // http3: serve HTTP/3 on the server's quic listeners
	MergeSlashes        Opt[bool]
	SSL                 SSLConf
	LargeHeaderBuffers  Opt[int] // total header bytes limit (number*size)
	RealIPFrom          Opt[[]netip.Prefix]
	RealIPHeader        Opt[string]
	RealIPRecursive     Opt[bool]
	RealIP              *access.RealIP // compiled from the three above once merged; nil without set_real_ip_from
}

// SSLConf holds ssl_* directives.
type SSLConf struct {
	Certificates   []CertPair
	certSet        bool
	keys           []string
	keysSet        bool
	Protocols      Opt[[]string]
	Ciphers        Opt[string]
	Curves         Opt[[]tls.CurveID] // ssl_ecdh_curve (nil: Go's defaults)
	SessionTimeout Opt[time.Duration]
	SessionTickets Opt[bool]
	SessionCache   Opt[SessionCache]      // ssl_session_cache
	BufferSize     Opt[int64]             // ssl_buffer_size
	Stapling       Opt[bool]              // ssl_stapling
	StaplingFile   Opt[[]byte]            // ssl_stapling_file: the DER OCSP response, read at load
	Reject         Opt[bool]              // ssl_reject_handshake
	TicketKeys     Opt[[]PathAt]          // ssl_session_ticket_key files (the first encrypts)
	Passwords      Opt[certs.Passphrases] // ssl_password_file
	// client certificates (mutual TLS)
	VerifyClient       Opt[certs.VerifyMode] // ssl_verify_client
	VerifyPos          Pos                   // where ssl_verify_client was set (inherited with it)
	ClientCertificate  Opt[PathAt]           // ssl_client_certificate: CAs sent to clients and trusted
	TrustedCertificate Opt[PathAt]           // ssl_trusted_certificate: more trusted CAs, not sent
	VerifyDepth        Opt[int]              // ssl_verify_depth
	CRL                Opt[PathAt]           // ssl_crl
	ACMECA             Opt[string]           // acme_ca: directory URL
	ACMEEmail          Opt[string]
	ACMECARoot         Opt[string]        // acme_ca_root: PEM roots for the CA's own HTTPS
	ACMEStorage        Opt[string]        // acme_storage (http level)
	ACMERenew          Opt[time.Duration] // acme_renew_interval (http level)
}

// PathAt is a file named by a directive, with the directive's place for errors about the file.
type PathAt struct {
	Path string
	Pos  Pos
}

// CertPair is one certificate and key. SelfSigned marks the `self-signed` keyword, Internal the `internal` one
// (issued by the internal CA kept under the prefix), ACME the `acme` one; none has files.
type CertPair struct {
	Cert, Key  string
	Passwords  certs.Passphrases // ssl_password_file, for an encrypted key
	SelfSigned bool
	Internal   bool
	ACME       bool // `acme`: obtained and renewed from the ACME CA (acme_ca)
	Pos        Pos
}

// Server is one server block.
type Server struct {
	Listens   []Listen
	Names     []string
	Locations []*Location
	Ops       []Op // server-level rewrite module directives (set, return, rewrite, if)
	Loc       *LocConf
	Srv       SrvConf
	Matcher   *route.Matcher[*Location]
	Pos       Pos

	sslOn bool // obsolete `ssl on;`
}

// Location is one location block (or the implicit one of a server's `if`).
type Location struct {
	Modifier route.Modifier
	Pattern  string
	Children []*Location
	Ops      []Op
	Conf     *LocConf
	Parent   *Location
	Internal bool // `internal`: reachable only by internal redirects (error_page, try_files, index)
	Pos      Pos
}

// Name is the location as written, for logs and metrics ("= /x", "~ \.php$", "/wss").
func (l *Location) Name() string {
	switch l.Modifier {
	case route.Exact:
		return "= " + l.Pattern
	case route.PrefixNoRegex:
		return "^~ " + l.Pattern
	case route.Regex:
		return "~ " + l.Pattern
	case route.RegexCaseless:
		return "~* " + l.Pattern
	case route.Named:
		return "@" + l.Pattern
	}
	return l.Pattern
}

// Handler is the content handler a location runs.
type Handler int

const (
	HandlerNone Handler = iota // static files
	HandlerProxy
	HandlerFastCGI
	HandlerWebSocketEcho
	HandlerWelcome
	HandlerMetrics    // Prometheus text exposition
	HandlerStubStatus // nginx's stub_status text
	HandlerEmptyGIF   // empty_gif: a 1×1 transparent GIF
	HandlerStatusPage // the live HTML dashboard and its event stream
	HandlerGRPC       // grpc_pass
	HandlerUWSGI      // uwsgi_pass
	HandlerSCGI       // scgi_pass
)

// LocConf holds location-scope directives: settable in http, server and location, merged down with nginx's rules.
type LocConf struct {
	Handler Handler
	Proxy   *ProxyPass   // set by proxy_pass (not inherited)
	FastCGI *GatewayPass // set by fastcgi_pass (not inherited)
	UWSGI   *GatewayPass // set by uwsgi_pass (not inherited)
	SCGI    *GatewayPass // set by scgi_pass (not inherited)
	GRPC    *GRPCPass    // set by grpc_pass (not inherited)

	// grpc_*
	GRPCSetHeaders                                       Opt[[]HeaderSet]
	GRPCHideHeaders, GRPCPassHeaders                     Opt[[]string]
	GRPCConnectTimeout, GRPCReadTimeout, GRPCSendTimeout Opt[time.Duration]
	GRPCInterceptErrors                                  Opt[bool]
	GRPCNextUpstream                                     Opt[NextUpstream]
	GRPCNextTries                                        Opt[int]
	GRPCNextTimeout                                      Opt[time.Duration]
	GRPCSSL                                              UpstreamSSL

	Root         Opt[*vars.Template]
	Index        Opt[[]*vars.Template]
	DefaultType  Opt[string]
	Types        Opt[map[string]string]
	ServerTokens Opt[bool]
	// redirects sluice writes (return, rewrite, error_page, /dir → /dir/): absolute URL, with the port, with
	// the server's name instead of the request's host
	AbsoluteRedirect, PortInRedirect, ServerNameInRedirect Opt[bool]
	// HasResolver: a resolver directive applies here (http, server or location); proxy_pass with variables
	// resolves a host name at request time only then, as nginx
	HasResolver Opt[bool]
	// UnderscoresInHeaders: request header names with "_" are passed to upstreams and FastCGI (off: dropped)
	UnderscoresInHeaders Opt[bool]

	AddHeaders Opt[[]AddHeader]
	ErrorPages Opt[[]ErrorPage]
	// RecursiveErrorPages: an error in the target of an error_page may run an error_page again
	RecursiveErrorPages Opt[bool]
	AccessLogs          Opt[[]LogTarget]
	ErrorLogs           Opt[[]LogTarget]
	MaxBodySize         Opt[int64]

	ClientBodyTimeout Opt[time.Duration]
	Chunked           Opt[bool] // chunked_transfer_encoding
	SendTimeout       Opt[time.Duration]
	LimitRate         Opt[*vars.Template] // limit_rate (a size, variables allowed)
	LimitRateAfter    Opt[*vars.Template] // limit_rate_after
	KeepaliveTimeout  Opt[time.Duration]
	KeepaliveRequests Opt[int]
	KeepaliveTime     Opt[time.Duration]
	LingeringClose    Opt[h1.LingerMode]
	LingeringTime     Opt[time.Duration]
	LingeringTimeout  Opt[time.Duration]

	ProxyHTTPVersion       Opt[string]
	ProxySetHeaders        Opt[[]HeaderSet]
	ProxyHideHeaders       Opt[[]string]
	ProxyIgnoreHeaders     Opt[IgnoreHeaders]
	ProxyPassHeaders       Opt[[]string]
	ProxyCookieDomain      Opt[[]CookieRewrite] // set with no rule: off
	ProxyCookiePath        Opt[[]CookieRewrite]
	ProxyCookieFlags       Opt[[]CookieFlags] // set with no rule: off
	ProxyMethod            Opt[*vars.Template]
	ProxyIgnoreClientAbort Opt[bool]
	ProxySocketKeepalive   Opt[bool]
	ProxyBind              Opt[*Bind] // nil value: off
	ProxySSLSessionReuse   Opt[bool]
	ProxyLimitRate         Opt[int64] // bytes per second; 0: no limit
	ProxyPassReqHeaders    Opt[bool]
	ProxyPassReqBody       Opt[bool]
	ProxyRedirect          Opt[[]Redirect] // nil value with Set = off
	ProxyConnectTimeout    Opt[time.Duration]
	ProxyReadTimeout       Opt[time.Duration]
	ProxySendTimeout       Opt[time.Duration]
	ProxyBuffering         Opt[bool]
	ProxyForceRanges       Opt[bool]
	ProxySpool             Spooling // proxy_buffers, proxy_max_temp_file_size, proxy_temp_path (spool.go)
	ProxyRequestBuffering  Opt[bool]
	ProxyInterceptErrors   Opt[bool]
	ProxySetBody           Opt[*vars.Template]
	ProxyWebsocket         Opt[bool]
	ProxyTunnelTimeout     Opt[time.Duration]
	ProxyCache             CacheOpts   // proxy_cache and its directives (cache.go)
	ProxySSL               UpstreamSSL // proxy_ssl_*
	ProxyNextUpstream      Opt[NextUpstream]
	ProxyNextTries         Opt[int]
	ProxyNextTimeout       Opt[time.Duration]
	// stream servers only (stream.go)
	StreamTimeout       Opt[time.Duration] // proxy_timeout
	StreamNext          Opt[bool]          // proxy_next_upstream on|off
	StreamProxyProtocol Opt[bool]          // proxy_protocol: a PROXY v1 header toward the upstream
	SSLPreread          Opt[bool]          // ssl_preread
	StreamResponses     Opt[int]           // proxy_responses: replies that end a UDP session (unset: unlimited)
	StreamRequests      Opt[int]           // proxy_requests: client datagrams after which a UDP session takes no more

	CORSOrigins      Opt[*access.Origins]
	CORSMethods      Opt[[]string]
	CORSHeaders      Opt[[]string]
	CORSExpose       Opt[[]string]
	CORSCredentials  Opt[bool]
	CORSMaxAge       Opt[time.Duration]
	WebSocketOrigins Opt[*access.Origins]
	Access           Opt[[]access.Rule]  // allow/deny in order
	SatisfyAny       Opt[bool]           // satisfy any: allow/deny or auth_basic suffices
	AuthDelay        Opt[time.Duration]  // auth_delay
	AuthRequest      Opt[string]         // auth_request URI ("" for off)
	RewriteLog       Opt[bool]           // rewrite_log
	Mirrors          Opt[[]string]       // mirror URIs (set and empty: mirror off)
	MirrorBody       Opt[bool]           // mirror_request_body
	AuthRequestSet   Opt[[]AuthSet]      // auth_request_set
	AuthBasic        Opt[*vars.Template] // realm; nil V = off
	AuthUserFile     Opt[*access.UserFile]
	LimitReqs        Opt[[]LimitReq]
	LimitReqStatus   Opt[int]
	LimitReqDryRun   Opt[bool]
	LimitConns       Opt[[]LimitConn]
	LimitConnStatus  Opt[int]
	LimitConnDryRun  Opt[bool]
	LimitReqLog      Opt[slog.Level] // limit_req_log_level (delays log one level lower, as in nginx)
	LimitConnLog     Opt[slog.Level]
	ValidReferers    Opt[*access.Referers] // valid_referers, for $invalid_referer
	ValidReferersPos Pos                   // its first line at the level that set it

	ClientBodyBufferSize Opt[int64]

	FastCGIOpts          Gateway // fastcgi_* shared with uwsgi (gateway.go)
	FastCGIIndex         Opt[string]
	FastCGISplitPathInfo Opt[*regexp.Regexp]
	FastCGIKeepConn      Opt[bool]
	FastCGICatchStderr   Opt[[]string]
	UWSGIOpts            Gateway  // uwsgi_* shared with fastcgi (gateway.go)
	UWSGIModifier1       Opt[int] // uwsgi_modifier1
	UWSGIModifier2       Opt[int] // uwsgi_modifier2
	SCGIOpts             Gateway  // scgi_* shared with fastcgi and uwsgi (gateway.go)

	TryFiles           Opt[[]*vars.Template] // try_files: files…, then the fallback (URI, @name or =code)
	Alias              Opt[*vars.Template]
	Autoindex          Opt[bool]
	AutoindexFormat    Opt[string] // autoindex_format
	AutoindexExactSize Opt[bool]   // autoindex_exact_size
	AutoindexLocaltime Opt[bool]   // autoindex_localtime
	ETag               Opt[bool]
	IMS                Opt[static.IMS] // if_modified_since
	MaxRanges          Opt[int]        // max_ranges
	Expires            Opt[Expires]
	GzipStatic         Opt[static.GzipStatic]
	Dotfiles           Opt[bool]
	NoSymlinks         Opt[bool]
	LogNotFound        Opt[bool]

	Gzip            Opt[bool]
	GzipTypes       Opt[[]string]
	GzipLevel       Opt[int]
	GzipMinLength   Opt[int64]
	GzipVary        Opt[bool]
	GzipHTTP10      Opt[bool] // gzip_http_version 1.0
	GzipProxied     Opt[compress.Proxied]
	GzipDisable     Opt[[]*regexp.Regexp]
	GzipDisableMSIE Opt[bool] // gzip_disable msie6
	Gunzip          Opt[bool]
	GunzipBufSize   Opt[int64] // gunzip_buffers' size

	SubFilters            Opt[[]subfilter.Pair]
	SubFilterTypes        Opt[[]string]
	SubFilterOnce         Opt[bool]
	SubFilterLastModified Opt[bool]

	CharsetName     Opt[charsetArg] // charset
	SourceCharset   Opt[charsetArg] // source_charset
	OverrideCharset Opt[bool]
	CharsetTypes    Opt[[]string]
	// LimitExcept is the location's limit_except block (not inherited by nested locations); nil without one
	LimitExcept *LimitExcept

	SecureLinkExpr   Opt[*vars.Template] // secure_link
	SecureLinkMD5    Opt[*vars.Template] // secure_link_md5
	SecureLinkSecret Opt[string]         // secure_link_secret

	// compiled once merged (finish.go)
	SecureLink     *vars.SecureLink  // nil without secure_link*
	GzipFilter     *compress.Gzip    // nil with gzip off
	GunzipFilter   *compress.Gunzip  // nil with gunzip off
	SubFilter      *subfilter.Filter // nil without sub_filter
	Charset        *charset.Filter   // nil when the configuration names no charset
	CORS           *access.CORS      // nil without cors_origins
	ProxyCacheConf *cache.Conf       // proxy_cache*, nil without a cache
	WSOrigins      *access.Origins   // websocket_origins, else cors_origins; nil: upgrades from any origin
	Linger         *h1.Linger        // lingering_close, lingering_time, lingering_timeout; nil: none set (nginx's defaults)
}

// AuthSet is one auth_request_set: a variable given a value evaluated in the auth subrequest.
type AuthSet struct {
	Var vars.Index
	Val *vars.Template
}

// IgnoreHeaders is proxy_ignore_headers (fastcgi_ignore_headers): upstream response fields not acted on.
type IgnoreHeaders uint16

const (
	IgnoreAccelRedirect IgnoreHeaders = 1 << iota
	IgnoreAccelExpires
	IgnoreAccelLimitRate
	IgnoreAccelBuffering
	IgnoreAccelCharset
	IgnoreExpires
	IgnoreCacheControl
	IgnoreSetCookie
	IgnoreVary
)

// LimitExcept is a limit_except block. A request whose method it does not list is served with Conf: the
// location's configuration with the block's access rules, and without the location's try_files (nginx's
// limit_except is a location of its own that inherits everything but try_files and the rewrite statements).
type LimitExcept struct {
	Methods []string // upper case; GET brings HEAD
	Conf    *LocConf
	Pos     Pos
}

// Restricts reports whether a request with method takes the block's configuration.
func (le *LimitExcept) Restricts(method string) bool {
	for _, m := range le.Methods {
		if m == method {
			return false
		}
	}
	return true
}

// NextUpstream is proxy_next_upstream: the conditions under which a request goes on to the next peer.
type NextUpstream struct {
	Error, Timeout, InvalidHeader, NonIdempotent bool
	Status                                       []int // http_500 … http_429
}

// ZoneSpec is a limit_req_zone or limit_conn_zone; its state lives in the running server (access.Zones).
type ZoneSpec struct {
	Name string
	Key  *vars.Template
	Size int64
	Rate float64 // limit_req_zone: requests per second
	Pos  Pos
}

// LimitReq is one limit_req.
type LimitReq struct {
	Zone  string
	Burst int
	Delay int // requests within the burst served without delay (nodelay: all of them)
}

// LimitConn is one limit_conn.
type LimitConn struct {
	Zone string
	N    int
}

// Expires is a parsed expires directive.
type Expires struct {
	Off      bool
	Epoch    bool
	Max      bool
	Modified bool          // relative to the file's modification time
	Daily    bool          // @time: D is the time of day (local time) the response expires next
	D        time.Duration // may be negative: Cache-Control: no-cache
	// Value is a value with variables (h5bp: `expires $expires` from a map on $sent_http_content_type), read
	// with ParseExpires for each response; the fields above are then unused but Modified.
	Value *vars.Template
}

// ProxyPass is a parsed proxy_pass target.
type ProxyPass struct {
	Raw      string
	Template *vars.Template // set when the target contains variables
	Scheme   string         // "http" or "https"
	Host     string         // host[:port] as written, or upstream name
	Port     string
	// ProxyHost is $proxy_host: Host without the scheme's default port (nginx omits it)
	ProxyHost string
	HasURI    bool   // a URI part was given (even "/")
	URI       string // the URI part
	Upstream  *Upstream
	Pos       Pos
}

// SessionCache is ssl_session_cache: off or none keep no sessions on the server; Name (shared:NAME:SIZE) is a
// cache kept across reloads by name, else the server's own (builtin); Sessions is how many it holds.
type SessionCache struct {
	Off      bool
	Name     string
	Sessions int
}

// UpstreamSSL is TLS toward upstreams: proxy_ssl_* for https:// and grpc_ssl_* for grpcs://. Its fields
// merge down one by one, as the directives do in nginx.
type UpstreamSSL struct {
	Verify         Opt[bool]
	Trusted        Opt[string]
	ServerName     Opt[bool]
	Name           Opt[*vars.Template]
	Certificate    Opt[string]
	CertificateKey Opt[string]
	Passwords      Opt[certs.Passphrases] // *_ssl_password_file
	Protocols      Opt[[]string]
	Ciphers        Opt[[]uint16]   // as Go cipher suite IDs
	VerifyDepth    Opt[int]        // *_ssl_verify_depth; enforced only when set
	CRL            Opt[certs.CRLs] // *_ssl_crl, read at load
}

// HeaderSet is one proxy_set_header or grpc_set_header.
type HeaderSet struct {
	Name  string
	Key   string // Name in canonical form (the header map's key), worked out once
	Value *vars.Template
	Again bool // an earlier line of the same list sets Key too: this one adds a field (nginx)
}

// AddHeader is one add_header.
type AddHeader struct {
	Name   string
	Key    string // Name in canonical form, worked out once
	Value  *vars.Template
	Always bool
}

// ErrorPage is one error_page directive.
type ErrorPage struct {
	Codes    []int
	Override int // "=code"; 0 = keep; -1 = "=" (take the status of the target)
	URI      *vars.Template
}

// CookieRewrite is a proxy_cookie_domain or proxy_cookie_path rule: From (literal, or with variables in
// FromT) or FromRe, and the replacement To.
type CookieRewrite struct {
	From   string
	FromT  *vars.Template
	FromRe *regexp.Regexp
	To     *vars.Template
}

// CookieFlags is one proxy_cookie_flags rule: the cookie it applies to (Cookie's From, FromT or FromRe; its To
// is nil) and the flags, those without variables in Flags, the others evaluated per response.
type CookieFlags struct {
	Cookie CookieRewrite
	Flags  CookieFlag
	Vars   []*vars.Template
}

// CookieFlag is a set of proxy_cookie_flags flags, as nginx's bits: each names the attribute it acts on and
// what it does; where a rule has both, adding wins over removing, strict over lax over none.
type CookieFlag uint16

// The proxy_cookie_flags flags.
const (
	CookieSecure CookieFlag = 1 << iota
	CookieNoSecure
	CookieHTTPOnly
	CookieNoHTTPOnly
	CookieSameSiteStrict
	CookieSameSiteLax
	CookieSameSiteNone
	CookieNoSameSite
)

// Bind is proxy_bind: the local address of connections to upstreams (Addr), or a value with variables that
// gives it per request (Template).
type Bind struct {
	Addr     *net.TCPAddr
	Template *vars.Template
}

// Local is the address a request's connections are made from: nil for none (off, or an empty value). A value
// that is no address gives nil and the value, for the caller to log as nginx does.
func (b *Bind) Local(v *vars.Request) (addr *net.TCPAddr, invalid string) {
	switch {
	case b == nil:
		return nil, ""
	case b.Template == nil:
		return b.Addr, ""
	}
	s := b.Template.Eval(v)
	if s == "" {
		return nil, ""
	}
	a, ok := ParseBind(s)
	if !ok {
		return nil, s
	}
	return a, ""
}

// Redirect is one proxy_redirect rule.
type Redirect struct {
	Default bool
	From    string
	FromT   *vars.Template // From with variables ($proxy_host); nil: From is literal
	FromRe  *regexp.Regexp
	To      *vars.Template
}

// Upstream is an upstream block.
type Upstream struct {
	Name              string
	Servers           []UpstreamServer
	Keepalive         int
	KeepaliveTimeout  time.Duration
	KeepaliveRequests int
	Policy            string   // "", least_conn, ip_hash, hash, random
	PolicyArgs        []string // hash: key [consistent]; random: [two [least_conn]]
	HashKey           *vars.Template
	HealthCheck       *HealthCheck
	DrainTimeout      time.Duration // proxy_tunnel_drain_timeout; 0: tunnels to removed peers stay
	Resolver          *Resolver     // for servers marked resolve (the block's own, else http's)
	Sticky            *Sticky
	Pos               Pos
}

// Sticky is sticky cookie: the cookie that pins a client to the peer that served it (sluice only).
type Sticky struct {
	Name     string
	Expires  time.Duration // 0: a session cookie; -1: max
	Path     string
	Domain   string
	Secure   bool
	HTTPOnly bool
	SameSite string // "", strict, lax, none
}

// Resolver is a resolver directive: DNS servers (host:port) and how long answers are used.
type Resolver struct {
	Addrs          []string
	Valid          time.Duration
	NoIPv4, NoIPv6 bool // ipv4=off, ipv6=off: leave out A or AAAA answers
	Pos            Pos
}

// Network is the address family to look names up in, for net.Resolver.LookupIP: "ip", or "ip4" or "ip6" when
// ipv6=off or ipv4=off leaves the other out.
func (r *Resolver) Network() string {
	switch {
	case r.NoIPv6:
		return "ip4"
	case r.NoIPv4:
		return "ip6"
	}
	return "ip"
}

// Allows reports whether the resolver's ipv4= and ipv6= let a peer have the address addr (ip:port).
func (r *Resolver) Allows(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return true
	}
	if ap.Addr().Unmap().Is4() {
		return !r.NoIPv4
	}
	return !r.NoIPv6
}

// HealthCheck is an upstream block's active health check (sluice only).
type HealthCheck struct {
	Interval, Timeout  time.Duration
	Fails, Passes      int
	URI                string
	Port               int  // 0: the peer's own port
	StatusLo, StatusHi int  // match_status range
	TLS                bool // probe over TLS: scheme=https, or a location proxies to the group with https://
	SchemeSet          bool // scheme= was given: TLS does not follow proxy_pass
}

// UpstreamServer is one server line of an upstream block.
type UpstreamServer struct {
	Addr        string   // as written (with :80 added when no port was given), or unix:/path
	Addrs       []string // the addresses it resolved to at load time
	Weight      int
	MaxFails    int
	FailTimeout time.Duration
	MaxConns    int
	SlowStart   time.Duration
	Resolve     bool // re-resolved through the resolver while running
	Backup      bool
	Down        bool
	Pos         Pos
}

// Op is one rewrite-module statement, run in order in the server or location rewrite phase.
type Op struct {
	Kind OpKind
	Var  vars.Index     // set
	Val  *vars.Template // set value, return text/URL, rewrite replacement (up to its "?")
	Args *vars.Template // rewrite: the replacement's arguments (after its "?"; nil: none)
	// DropArgs: the rewrite replacement ends in "?" (or is "…?" alone): the request's arguments are not kept
	DropArgs bool
	Code     int            // return code; rewrite: 301/302 for redirect/permanent
	Re       *regexp.Regexp // rewrite regex
	Flag     string         // rewrite flag: last, break, redirect, permanent, ""
	Cond     *Cond          // if
	Then     []Op           // if body
	IfConf   *LocConf       // if body's location-scope directives (add_header …), merged from the enclosing block
	Pos      Pos
}

// OpKind says what an Op does.
type OpKind int

const (
	OpSet OpKind = iota
	OpReturn
	OpRewrite
	OpIf
	OpBreak
)

// Cond is the condition of an `if`.
type Cond struct {
	Var   *vars.Template // the tested value
	Op    string         // "", "=", "!=", "~", "~*", "!~", "!~*", "-f", "!-f", "-d", "!-d", "-e", "!-e", "-x", "!-x"
	Value string
	Re    *regexp.Regexp
}

// Pos is where a directive was written.
type Pos struct {
	File string
	Line int
}

// Opt is a directive value that remembers whether it was set at this level, for nginx-style merging.
type Opt[T any] struct {
	V   T
	Set bool
}

// MimeTypes is the extension → MIME type map in effect: the types blocks', or nginx's built-in one when no
// types block applies (html, gif and jpg only, as ngx_http_core_module's default).
func (c *LocConf) MimeTypes() map[string]string {
	if c.Types.Set {
		return c.Types.V
	}
	return builtinTypes
}

// builtinTypes is nginx's types map when the configuration has none (read only).
var builtinTypes = map[string]string{"html": "text/html", "gif": "image/gif", "jpg": "image/jpeg"}

// Get returns the value, or def when the directive was never set at any level.
func (o Opt[T]) Get(def T) T {
	if o.Set {
		return o.V
	}
	return def
}

func (o *Opt[T]) set(v T) { o.V, o.Set = v, true }
