package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// SNIEntry is one server block of a listening socket, as far as certificate selection cares.
// Names are as in server_name ("~re" = regex, "*.example.com", "www.example.*", ".example.com",
// "$hostname"); Default marks the default server of the socket (listen ... default_server).
// Certs may be empty: a handshake that selects such a server fails, as in nginx
// ("no ssl_certificate is defined") and as ssl_reject_handshake on wants.
//
// Get, when set, supplies the server's certificate at handshake time (certificates obtained and renewed while
// running, e.g. from ACME); Certs, if any, are used when it fails.
type SNIEntry struct {
	Names   []string
	Default bool
	Certs   []*tls.Certificate
	Get     func(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// Selector picks certificates by SNI among the servers of one listening socket, following nginx's server_name
// rules for the SNI name: exact names first, then the longest "*.wildcard" / "wild.*" match, then regex names, then
// the default server's certificates. A server may have several certificates (e.g. RSA and ECDSA): pick the first one
// the client supports (tls.ClientHelloInfo.SupportsCertificate), else the first.
//
// As in nginx, leading wildcards ("*.example.com", ".example.com") are tried before trailing ones
// ("www.example.*"), regexes are tried in order, and when two servers claim the same name the first
// one wins. A Selector is immutable and safe for concurrent use; its GetCertificate method is meant
// for tls.Config.GetCertificate.
type Selector struct {
	certs  [][]*tls.Certificate // per entry
	gets   []func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	exact  map[string]int // "example.com" (also from ".example.com")
	head   map[string]int // "*.example.com" and ".example.com", keyed "example.com"
	tail   map[string]int // "www.example.*", keyed "www.example"
	regex  []sniRegex
	defIdx int
}

type sniRegex struct {
	re  *regexp.Regexp
	idx int
}

// NewSelector compiles the server names of entries. It fails on an invalid wildcard or regex, on
// more than one default entry, and on an empty entries list. Without a Default entry the first
// entry is the default, as in nginx.
func NewSelector(entries []SNIEntry) (*Selector, error) {
	if len(entries) == 0 {
		return nil, errors.New("certs: no servers for the selector")
	}
	s := &Selector{
		certs:  make([][]*tls.Certificate, len(entries)),
		gets:   make([]func(*tls.ClientHelloInfo) (*tls.Certificate, error), len(entries)),
		exact:  make(map[string]int),
		head:   make(map[string]int),
		tail:   make(map[string]int),
		defIdx: -1,
	}
	add := func(m map[string]int, key string, idx int) {
		if _, dup := m[key]; !dup {
			m[key] = idx
		}
	}
	for i, e := range entries {
		s.certs[i] = append([]*tls.Certificate(nil), e.Certs...)
		s.gets[i] = e.Get
		if e.Default {
			if s.defIdx >= 0 {
				return nil, fmt.Errorf("certs: more than one default server (entries %d and %d)", s.defIdx+1, i+1)
			}
			s.defIdx = i
		}
		for _, name := range e.Names {
			switch {
			case name == "":
				// Matches requests without Host; a handshake without SNI goes to the default server.
			case name[0] == '~':
				re, err := compileServerNameRegex(name[1:])
				if err != nil {
					return nil, fmt.Errorf("server_name %q: %v", name, err)
				}
				s.regex = append(s.regex, sniRegex{re, i})
			case name == "$hostname":
				if h, err := os.Hostname(); err == nil {
					add(s.exact, strings.ToLower(h), i)
				}
			default:
				name = strings.ToLower(name)
				star := strings.IndexByte(name, '*')
				switch {
				case strings.HasPrefix(name, "*.") && star == strings.LastIndexByte(name, '*') && len(name) > 2:
					add(s.head, name[2:], i)
				case strings.HasSuffix(name, ".*") && star == len(name)-1 && len(name) > 2:
					add(s.tail, name[:len(name)-2], i)
				case star >= 0:
					return nil, fmt.Errorf("server_name %q: invalid server name or wildcard", name)
				case name[0] == '.':
					if len(name) == 1 {
						return nil, fmt.Errorf("server_name %q: invalid server name or wildcard", name)
					}
					add(s.exact, name[1:], i)
					add(s.head, name[1:], i)
				default:
					add(s.exact, name, i)
				}
			}
		}
	}
	if s.defIdx < 0 {
		s.defIdx = 0
	}
	return s, nil
}

// compileServerNameRegex compiles a server_name regex like nginx: case-insensitive when the pattern
// has an upper-case letter (names are lower-cased before matching anyway).
func compileServerNameRegex(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, errors.New("empty regex")
	}
	if strings.IndexFunc(pattern, func(r rune) bool { return 'A' <= r && r <= 'Z' }) >= 0 {
		pattern = "(?i)" + pattern
	}
	return regexp.Compile(pattern)
}

// GetCertificate returns the certificate for the server the client's SNI name selects. It fails
// (and so the handshake fails) only when that server has no certificate.
func (s *Selector) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	idx := s.Index(hello.ServerName)
	certs := s.certs[idx]
	if get := s.gets[idx]; get != nil {
		c, err := get(hello)
		if err == nil && c != nil {
			return c, nil
		}
		if len(certs) == 0 {
			return nil, err
		}
	}
	switch len(certs) {
	case 0:
		return nil, fmt.Errorf("certs: no ssl_certificate is defined for the server selected by SNI %q", hello.ServerName)
	case 1:
		return certs[0], nil
	}
	for _, c := range certs {
		if hello.SupportsCertificate(c) == nil {
			return c, nil
		}
	}
	return certs[0], nil
}

// Index is the position in the entries given to NewSelector of the server an SNI name selects (the default
// server's for none or no match).
func (s *Selector) Index(serverName string) int {
	if name := normalizeSNI(serverName); name != "" {
		if i, ok := s.lookup(name); ok {
			return i
		}
	}
	return s.defIdx
}

// lookup finds the entry for a normalised SNI name, in nginx's order.
func (s *Selector) lookup(name string) (int, bool) {
	if i, ok := s.exact[name]; ok {
		return i, true
	}
	if len(s.head) > 0 {
		// Longest "*.suffix" first: strip one label at a time from the left.
		for j := 0; j < len(name); j++ {
			if name[j] == '.' {
				if i, ok := s.head[name[j+1:]]; ok {
					return i, true
				}
			}
		}
	}
	if len(s.tail) > 0 {
		// Longest "prefix.*" first: strip one label at a time from the right.
		for j := len(name) - 1; j > 0; j-- {
			if name[j] == '.' {
				if i, ok := s.tail[name[:j]]; ok {
					return i, true
				}
			}
		}
	}
	for _, r := range s.regex {
		if r.re.MatchString(name) {
			return r.idx, true
		}
	}
	return 0, false
}

// normalizeSNI lower-cases name and drops one trailing dot, allocating only when there is an
// upper-case letter.
func normalizeSNI(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}
