package vars

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-proxy/sluice/internal/version"
)

type kind uint8

const (
	kInvalid kind = iota
	kUser
	kCapture

	// prefix variables: Var.arg holds the argument
	kHTTP         // $http_NAME (Var.arg is the canonical header key)
	kHTTPHost     // $http_host: Go keeps the Host header in Request.Host
	kHTTPCookie   // $http_cookie: values joined with "; "
	kSentHTTP     // $sent_http_NAME
	kUpstreamHTTP // $upstream_http_NAME
	kCookie       // $cookie_NAME
	kArg          // $arg_NAME

	kRemoteAddr
	kRemotePort
	kBinaryRemoteAddr
	kRealipRemoteAddr
	kRealipRemotePort
	kProxyProtocolAddr
	kProxyProtocolPort
	kServerAddr
	kServerPort
	kServerName
	kServerProtocol
	kHost
	kHostname
	kArgs
	kIsArgs
	kRequestURI
	kURI
	kDocumentRoot
	kRealpathRoot
	kRequestFilename
	kRequestMethod
	kRequest
	kScheme
	kHTTPS
	kStatus
	kBodyBytesSent
	kBytesSent
	kRequestLength
	kRequestTime
	kTimeLocal
	kTimeISO8601
	kMsec
	kRequestID
	kConnection
	kConnectionRequests
	kContentType
	kContentLength
	kRemoteUser
	kProxyHost
	kProxyPort
	kProxyAddXForwardedFor
	kUpstreamAddr
	kUpstreamStatus
	kUpstreamCacheStatus
	kUpstreamResponseTime
	kUpstreamConnectTime
	kUpstreamHeaderTime
	kSSLProtocol
	kSSLCipher
	kSSLServerName
	kSSLALPNProtocol
	kSSLSessionReused
	kSSLClientVerify
	kSSLClientSDN
	kSSLClientIDN
	kSSLClientSerial
	kSSLClientFingerprint
	kSSLClientCert
	kSSLClientRawCert
	kSSLClientEscapedCert
	kSSLClientVStart
	kSSLClientVEnd
	kSSLClientVRemain
	kHTTP2
	kFastCGIScriptName
	kFastCGIPathInfo
	kGzipRatio
	kLimitRate
	kLimitReqStatus
	kLimitConnStatus
	kSecureLink
	kSecureLinkExpires
	kPid
	kNginxVersion
	kInvalidReferer
	// stream sessions
	kProtocol
	kBytesReceived
	kSessionTime
	kUpstreamBytesSent
	kUpstreamBytesReceived
	kSSLPrereadServerName
	kSSLPrereadALPN
)

// builtins maps each built-in name to its kind. Read-only.
var builtins = map[string]kind{
	"remote_addr":                kRemoteAddr,
	"remote_port":                kRemotePort,
	"binary_remote_addr":         kBinaryRemoteAddr,
	"realip_remote_addr":         kRealipRemoteAddr,
	"realip_remote_port":         kRealipRemotePort,
	"proxy_protocol_addr":        kProxyProtocolAddr,
	"proxy_protocol_port":        kProxyProtocolPort,
	"server_addr":                kServerAddr,
	"server_port":                kServerPort,
	"server_name":                kServerName,
	"server_protocol":            kServerProtocol,
	"host":                       kHost,
	"hostname":                   kHostname,
	"args":                       kArgs,
	"query_string":               kArgs,
	"is_args":                    kIsArgs,
	"request_uri":                kRequestURI,
	"uri":                        kURI,
	"document_uri":               kURI,
	"document_root":              kDocumentRoot,
	"realpath_root":              kRealpathRoot,
	"request_filename":           kRequestFilename,
	"request_method":             kRequestMethod,
	"request":                    kRequest,
	"scheme":                     kScheme,
	"https":                      kHTTPS,
	"status":                     kStatus,
	"body_bytes_sent":            kBodyBytesSent,
	"bytes_sent":                 kBytesSent,
	"request_length":             kRequestLength,
	"request_time":               kRequestTime,
	"time_local":                 kTimeLocal,
	"time_iso8601":               kTimeISO8601,
	"msec":                       kMsec,
	"request_id":                 kRequestID,
	"connection":                 kConnection,
	"connection_requests":        kConnectionRequests,
	"content_type":               kContentType,
	"content_length":             kContentLength,
	"remote_user":                kRemoteUser,
	"proxy_host":                 kProxyHost,
	"proxy_port":                 kProxyPort,
	"proxy_add_x_forwarded_for":  kProxyAddXForwardedFor,
	"upstream_addr":              kUpstreamAddr,
	"upstream_status":            kUpstreamStatus,
	"upstream_response_time":     kUpstreamResponseTime,
	"upstream_connect_time":      kUpstreamConnectTime,
	"upstream_header_time":       kUpstreamHeaderTime,
	"ssl_protocol":               kSSLProtocol,
	"ssl_cipher":                 kSSLCipher,
	"ssl_server_name":            kSSLServerName,
	"ssl_alpn_protocol":          kSSLALPNProtocol,
	"ssl_session_reused":         kSSLSessionReused,
	"ssl_client_verify":          kSSLClientVerify,
	"ssl_client_s_dn":            kSSLClientSDN,
	"ssl_client_i_dn":            kSSLClientIDN,
	"ssl_client_serial":          kSSLClientSerial,
	"ssl_client_fingerprint":     kSSLClientFingerprint,
	"ssl_client_cert":            kSSLClientCert,
	"ssl_client_raw_cert":        kSSLClientRawCert,
	"ssl_client_escaped_cert":    kSSLClientEscapedCert,
	"ssl_client_v_start":         kSSLClientVStart,
	"ssl_client_v_end":           kSSLClientVEnd,
	"ssl_client_v_remain":        kSSLClientVRemain,
	"http2":                      kHTTP2,
	"fastcgi_script_name":        kFastCGIScriptName,
	"fastcgi_path_info":          kFastCGIPathInfo,
	"gzip_ratio":                 kGzipRatio,
	"limit_rate":                 kLimitRate,
	"limit_req_status":           kLimitReqStatus,
	"limit_conn_status":          kLimitConnStatus,
	"secure_link":                kSecureLink,
	"secure_link_expires":        kSecureLinkExpires,
	"pid":                        kPid,
	"nginx_version":              kNginxVersion,
	"invalid_referer":            kInvalidReferer,
	"protocol":                   kProtocol,
	"bytes_received":             kBytesReceived,
	"session_time":               kSessionTime,
	"upstream_bytes_sent":        kUpstreamBytesSent,
	"upstream_bytes_received":    kUpstreamBytesReceived,
	"ssl_preread_server_name":    kSSLPrereadServerName,
	"ssl_preread_alpn_protocols": kSSLPrereadALPN,
	"upstream_cache_status":      kUpstreamCacheStatus,
}

// prefixes lists the prefix variables, longest first where one prefix starts another.
var prefixes = [...]struct {
	prefix string
	kind   kind
}{
	{"sent_http_", kSentHTTP},
	{"upstream_http_", kUpstreamHTTP},
	{"http_", kHTTP},
	{"cookie_", kCookie},
	{"arg_", kArg},
}

// str returns a variable's value when it is already a string (no formatting needed), so callers can use it
// without copying. ok is false when the value must be built with appendVar.
func (r *Request) str(v *Var) (s string, found, ok bool) {
	switch v.kind {
	case kUser:
		s, found = r.user(v.u)
		return s, found, true
	case kCapture:
		if v.n < len(r.Captures) {
			return r.Captures[v.n], true, true
		}
		return "", false, true
	case kHTTP:
		return headerStr(r.header()[v.arg], r.HTTP, v.arg == "Transfer-Encoding")
	case kSentHTTP:
		return headerStr(r.ResponseHeader[v.arg], nil, false)
	case kUpstreamHTTP:
		return headerStr(r.upstreamHeader(v.arg), nil, false)
	case kHTTPHost:
		if r.HTTP == nil {
			return "", false, true
		}
		if h, ok := HostHeader(r.HTTP); ok {
			return h, true, true
		}
		return "", false, true
	case kHTTPCookie:
		vals := r.header()["Cookie"]
		switch len(vals) {
		case 0:
			return "", false, true
		case 1:
			return vals[0], true, true
		}
		return "", true, false
	case kCookie:
		s, found = cookie(r.header()["Cookie"], v.arg)
		return s, found, true
	case kArg:
		s, found = arg(r.Args, v.arg)
		return s, found, true
	case kServerName:
		return r.ServerName, true, true
	case kServerProtocol:
		if r.HTTP == nil {
			return "", false, true
		}
		return r.HTTP.Proto, true, true
	case kHost:
		h := r.rawHost()
		if hasUpper(h) {
			return "", true, false
		}
		return h, true, true
	case kHostname:
		return r.Hostname, true, true
	case kInvalidReferer:
		// computed once per request, as nginx caches it: a location's valid_referers does not change what a
		// server-level `if ($invalid_referer)` already read
		if r.referer == 0 {
			r.referer = 1
			if r.Referers != nil && r.HTTP != nil && !r.Referers.Valid(r.HTTP.Header["Referer"]) {
				r.referer = 2
			}
		}
		if r.referer == 2 {
			return "1", true, true
		}
		return "", true, true
	case kNginxVersion:
		// nginx's stock fastcgi_params sends SERVER_SOFTWARE nginx/$nginx_version: the file works unchanged
		return version.Version, true, true
	case kArgs:
		return r.Args, r.Args != "", true
	case kIsArgs:
		if r.Args != "" {
			return "?", true, true
		}
		return "", true, true
	case kRequestURI:
		if r.HTTP == nil {
			return "", false, true
		}
		return originForm(r.HTTP), true, true
	case kURI:
		return r.URI, true, true
	case kDocumentRoot:
		return r.DocumentRoot, true, true
	case kRequestFilename:
		if r.RequestFilename != "" {
			return r.RequestFilename, true, true
		}
		if r.Alias {
			return r.aliasFilename(), true, true
		}
		return "", true, false
	case kRequestMethod:
		if r.HTTP == nil {
			return "", false, true
		}
		return r.HTTP.Method, true, true
	case kScheme:
		if r.tls() != nil {
			return "https", true, true
		}
		return "http", true, true
	case kHTTPS:
		if r.tls() != nil {
			return "on", true, true
		}
		return "", true, true
	case kContentType:
		return firstHeader(r.header(), "Content-Type")
	case kContentLength:
		return firstHeader(r.header(), "Content-Length")
	case kRemoteUser:
		return r.RemoteUser, r.RemoteUser != "", true
	case kProxyHost:
		return r.ProxyHost, r.ProxyHost != "", true
	case kProxyPort:
		return r.ProxyPort, r.ProxyPort != "", true
	case kUpstreamAddr:
		return r.UpstreamAddr, r.UpstreamAddr != "", true
	case kUpstreamStatus:
		return r.UpstreamStatus, r.UpstreamStatus != "", true
	case kUpstreamCacheStatus:
		return r.UpstreamCacheStatus, r.UpstreamCacheStatus != "", true
	case kUpstreamResponseTime:
		return r.UpstreamResponseTime, r.UpstreamResponseTime != "", true
	case kUpstreamConnectTime:
		return r.UpstreamConnectTime, r.UpstreamConnectTime != "", true
	case kUpstreamHeaderTime:
		return r.UpstreamHeaderTime, r.UpstreamHeaderTime != "", true
	case kProtocol, kUpstreamBytesSent, kUpstreamBytesReceived, kSSLPrereadServerName, kSSLPrereadALPN:
		s := r.streamStr(v.kind)
		return s, s != "", true
	case kSSLProtocol:
		cs := r.tls()
		if cs == nil {
			return "", false, true
		}
		return tlsVersionName(cs.Version), true, true
	case kSSLCipher:
		cs := r.tls()
		if cs == nil {
			return "", false, true
		}
		return cipherName(cs.CipherSuite), true, true
	case kSSLServerName:
		cs := r.tls()
		if cs == nil || cs.ServerName == "" {
			return "", false, true
		}
		return cs.ServerName, true, true
	case kSSLALPNProtocol:
		cs := r.tls()
		if cs == nil {
			return "", false, true
		}
		return cs.NegotiatedProtocol, true, true
	case kSSLSessionReused:
		cs := r.tls()
		switch {
		case cs == nil:
			return "", false, true
		case cs.DidResume:
			return "r", true, true
		}
		return ".", true, true
	case kHTTP2:
		switch {
		case !r.HTTP2:
			return "", true, true
		case r.tls() != nil:
			return "h2", true, true
		}
		return "h2c", true, true
	case kFastCGIScriptName:
		if r.FastCGIScriptName != "" {
			return r.FastCGIScriptName, true, true
		}
		return r.URI, true, true
	case kFastCGIPathInfo:
		return r.FastCGIPathInfo, true, true
	case kLimitReqStatus:
		return r.LimitReqStatus, r.LimitReqStatus != "", true
	case kLimitConnStatus:
		return r.LimitConnStatus, r.LimitConnStatus != "", true
	case kSecureLink:
		v, found := r.secureLink()
		return v, found, true
	case kSecureLinkExpires:
		return r.secureLinkExpires, r.hasSecureLinkExpires, true
	case kGzipRatio:
		return r.GzipRatio, r.GzipRatio != "", true
	}
	return "", false, false
}

// appendVar appends a variable's value to dst and reports whether it was found (nginx's not_found is what
// log formats write as "-"). A variable that is not found appends nothing.
func (r *Request) appendVar(dst []byte, v *Var) ([]byte, bool) {
	if s, found, ok := r.str(v); ok {
		return append(dst, s...), found
	}
	switch v.kind {
	case kHTTP:
		if vals := r.header()[v.arg]; len(vals) > 0 {
			return appendJoined(dst, vals, ", "), true
		}
		if r.HTTP == nil {
			return dst, false // a stream session
		}
		return appendJoined(dst, r.HTTP.TransferEncoding, ", "), true // only reached for Transfer-Encoding
	case kSentHTTP:
		return appendJoined(dst, r.ResponseHeader[v.arg], ", "), true
	case kUpstreamHTTP:
		return appendJoined(dst, r.upstreamHeader(v.arg), ", "), true
	case kHTTPCookie:
		return appendJoined(dst, r.header()["Cookie"], "; "), true
	case kRemoteAddr:
		return appendAddr(dst, r.RemoteAddr)
	case kRemotePort:
		return appendPort(dst, r.RemoteAddr)
	case kBinaryRemoteAddr:
		a := r.RemoteAddr.Addr().Unmap()
		switch {
		case a.Is4():
			b := a.As4()
			return append(dst, b[:]...), true
		case a.Is6():
			b := a.As16()
			return append(dst, b[:]...), true
		}
		return dst, false
	case kRealipRemoteAddr:
		return appendAddr(dst, r.realip())
	case kRealipRemotePort:
		return appendPort(dst, r.realip())
	case kProxyProtocolAddr:
		return appendAddr(dst, r.ProxyProtocolAddr)
	case kProxyProtocolPort:
		return appendPort(dst, r.ProxyProtocolAddr)
	case kServerAddr:
		return appendAddr(dst, r.LocalAddr)
	case kServerPort:
		return appendPort(dst, r.LocalAddr)
	case kHost:
		return appendLower(dst, r.rawHost()), true
	case kRealpathRoot:
		if r.DocumentRoot == "" {
			return dst, false
		}
		p, err := filepath.EvalSymlinks(r.DocumentRoot)
		if err != nil {
			return dst, false
		}
		if p, err = filepath.Abs(p); err != nil {
			return dst, false
		}
		return append(dst, p...), true
	case kRequestFilename:
		if r.Alias {
			return append(dst, r.aliasFilename()...), true
		}
		return append(append(dst, r.DocumentRoot...), r.URI...), true
	case kRequest:
		if r.RequestLine != "" {
			return append(dst, r.RequestLine...), true
		}
		if r.HTTP == nil {
			return dst, false
		}
		dst = append(dst, r.HTTP.Method...)
		dst = append(dst, ' ')
		dst = append(dst, r.HTTP.RequestURI...)
		dst = append(dst, ' ')
		return append(dst, r.HTTP.Proto...), true
	case kStatus:
		return appendStatus(dst, r.Status), true
	case kLimitRate:
		return strconv.AppendInt(dst, r.LimitRate, 10), true
	case kBodyBytesSent:
		return strconv.AppendInt(dst, r.BodyBytesSent, 10), true
	case kBytesSent:
		return strconv.AppendInt(dst, r.BytesSent, 10), true
	case kRequestLength:
		return strconv.AppendInt(dst, r.RequestLength, 10), true
	case kBytesReceived:
		if r.Stream == nil {
			return dst, false
		}
		return strconv.AppendInt(dst, r.Stream.BytesReceived, 10), true
	case kRequestTime, kSessionTime:
		var ms int64
		if !r.Start.IsZero() {
			ms = max(time.Since(r.Start).Milliseconds(), 0)
		}
		return appendMillis(dst, ms), true
	case kTimeLocal:
		return appendTimeLocal(dst, time.Now()), true
	case kTimeISO8601:
		return appendTimeISO8601(dst, time.Now()), true
	case kMsec:
		return appendMillis(dst, time.Now().UnixMilli()), true
	case kRequestID:
		if !r.hasRequestID {
			var b [16]byte
			rand.Read(b[:]) // never fails (Go 1.24+)
			hex.Encode(r.requestID[:], b[:])
			r.hasRequestID = true
		}
		return append(dst, r.requestID[:]...), true
	case kConnection:
		return strconv.AppendUint(dst, r.ConnID, 10), true
	case kConnectionRequests:
		return strconv.AppendInt(dst, int64(r.ConnRequests), 10), true
	case kProxyAddXForwardedFor:
		xff := r.header()["X-Forwarded-For"]
		dst = appendJoined(dst, xff, ", ")
		a := r.RemoteAddr.Addr()
		if !a.IsValid() {
			return dst, len(xff) > 0
		}
		if len(xff) > 0 {
			dst = append(dst, ", "...)
		}
		return a.Unmap().WithZone("").AppendTo(dst), true
	case kPid:
		return strconv.AppendInt(dst, int64(os.Getpid()), 10), true
	}
	if v.kind >= kSSLClientVerify && v.kind <= kSSLClientVRemain {
		return r.appendClientCert(dst, v.kind)
	}
	return dst, false
}

// streamStr is the value of a stream session's string variable; "" outside a session.
func (r *Request) streamStr(k kind) string {
	sv := r.Stream
	if sv == nil {
		return ""
	}
	switch k {
	case kProtocol:
		return sv.Protocol
	case kUpstreamBytesSent:
		return sv.UpstreamBytesSent
	case kUpstreamBytesReceived:
		return sv.UpstreamBytesReceived
	case kSSLPrereadServerName:
		return sv.SSLPrereadServerName
	}
	return sv.SSLPrereadALPN
}

func (r *Request) header() http.Header {
	if r.HTTP == nil {
		return nil
	}
	return r.HTTP.Header
}

func (r *Request) tls() *tls.ConnectionState {
	if r.TLS != nil {
		return r.TLS
	}
	if r.HTTP != nil {
		return r.HTTP.TLS
	}
	return nil
}

func (r *Request) realip() netip.AddrPort {
	if r.RealipRemoteAddr.IsValid() {
		return r.RealipRemoteAddr
	}
	return r.RemoteAddr
}

// HostHeader is the request's Host header as the client sent it ($http_host, FastCGI's HTTP_HOST). net/http
// keeps it in Request.Host, except for an HTTP/1 absolute-form target ("GET http://a/ HTTP/1.1"), where
// Request.Host is the target's authority ($host) and internal/h1 keeps the header, or its absence (an empty
// list), under Header["Host"].
func HostHeader(r *http.Request) (string, bool) {
	if v, ok := r.Header["Host"]; ok {
		if len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	return r.Host, r.Host != ""
}

// aliasFilename is $request_filename in an alias location: the alias in place of the location's prefix (the
// alias alone in a regex location), as nginx maps it.
func (r *Request) aliasFilename() string {
	if r.AliasFrom == "" {
		return r.AliasTo
	}
	if rest, ok := strings.CutPrefix(r.URI, r.AliasFrom); ok {
		return r.AliasTo + rest
	}
	return r.DocumentRoot + r.URI
}

// AfterPass joins the value of an $upstream_* variable from an earlier upstream pass of the request (before
// an internal redirect; "" for none) and the current pass's, " : " between them, as nginx lists them.
func AfterPass(prev, cur string) string {
	if prev == "" {
		return cur
	}
	return prev + " : " + cur
}

// HostName is $host: the request's host (URI authority or Host header) lower-cased, without port or trailing
// dot, else the server name.
func (r *Request) HostName() string { return strings.ToLower(r.rawHost()) }

// rawHost is $host before lower-casing: the request's host (URI authority or Host header) without port or
// trailing dot, else the server name.
func (r *Request) rawHost() string {
	var h string
	if r.HTTP != nil {
		h = r.HTTP.Host
	}
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			h = h[:i+1]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return r.ServerName
	}
	return h
}

// user reads a user variable: a value given by Set wins; then a map (evaluated once per request unless
// volatile); then a named capture of the last regex match.
func (r *Request) user(u *userVar) (string, bool) {
	s := r.slot(u.idx)
	switch s.state {
	case slotSet, slotCached:
		return s.val, true
	case slotBusy:
		return "", false // a map that reads itself: nginx reports a cycle and yields not found
	}
	if u.m != nil {
		s.state = slotBusy
		val := u.m.eval(r)
		s = r.slot(u.idx) // eval may have grown the slots
		if u.m.isVolatile() {
			s.state = slotUnset
		} else {
			s.val, s.state = val, slotCached
		}
		return val, true
	}
	for i, n := range r.CaptureNames {
		if n != "" && i < len(r.Captures) && strings.EqualFold(n, u.name) {
			return r.Captures[i], true
		}
	}
	return "", false
}

// upstreamHeader returns the upstream response's values of the canonical name (none without a response).
func (r *Request) upstreamHeader(name string) []string {
	if r.UpstreamHeader == nil {
		return nil
	}
	return r.UpstreamHeader.Values(name)
}

// headerStr returns a header's value from its field's values when it has exactly one; several values need
// appendVar to join them. For Transfer-Encoding, which Go moves out of the header map, it falls back to
// req.TransferEncoding.
func headerStr(vals []string, req *http.Request, te bool) (string, bool, bool) {
	switch len(vals) {
	case 0:
		if te && req != nil && len(req.TransferEncoding) > 0 {
			return "", true, false
		}
		return "", false, true
	case 1:
		return vals[0], true, true
	}
	return "", true, false
}

func firstHeader(h http.Header, key string) (string, bool, bool) {
	if vals := h[key]; len(vals) > 0 {
		return vals[0], true, true
	}
	return "", false, true
}

func appendJoined(dst []byte, vals []string, sep string) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, sep...)
		}
		dst = append(dst, v...)
	}
	return dst
}

func appendAddr(dst []byte, ap netip.AddrPort) ([]byte, bool) {
	a := ap.Addr()
	if !a.IsValid() {
		return dst, false
	}
	return a.Unmap().WithZone("").AppendTo(dst), true
}

func appendPort(dst []byte, ap netip.AddrPort) ([]byte, bool) {
	if !ap.IsValid() || ap.Port() == 0 {
		return dst, false
	}
	return strconv.AppendUint(dst, uint64(ap.Port()), 10), true
}

// cookie finds name (case-insensitive) in Cookie header values as nginx does: pairs are separated by ';' or
// ',', spaces around '=' are skipped, and the value runs to the next ';'.
func cookie(lines []string, name string) (string, bool) {
	for _, h := range lines {
		i := 0
		for i < len(h) {
			if len(h)-i >= len(name) && strings.EqualFold(h[i:i+len(name)], name) {
				j := i + len(name)
				for j < len(h) && h[j] == ' ' {
					j++
				}
				if j < len(h) && h[j] == '=' {
					j++
					for j < len(h) && h[j] == ' ' {
						j++
					}
					end := j
					for end < len(h) && h[end] != ';' {
						end++
					}
					return h[j:end], true
				}
			}
			for i < len(h) {
				c := h[i]
				i++
				if c == ';' || c == ',' {
					break
				}
			}
			for i < len(h) && h[i] == ' ' {
				i++
			}
		}
	}
	return "", false
}

// arg finds name (case-insensitive) in the query string as nginx's ngx_http_arg: "name=value" at the start or
// after '&'; the value is raw (not unescaped) and runs to the next '&'.
func arg(args, name string) (string, bool) {
	for args != "" {
		var seg string
		seg, args, _ = strings.Cut(args, "&")
		if len(seg) > len(name) && seg[len(name)] == '=' && strings.EqualFold(seg[:len(name)], name) {
			return seg[len(name)+1:], true
		}
	}
	return "", false
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendStatus writes the status as nginx's "%03ui": 0 before a response is chosen gives "000".
func appendStatus(dst []byte, s int) []byte {
	if s < 0 || s > 999 {
		return strconv.AppendInt(dst, int64(s), 10)
	}
	return append(dst, byte('0'+s/100), byte('0'+s/10%10), byte('0'+s%10))
}

// appendMillis writes ms as seconds with millisecond resolution: "1764046157.123".
func appendMillis(dst []byte, ms int64) []byte {
	dst = strconv.AppendInt(dst, ms/1000, 10)
	f := ms % 1000
	return append(dst, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

const monthNames = "JanFebMarAprMayJunJulAugSepOctNovDec"

// appendTimeLocal writes the Common Log Format time "25/Nov/2026:04:49:17 +0000" in the local zone.
func appendTimeLocal(dst []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = append2(dst, d)
	dst = append(dst, '/')
	dst = append(dst, monthNames[3*(mo-1):3*mo]...)
	dst = append(dst, '/')
	dst = append4(dst, y)
	dst = append(dst, ':')
	dst = appendClock(dst, h, mi, s)
	dst = append(dst, ' ')
	return appendZone(dst, t, false)
}

// appendTimeISO8601 writes "2026-11-25T04:49:17+00:00" in the local zone.
func appendTimeISO8601(dst []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = append4(dst, y)
	dst = append(dst, '-')
	dst = append2(dst, int(mo))
	dst = append(dst, '-')
	dst = append2(dst, d)
	dst = append(dst, 'T')
	dst = appendClock(dst, h, mi, s)
	return appendZone(dst, t, true)
}

func appendClock(dst []byte, h, m, s int) []byte {
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, m)
	dst = append(dst, ':')
	return append2(dst, s)
}

func appendZone(dst []byte, t time.Time, colon bool) []byte {
	_, off := t.Zone()
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	dst = append(dst, sign)
	dst = append2(dst, off/3600)
	if colon {
		dst = append(dst, ':')
	}
	return append2(dst, off%3600/60)
}

func append2(dst []byte, n int) []byte {
	return append(dst, byte('0'+n/10%10), byte('0'+n%10))
}

func append4(dst []byte, n int) []byte {
	if n < 0 || n > 9999 {
		return strconv.AppendInt(dst, int64(n), 10)
	}
	return append(dst, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// originForm is the request target without scheme and host: nginx's $request_uri for an absolute-form request
// ("GET http://host/p?q") is "/p?q".
func originForm(h *http.Request) string {
	u := h.RequestURI
	if u == "" || u[0] == '/' || u == "*" {
		return u
	}
	if h.URL != nil {
		return h.URL.RequestURI()
	}
	return u
}
