// Package vars implements nginx variables: the per-request state they read, the table of names a configuration
// knows, value templates compiled once at load ("$scheme://$host$request_uri"), and the map module.
//
// Templates compile to a short list of literal parts and variable references; evaluating one appends into a
// caller-provided buffer and does not allocate when the values are plain request fields.
//
// Variable names are case-insensitive, as in nginx ($HOST is $host).
package vars

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/access"
	"github.com/sluice-proxy/sluice/internal/certs"
)

// Request is the per-request state variables read. The server fills the fields it knows; later phases update
// Status, upstream fields, etc. One Request per HTTP request; not safe for concurrent use, and not to be copied
// after first use.
type Request struct {
	HTTP              *http.Request        // the client request (headers, method, Proto, Host, RequestURI)
	Start             time.Time            // when the request began: $request_time
	ConnID            uint64               // $connection
	ConnRequests      int                  // $connection_requests
	RemoteAddr        netip.AddrPort       // $remote_addr $remote_port (after real-IP processing)
	RealipRemoteAddr  netip.AddrPort       // $realip_remote_addr: the peer before real-IP; zero means RemoteAddr
	ProxyProtocolAddr netip.AddrPort       // $proxy_protocol_addr $proxy_protocol_port: from the PROXY header
	LocalAddr         netip.AddrPort       // $server_addr $server_port
	TLS               *tls.ConnectionState // nil on plain HTTP: $https $scheme $ssl_*
	HTTP2             bool                 // $http2: "h2" with TLS, "h2c" without
	ClientCert        *certs.ClientResult  // $ssl_client_*: the connection's client certificate check; nil: none asked
	ServerName        string               // $server_name: first name of the selected server
	Hostname          string               // $hostname (machine host name)
	URI               string               // $uri / $document_uri: the current normalised URI
	Args              string               // $args / $query_string (current; `set $args` changes it)
	DocumentRoot      string               // $document_root
	RequestFilename   string               // $request_filename; empty means DocumentRoot+URI, or the alias mapping
	// Alias maps $request_filename in an alias location before its content handler runs (if -e
	// $request_filename): AliasTo in place of the prefix AliasFrom, or AliasTo alone in a regex location
	// (AliasFrom empty).
	Alias              bool
	AliasFrom, AliasTo string
	Captures           []string // $0..$9 from the last regex match; [0] is the whole match
	CaptureNames       []string // regexp.SubexpNames() for Captures: named captures are variables too
	Status             int      // $status (response status)
	BodyBytesSent      int64    // $body_bytes_sent
	BytesSent          int64    // $bytes_sent
	RequestLength      int64    // $request_length
	RemoteUser         string   // $remote_user
	// RequestLine, when set, is $request as the client sent it: a request refused before it was parsed
	// ("hello", "GET /a%zz HTTP/1.1"), which nginx logs as read
	RequestLine string
	ProxyHost   string // $proxy_host
	ProxyPort   string // $proxy_port

	UpstreamAddr, UpstreamStatus, UpstreamResponseTime, UpstreamConnectTime, UpstreamHeaderTime string

	// Stream holds the variables only a stream session has (nil for HTTP requests, which stay as small as before)
	Stream *StreamVars
	// UpstreamCacheStatus is $upstream_cache_status: MISS, HIT, EXPIRED, BYPASS, STALE, UPDATING or
	// REVALIDATED where proxy_cache looked the request up, else empty
	UpstreamCacheStatus string
	// NoUpstreamTimes: no template reads the three times above (Table.UpstreamTimes), so a handler may leave
	// them unset rather than format them
	NoUpstreamTimes bool

	UpstreamHeader Fields      // $upstream_http_NAME (nil: no upstream answered)
	ResponseHeader http.Header // $sent_http_NAME

	Referers *access.Referers // valid_referers of the current server or location, for $invalid_referer
	// SecureLink is the current level's secure_link settings (nil: none), for $secure_link
	SecureLink           *SecureLink
	secureLinkExpires    string // $secure_link_expires, once $secure_link has read it
	hasSecureLinkExpires bool
	referer              uint8 // $invalid_referer once read: 1 valid, 2 invalid

	FastCGIScriptName string // $fastcgi_script_name; empty means URI
	FastCGIPathInfo   string // $fastcgi_path_info
	GzipRatio         string // $gzip_ratio: uncompressed / compressed size, "3.52"; empty when not compressed
	// LimitRate is $limit_rate, bytes per second toward the client (0: no limit), once `set $limit_rate` or an
	// upstream's X-Accel-Limit-Rate has set it (LimitRateSet); limit_rate's value applies otherwise.
	LimitRate    int64
	LimitRateSet bool
	// AccelCharset is an upstream's X-Accel-Charset (unless proxy_ignore_headers drops it): the charset the
	// charset filter gives the response instead of charset's.
	AccelCharset string
	// LimitReqStatus and LimitConnStatus are $limit_req_status and $limit_conn_status: PASSED, DELAYED,
	// REJECTED, DELAYED_DRY_RUN or REJECTED_DRY_RUN once a limit applied; empty before
	LimitReqStatus, LimitConnStatus string

	// User variables (set, map cache) by Index: the first few inline, so most requests need no extra allocation.
	small [inlineSlots]slot
	more  []slot

	requestID    [32]byte
	hasRequestID bool

	// scratch is Eval's buffer, kept across Reset; nil while an evaluation holds it (a nested one, through a
	// map, then uses its own)
	scratch []byte
}

// StreamVars are a stream session's own variables: $protocol ("TCP"), $bytes_received (from the client),
// $upstream_bytes_sent and $upstream_bytes_received (per try, comma separated), $ssl_preread_server_name and
// $ssl_preread_alpn_protocols.
type StreamVars struct {
	Protocol                                 string
	BytesReceived                            int64
	UpstreamBytesSent, UpstreamBytesReceived string
	SSLPrereadServerName, SSLPrereadALPN     string
}

// Fields is a header read by field name: an http.Header, or a parser's list of fields read without building
// a map of them.
type Fields interface {
	Values(name string) []string
}

// maxScratch bounds the evaluation buffer a Request keeps across Reset.
const maxScratch = 4 << 10

// Reset clears r for another request, keeping its buffers: a server that pools Requests allocates them once.
func (r *Request) Reset() {
	more, scratch := r.more[:0], r.scratch[:0]
	clear(more[:cap(more)])
	if cap(scratch) > maxScratch {
		scratch = nil
	}
	*r = Request{}
	r.more, r.scratch = more, scratch
}

// CopyRequestVars gives r the values from carries that a request's phases have set: the URI and arguments, the
// location's paths and captures, the real address, $request_id, and the user variables (set, cached map
// values). A subrequest that goes on
// with a request in its location starts from them (nginx's subrequests share their parent's variables).
func (r *Request) CopyRequestVars(from *Request) {
	r.URI, r.Args, r.DocumentRoot, r.RequestFilename = from.URI, from.Args, from.DocumentRoot, from.RequestFilename
	r.Alias, r.AliasFrom, r.AliasTo = from.Alias, from.AliasFrom, from.AliasTo
	r.Captures, r.CaptureNames = from.Captures, from.CaptureNames
	r.FastCGIScriptName, r.FastCGIPathInfo = from.FastCGIScriptName, from.FastCGIPathInfo
	r.ProxyHost, r.ProxyPort = from.ProxyHost, from.ProxyPort
	r.RealipRemoteAddr, r.Referers, r.SecureLink = from.RealipRemoteAddr, from.Referers, from.SecureLink
	r.requestID, r.hasRequestID = from.requestID, from.hasRequestID
	r.small = from.small
	r.more = append(r.more[:0], from.more...)
	for i := range r.small {
		if r.small[i].state == slotBusy {
			r.small[i] = slot{}
		}
	}
	for i := range r.more {
		if r.more[i].state == slotBusy {
			r.more[i] = slot{}
		}
	}
}

const inlineSlots = 4

// slot holds one user variable's value for one request.
type slot struct {
	val   string
	state uint8
}

const (
	slotUnset  uint8 = iota
	slotSet          // assigned by Set
	slotCached       // map value computed for this request
	slotBusy         // map being evaluated: reading it again is a cycle
)

// slot returns the storage for user variable i, growing the overflow as needed. The pointer is valid until the
// next call that may grow it (a nested map evaluation).
func (r *Request) slot(i Index) *slot {
	if i < inlineSlots {
		return &r.small[i]
	}
	j := int(i - inlineSlots)
	if j >= len(r.more) {
		if j < cap(r.more) {
			r.more = r.more[:j+1]
		} else {
			n := make([]slot, j+1, max(2*cap(r.more), j+1, 4))
			copy(n, r.more)
			r.more = n
		}
	}
	return &r.more[j]
}

// Set assigns a user variable (the `set` directive at run time). Setting the Index returned for "args" changes
// Args. Set on a map variable overrides the map for the rest of the request.
func (r *Request) Set(i Index, value string) {
	switch i {
	case argsIndex:
		r.Args = value
		return
	case limitRateIndex:
		// as nginx: a value that is no size leaves the rate as it was
		if n, err := ParseSize(value); err == nil {
			r.LimitRate, r.LimitRateSet = n, true
		}
		return
	}
	if i < 0 {
		return
	}
	s := r.slot(i)
	s.val, s.state = value, slotSet
}

// Value returns the current value of one variable, as `if ($var ...)` needs it. A variable that is not found
// reads as "".
func (r *Request) Value(v Var) string {
	if s, _, ok := r.str(&v); ok {
		return s
	}
	var buf [64]byte
	b, _ := r.appendVar(buf[:0], &v)
	return string(b)
}

// Index identifies a user variable (declared by `set`, `map` or a named regex capture) within a Table.
type Index int

// argsIndex and limitRateIndex are the Indexes Declare returns for "args" and "limit_rate", the changeable
// built-ins.
const (
	argsIndex      Index = -1
	limitRateIndex Index = -2
)

// Var identifies one variable: a built-in, a prefix variable with its argument ($http_user_agent), a regex
// capture, or a user variable. The zero Var is not valid.
type Var struct {
	kind kind
	n    int    // capture number
	arg  string // canonical header key, or lower-case cookie/argument name
	name string // the variable name, lower-case, without '$'
	u    *userVar
}

// Name returns the variable's name without the leading '$'.
func (v Var) Name() string { return v.name }

type userVar struct {
	name string
	idx  Index
	m    Computed
}

// Computed is a variable whose value a block of the configuration computes from the request: a Map, a Geo or
// a SplitClients. Its value is computed once per request (unless it is a volatile map) when first read.
type Computed interface {
	eval(r *Request) string
	isVolatile() bool
}

// Table is the set of variable names a configuration knows: the built-ins plus user variables declared by `set`
// and `map` anywhere in the config (nginx lets a variable be used in one place and set in another). Build it
// first, then compile templates against it. A Table is safe for concurrent reads once loading is done.
//
// Forward references between maps work in two passes: Declare every map name, then build each Map (its
// values may name any declared variable) and attach it with DeclareMap.
type Table struct {
	users map[string]*userVar
	// upstreamTimes: a template reads $upstream_connect_time, _header_time or _response_time
	upstreamTimes bool
	bytesSent     bool // a template reads $bytes_sent
}

// UpstreamTimes reports whether a template compiled against t reads $upstream_connect_time,
// $upstream_header_time or $upstream_response_time; when none does, the handlers need not format them.
func (t *Table) UpstreamTimes() bool { return t.upstreamTimes }

// BytesSent reports whether a template compiled against t reads $bytes_sent; when none does, the server need
// not estimate an HTTP/2 or HTTP/3 response head's size for it.
func (t *Table) BytesSent() bool { return t.bytesSent }

// NewTable returns a Table that knows the built-in variables.
func NewTable() *Table {
	return &Table{users: make(map[string]*userVar)}
}

// Declare declares a user variable, for `set $name` and for named regex captures (a capture and a `set` of the
// same name share one variable, as in nginx). It is idempotent. Declaring "args" returns an Index that Set
// maps to Request.Args; other built-in names are an error.
func (t *Table) Declare(name string) (Index, error) {
	u, err := t.declare(name)
	if err != nil {
		return 0, err
	}
	if u == nil {
		if strings.EqualFold(name, "limit_rate") {
			return limitRateIndex, nil
		}
		return argsIndex, nil
	}
	return u.idx, nil
}

// AddCaptureNames declares the named groups of a configuration regex (location, rewrite, if, server_name) as
// variables, as nginx does; at run time they read Request.Captures by Request.CaptureNames. A group named like
// a built-in variable is an error.
func (t *Table) AddCaptureNames(re *regexp.Regexp) error {
	for _, name := range re.SubexpNames() {
		if name == "" {
			continue
		}
		if _, err := t.Declare(name); err != nil {
			return err
		}
	}
	return nil
}

// DeclareMap declares name as the result of m (a map, geo or split_clients block). It is an error if such a
// block already defines the variable; a prior Declare of the same name is fine and returns the same Index.
func (t *Table) DeclareMap(name string, m Computed) (Index, error) {
	if m == nil {
		return 0, errors.New("vars: DeclareMap with a nil map")
	}
	if low := strings.ToLower(name); low == "args" || low == "limit_rate" {
		return 0, fmt.Errorf("the duplicate %q variable", low)
	}
	u, err := t.declare(name)
	if err != nil {
		return 0, err
	}
	if u.m != nil {
		return 0, fmt.Errorf("the duplicate %q variable", u.name)
	}
	u.m = m
	return u.idx, nil
}

func (t *Table) declare(name string) (*userVar, error) {
	low := strings.ToLower(name)
	if !validName(low) {
		return nil, fmt.Errorf("invalid variable name %q", name)
	}
	if low == "args" || low == "limit_rate" {
		return nil, nil // the changeable built-ins (Declare gives their Index)
	}
	if _, ok := builtins[low]; ok {
		return nil, fmt.Errorf("the duplicate %q variable", low)
	}
	if u := t.users[low]; u != nil {
		return u, nil
	}
	u := &userVar{name: low, idx: Index(len(t.users))}
	t.users[low] = u
	return u, nil
}

// validName reports whether s is a name `set` may declare: letters, digits and '_', not all digits.
func validName(s string) bool {
	if s == "" {
		return false
	}
	digits := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
			digits = false
		default:
			return false
		}
	}
	return !digits
}

// Lookup finds a variable by name (without '$'): a built-in, a declared user variable, a capture ("1", "0")
// or a prefix variable ("http_user_agent", "cookie_sid", "arg_page", "sent_http_etag", "upstream_http_server").
func (t *Table) Lookup(name string) (Var, bool) {
	low := strings.ToLower(name)
	if k, ok := builtins[low]; ok {
		switch k {
		case kUpstreamResponseTime, kUpstreamConnectTime, kUpstreamHeaderTime:
			t.upstreamTimes = true
		case kBytesSent:
			t.bytesSent = true
		}
		return Var{kind: k, name: low}, true
	}
	if u := t.users[low]; u != nil {
		return Var{kind: kUser, name: low, u: u}, true
	}
	if n, ok := captureNumber(low); ok {
		return Var{kind: kCapture, n: n, name: low}, true
	}
	for _, p := range prefixes {
		rest, ok := strings.CutPrefix(low, p.prefix)
		if !ok || rest == "" {
			continue
		}
		v := Var{kind: p.kind, name: low, arg: rest}
		switch p.kind {
		case kHTTP, kSentHTTP, kUpstreamHTTP:
			v.arg = headerKey(rest)
			if p.kind == kHTTP {
				switch v.arg {
				case "Host":
					v.kind = kHTTPHost
				case "Cookie":
					v.kind = kHTTPCookie
				}
			}
		}
		return v, true
	}
	return Var{}, false
}

// captureNumber parses an all-digit name as a capture number.
func captureNumber(s string) (int, bool) {
	if s == "" || len(s) > 4 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// headerKey turns the lower-case tail of $http_x_forwarded_for into the canonical key "X-Forwarded-For", so a
// lookup is one map access. Headers whose names contain '_' are therefore not visible, which matches nginx's
// default (underscores_in_headers off) and avoids "X_Real_IP" posing as "X-Real-IP".
func headerKey(s string) string {
	b := []byte(s)
	upper := true
	for i, c := range b {
		if c == '_' {
			b[i] = '-'
			upper = true
			continue
		}
		if upper && c >= 'a' && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
		upper = false
	}
	return string(b)
}
