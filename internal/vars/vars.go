// Package vars implements nginx variables: the per-request state they read, compiled value templates
// ("$scheme://$host$request_uri"), user variables (set) and map.
package vars

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Request is the per-request state variables read. One per HTTP request; not safe for concurrent use.
type Request struct {
	HTTP                 *http.Request
	Start                time.Time
	ConnID               uint64
	ConnRequests         int
	RemoteAddr           netip.AddrPort
	RealipRemoteAddr     netip.AddrPort
	LocalAddr            netip.AddrPort
	TLS                  *tls.ConnectionState
	HTTP2                bool
	ServerName           string
	Hostname             string
	URI                  string
	Args                 string
	DocumentRoot         string
	Captures             []string
	CaptureNames         []string
	Status               int
	BodyBytesSent        int64
	BytesSent            int64
	RequestLength        int64
	RemoteUser           string
	ProxyHost, ProxyPort string
	UpstreamAddr         string
	UpstreamStatus       string
	UpstreamResponseTime string
	UpstreamConnectTime  string
	UpstreamHeaderTime   string
	UpstreamHeader       http.Header
	ResponseHeader       http.Header
	FastCGIScriptName    string
	FastCGIPathInfo      string

	requestID string
	user      []string
	userSet   []bool
	table     *Table
}

// Index identifies a user variable.
type Index int

// Set assigns a user variable (the `set` directive at run time).
func (r *Request) Set(i Index, value string) {
	r.grow(int(i) + 1)
	r.user[i], r.userSet[i] = value, true
}

func (r *Request) grow(n int) {
	for len(r.user) < n {
		r.user = append(r.user, "")
		r.userSet = append(r.userSet, false)
	}
}

// Escape selects how log_format escapes variable values.
type Escape int

const (
	EscapeDefault Escape = iota // " \ and bytes < 32 or > 126 as \xHH
	EscapeJSON
	EscapeNone
)

type kind int

const (
	kBuiltin kind = iota
	kPrefix
	kCapture
	kNamedCapture
	kUser
)

// Var identifies one variable: a built-in, a prefixed one with its argument, a capture or a user variable.
type Var struct {
	k    kind
	fn   func(*Request, []byte) []byte
	pfx  func(*Request, string, []byte) []byte
	arg  string
	n    int
	user Index
	name string
	m    *Map
}

// Table is the set of variable names a configuration knows.
type Table struct {
	users    map[string]Index
	maps     map[Index]*Map
	captures map[string]bool
	n        int
}

// NewTable returns a table of the built-ins.
func NewTable() *Table { return &Table{users: map[string]Index{}, maps: map[Index]*Map{}} }

// Declare declares a user variable (for `set`); declaring it again returns the same Index.
func (t *Table) Declare(name string) (Index, error) {
	if _, ok := builtins[name]; ok {
		return 0, fmt.Errorf("the duplicate %q variable", name)
	}
	if i, ok := t.users[name]; ok {
		if _, isMap := t.maps[i]; isMap {
			return 0, fmt.Errorf("the duplicate %q variable", name)
		}
		return i, nil
	}
	i := Index(t.n)
	t.n++
	t.users[name] = i
	return i, nil
}

// DeclareMap declares a variable defined by a map.
func (t *Table) DeclareMap(name string, m *Map) (Index, error) {
	if _, ok := t.users[name]; ok {
		return 0, fmt.Errorf("the duplicate %q variable", name)
	}
	i, err := t.Declare(name)
	if err != nil {
		return 0, err
	}
	t.maps[i] = m
	return i, nil
}

// Lookup resolves a variable name (without '$').
func (t *Table) Lookup(name string) (Var, bool) {
	if f, ok := builtins[name]; ok {
		return Var{k: kBuiltin, fn: f, name: name}, true
	}
	for _, p := range prefixes {
		if a, ok := strings.CutPrefix(name, p.prefix); ok && a != "" {
			return Var{k: kPrefix, pfx: p.fn, arg: a, name: name}, true
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n <= 9 {
		return Var{k: kCapture, n: n, name: name}, true
	}
	if i, ok := t.users[name]; ok {
		return Var{k: kUser, user: i, name: name, m: t.maps[i]}, true
	}
	return Var{}, false
}

// Value reads one variable.
func (r *Request) Value(v Var) string { return string(r.appendVar(nil, v)) }

func (r *Request) appendVar(dst []byte, v Var) []byte {
	switch v.k {
	case kBuiltin:
		return v.fn(r, dst)
	case kPrefix:
		return v.pfx(r, v.arg, dst)
	case kCapture:
		if v.n < len(r.Captures) {
			return append(dst, r.Captures[v.n]...)
		}
		return dst
	case kNamedCapture:
		for i, n := range r.CaptureNames {
			if n == v.name && i < len(r.Captures) {
				return append(dst, r.Captures[i]...)
			}
		}
		return dst
	case kUser:
		if int(v.user) < len(r.userSet) && r.userSet[v.user] {
			return append(dst, r.user[v.user]...)
		}
		if v.m != nil {
			val := v.m.eval(r)
			if !v.m.volatile {
				r.Set(v.user, val)
			}
			return append(dst, val...)
		}
		// a named capture of the last regex match may share the name
		for i, n := range r.CaptureNames {
			if n == v.name && i < len(r.Captures) {
				return append(dst, r.Captures[i]...)
			}
		}
	}
	return dst
}

func s(f func(r *Request) string) func(*Request, []byte) []byte {
	return func(r *Request, dst []byte) []byte { return append(dst, f(r)...) }
}

var builtins map[string]func(*Request, []byte) []byte

func init() {
	builtins = map[string]func(*Request, []byte) []byte{
		"remote_addr": func(r *Request, d []byte) []byte {
			if !r.RemoteAddr.IsValid() {
				return d
			}
			return r.RemoteAddr.Addr().AppendTo(d)
		},
		"remote_port": func(r *Request, d []byte) []byte {
			if !r.RemoteAddr.IsValid() {
				return d
			}
			return strconv.AppendUint(d, uint64(r.RemoteAddr.Port()), 10)
		},
		"realip_remote_addr": func(r *Request, d []byte) []byte {
			a := r.RealipRemoteAddr
			if !a.IsValid() {
				a = r.RemoteAddr
			}
			if !a.IsValid() {
				return d
			}
			return a.Addr().AppendTo(d)
		},
		"server_addr": func(r *Request, d []byte) []byte {
			if !r.LocalAddr.IsValid() {
				return d
			}
			return r.LocalAddr.Addr().AppendTo(d)
		},
		"server_port": func(r *Request, d []byte) []byte {
			if !r.LocalAddr.IsValid() {
				return d
			}
			return strconv.AppendUint(d, uint64(r.LocalAddr.Port()), 10)
		},
		"server_name":     s(func(r *Request) string { return r.ServerName }),
		"server_protocol": s(func(r *Request) string { return r.HTTP.Proto }),
		"host": s(func(r *Request) string {
			h := r.HTTP.Host
			if h == "" {
				return r.ServerName
			}
			if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
				h = h[:i]
			}
			return strings.ToLower(h)
		}),
		"hostname":     s(func(r *Request) string { return r.Hostname }),
		"args":         s(func(r *Request) string { return r.Args }),
		"query_string": s(func(r *Request) string { return r.Args }),
		"is_args": s(func(r *Request) string {
			if r.Args != "" {
				return "?"
			}
			return ""
		}),
		"request_uri":   s(func(r *Request) string { return r.HTTP.RequestURI }),
		"uri":           s(func(r *Request) string { return r.URI }),
		"document_uri":  s(func(r *Request) string { return r.URI }),
		"document_root": s(func(r *Request) string { return r.DocumentRoot }),
		"realpath_root": s(func(r *Request) string {
			p, err := filepath.EvalSymlinks(r.DocumentRoot)
			if err != nil {
				return r.DocumentRoot
			}
			return p
		}),
		"request_method": s(func(r *Request) string { return r.HTTP.Method }),
		"request": s(func(r *Request) string {
			return r.HTTP.Method + " " + r.HTTP.RequestURI + " " + r.HTTP.Proto
		}),
		"scheme": s(func(r *Request) string {
			if r.TLS != nil {
				return "https"
			}
			return "http"
		}),
		"https": s(func(r *Request) string {
			if r.TLS != nil {
				return "on"
			}
			return ""
		}),
		"status": func(r *Request, d []byte) []byte {
			if r.Status == 0 {
				return append(d, "000"...)
			}
			return strconv.AppendInt(d, int64(r.Status), 10)
		},
		"body_bytes_sent": func(r *Request, d []byte) []byte { return strconv.AppendInt(d, r.BodyBytesSent, 10) },
		"bytes_sent":      func(r *Request, d []byte) []byte { return strconv.AppendInt(d, r.BytesSent, 10) },
		"request_length":  func(r *Request, d []byte) []byte { return strconv.AppendInt(d, r.RequestLength, 10) },
		"request_time": func(r *Request, d []byte) []byte {
			return strconv.AppendFloat(d, time.Since(r.Start).Seconds(), 'f', 3, 64)
		},
		"time_local": func(r *Request, d []byte) []byte {
			return time.Now().AppendFormat(d, "02/Jan/2006:15:04:05 -0700")
		},
		"time_iso8601": func(r *Request, d []byte) []byte {
			return time.Now().AppendFormat(d, "2006-01-02T15:04:05-07:00")
		},
		"msec": func(r *Request, d []byte) []byte {
			return strconv.AppendFloat(d, float64(time.Now().UnixMilli())/1000, 'f', 3, 64)
		},
		"request_id": func(r *Request, d []byte) []byte {
			if r.requestID == "" {
				var b [16]byte
				rand.Read(b[:])
				r.requestID = hex.EncodeToString(b[:])
			}
			return append(d, r.requestID...)
		},
		"connection":          func(r *Request, d []byte) []byte { return strconv.AppendUint(d, r.ConnID, 10) },
		"connection_requests": func(r *Request, d []byte) []byte { return strconv.AppendInt(d, int64(r.ConnRequests), 10) },
		"content_type":        s(func(r *Request) string { return r.HTTP.Header.Get("Content-Type") }),
		"content_length":      s(func(r *Request) string { return r.HTTP.Header.Get("Content-Length") }),
		"remote_user":         s(func(r *Request) string { return r.RemoteUser }),
		"proxy_host":          s(func(r *Request) string { return r.ProxyHost }),
		"proxy_port":          s(func(r *Request) string { return r.ProxyPort }),
		"proxy_add_x_forwarded_for": func(r *Request, d []byte) []byte {
			if xff := r.HTTP.Header.Values("X-Forwarded-For"); len(xff) > 0 {
				d = append(d, strings.Join(xff, ", ")...)
				d = append(d, ", "...)
			}
			if r.RemoteAddr.IsValid() {
				d = r.RemoteAddr.Addr().AppendTo(d)
			}
			return d
		},
		"upstream_addr":          s(func(r *Request) string { return r.UpstreamAddr }),
		"upstream_status":        s(func(r *Request) string { return r.UpstreamStatus }),
		"upstream_response_time": s(func(r *Request) string { return r.UpstreamResponseTime }),
		"upstream_connect_time":  s(func(r *Request) string { return r.UpstreamConnectTime }),
		"upstream_header_time":   s(func(r *Request) string { return r.UpstreamHeaderTime }),
		"ssl_protocol": s(func(r *Request) string {
			if r.TLS == nil {
				return ""
			}
			return protocolName(r.TLS.Version)
		}),
		"ssl_cipher": s(func(r *Request) string {
			if r.TLS == nil {
				return ""
			}
			return cipherName(r.TLS.CipherSuite)
		}),
		"ssl_server_name": s(func(r *Request) string {
			if r.TLS == nil {
				return ""
			}
			return r.TLS.ServerName
		}),
		"http2": s(func(r *Request) string {
			if r.HTTP2 && r.TLS != nil {
				return "h2"
			}
			if r.HTTP2 {
				return "h2c"
			}
			return ""
		}),
		"fastcgi_script_name": s(func(r *Request) string { return r.FastCGIScriptName }),
		"fastcgi_path_info":   s(func(r *Request) string { return r.FastCGIPathInfo }),
	}
}

type prefixVar struct {
	prefix string
	fn     func(*Request, string, []byte) []byte
}

// headerName turns a variable suffix (user_agent) into a header name (User-Agent).
func headerName(a string) string { return http.CanonicalHeaderKey(strings.ReplaceAll(a, "_", "-")) }

var prefixes = []prefixVar{
	{"http_", func(r *Request, a string, d []byte) []byte {
		vs := r.HTTP.Header.Values(headerName(a))
		sep := ", "
		if a == "cookie" {
			sep = "; "
		}
		for i, v := range vs {
			if i > 0 {
				d = append(d, sep...)
			}
			d = append(d, v...)
		}
		if len(vs) == 0 && a == "host" {
			d = append(d, r.HTTP.Host...)
		}
		return d
	}},
	{"sent_http_", func(r *Request, a string, d []byte) []byte {
		if r.ResponseHeader == nil {
			return d
		}
		return append(d, strings.Join(r.ResponseHeader.Values(headerName(a)), ", ")...)
	}},
	{"upstream_http_", func(r *Request, a string, d []byte) []byte {
		if r.UpstreamHeader == nil {
			return d
		}
		return append(d, strings.Join(r.UpstreamHeader.Values(headerName(a)), ", ")...)
	}},
	{"cookie_", func(r *Request, a string, d []byte) []byte {
		for _, line := range r.HTTP.Header.Values("Cookie") {
			for _, part := range strings.Split(line, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
				if k == a {
					return append(d, v...)
				}
			}
		}
		return d
	}},
	{"arg_", func(r *Request, a string, d []byte) []byte {
		for _, part := range strings.Split(r.Args, "&") {
			k, v, _ := strings.Cut(part, "=")
			if strings.EqualFold(k, a) {
				return append(d, v...)
			}
		}
		return d
	}},
}

func protocolName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return ""
}

// cipherName returns the OpenSSL name of a suite, as nginx reports it.
func cipherName(id uint16) string {
	name := tls.CipherSuiteName(id)
	if strings.HasPrefix(name, "TLS_AES") || strings.HasPrefix(name, "TLS_CHACHA20") {
		return name
	}
	n := strings.TrimPrefix(name, "TLS_")
	n = strings.Replace(n, "_WITH_", "_", 1)
	n = strings.ReplaceAll(n, "_", "-")
	n = strings.Replace(n, "AES-128-GCM", "AES128-GCM", 1)
	n = strings.Replace(n, "AES-256-GCM", "AES256-GCM", 1)
	n = strings.Replace(n, "AES-128-CBC", "AES128", 1)
	n = strings.Replace(n, "AES-256-CBC", "AES256", 1)
	n = strings.Replace(n, "CHACHA20-POLY1305-SHA256", "CHACHA20-POLY1305", 1)
	return n
}
