package route

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ServerEntry is one server block listening on an address: its server_name values and payload.
type ServerEntry[T any] struct {
	Names   []string
	Default bool // listen ... default_server
	Value   T
}

// ServerError is a configuration error in the server at index Entry of the list given to
// NewServerIndex, so the caller can add file:line. It also describes an ignored name (Conflicts).
type ServerError struct {
	Entry int
	Msg   string
}

func (e *ServerError) Error() string { return e.Msg }

// ServerIndex selects a server by host name. It is immutable and safe for concurrent use.
type ServerIndex[T any] struct {
	values    []T
	exact     map[string]int // "example.com", and ".example.com" as "example.com"
	head      map[string]int // "*.example.com" and ".example.com" as "example.com"
	tail      map[string]int // "www.example.*" as "www.example"
	regex     []serverRegex
	def       int
	conflicts []ServerError
}

type serverRegex struct {
	re    *regexp.Regexp
	entry int
}

// NewServerIndex indexes the servers listening on one address, in config order. Names: exact "example.com",
// leading wildcard "*.example.com", trailing wildcard "www.example.*", the special ".example.com" (= example.com and
// *.example.com), regex "~^(?<user>.+)\.example\.net$", and "" (matches requests without Host). Name matching is
// case-insensitive. Errors for invalid wildcards (e.g. "w*.example.com") and bad regexes.
//
// Errors are *ServerError. As in nginx, a name already claimed by an earlier one on the same
// address is ignored rather than refused: Conflicts lists those. A regex with an upper-case letter
// matches case-insensitively (hosts are lower-cased before matching), as in nginx. Exactly one
// entry may be Default.
func NewServerIndex[T any](entries []ServerEntry[T]) (*ServerIndex[T], error) {
	if len(entries) == 0 {
		return nil, errors.New("route: no servers to index")
	}
	ix := &ServerIndex[T]{
		values: make([]T, len(entries)),
		exact:  make(map[string]int),
		head:   make(map[string]int),
		tail:   make(map[string]int),
		def:    -1,
	}
	for i, e := range entries {
		ix.values[i] = e.Value
		if e.Default {
			if ix.def >= 0 {
				return nil, &ServerError{Entry: i, Msg: "a duplicate default server"}
			}
			ix.def = i
		}
		for _, name := range e.Names {
			if err := ix.add(name, i); err != nil {
				return nil, &ServerError{Entry: i, Msg: err.Error()}
			}
		}
	}
	if ix.def < 0 {
		ix.def = 0
	}
	return ix, nil
}

// add indexes one server_name value of entry i, with nginx's validation.
func (ix *ServerIndex[T]) add(name string, i int) error {
	if strings.HasPrefix(name, "~") {
		src := name[1:]
		caseless := strings.ContainsFunc(src, func(r rune) bool { return 'A' <= r && r <= 'Z' })
		re, err := compileRegex(src, caseless)
		if err != nil {
			return fmt.Errorf("server name %q: %v", name, err)
		}
		ix.regex = append(ix.regex, serverRegex{re: re, entry: i})
		return nil
	}
	if name == "." || strings.HasPrefix(name, "*") && !strings.HasPrefix(name, "*.") {
		return fmt.Errorf("server name %q is invalid", name)
	}
	if strings.IndexByte(name, 0) >= 0 || strings.Contains(name, "..") || strings.Count(name, "*") > 1 {
		return fmt.Errorf("invalid server name or wildcard %q", name)
	}
	key := lowerASCII(name)
	switch {
	case len(key) > 1 && key[0] == '.':
		key = key[1:]
		if taken(ix.exact, key) || taken(ix.head, key) {
			ix.conflict(name, i)
			return nil
		}
		ix.exact[key] = i
		ix.head[key] = i
	case len(key) > 2 && strings.HasPrefix(key, "*."):
		ix.claim(ix.head, key[2:], name, i)
	case len(key) > 2 && strings.HasSuffix(key, ".*"):
		ix.claim(ix.tail, key[:len(key)-2], name, i)
	case strings.Contains(key, "*"):
		return fmt.Errorf("invalid server name or wildcard %q", name)
	default:
		ix.claim(ix.exact, key, name, i)
	}
	return nil
}

func taken(m map[string]int, key string) bool {
	_, ok := m[key]
	return ok
}

// claim gives key in m to entry i unless an earlier name has it.
func (ix *ServerIndex[T]) claim(m map[string]int, key, name string, i int) {
	if taken(m, key) {
		ix.conflict(name, i)
		return
	}
	m[key] = i
}

func (ix *ServerIndex[T]) conflict(name string, i int) {
	ix.conflicts = append(ix.conflicts, ServerError{Entry: i, Msg: fmt.Sprintf("conflicting server name %q, ignored", name)})
}

// Conflicts returns the names NewServerIndex ignored because an earlier server_name on the same
// address already claimed them (nginx warns "conflicting server name ... ignored").
func (ix *ServerIndex[T]) Conflicts() []ServerError {
	return ix.conflicts
}

// Select picks the server for a Host value (port and trailing dot stripped, lower-cased by Select itself): exact name,
// then longest leading wildcard, then longest trailing wildcard, then first matching regex in order, then the default
// server (the entry with Default, or else the first entry). Captures from a regex name are returned like Match's.
//
// "" selects the server named "" (requests without Host). A host CleanHost rejects selects the
// default server, which is the one nginx answers 400 from. Select does not allocate unless the
// host has upper-case letters or a regex name matches.
func (ix *ServerIndex[T]) Select(host string) (T, []string, []string) {
	name, ok := CleanHost(host)
	if !ok && host != "" {
		return ix.values[ix.def], nil, nil
	}
	return ix.SelectClean(name)
}

// SelectClean is Select for a name CleanHost already returned (the caller had it cleaned to check it).
func (ix *ServerIndex[T]) SelectClean(name string) (T, []string, []string) {
	if i, ok := ix.exact[name]; ok {
		return ix.values[i], nil, nil
	}
	// Longest leading wildcard first: try the suffixes after each dot, left to right.
	for rest := name; len(ix.head) > 0; {
		j := strings.IndexByte(rest, '.')
		if j < 0 {
			break
		}
		rest = rest[j+1:]
		if i, ok := ix.head[rest]; ok {
			return ix.values[i], nil, nil
		}
	}
	// Longest trailing wildcard first: try the prefixes before each dot, right to left.
	for j := len(name); len(ix.tail) > 0; {
		if j = strings.LastIndexByte(name[:j], '.'); j < 0 {
			break
		}
		if i, ok := ix.tail[name[:j]]; ok {
			return ix.values[i], nil, nil
		}
	}
	for _, r := range ix.regex {
		if r.re.MatchString(name) {
			return ix.values[r.entry], r.re.FindStringSubmatch(name), r.re.SubexpNames()
		}
	}
	return ix.values[ix.def], nil, nil
}

// CleanHost returns the normalised, validated host name of a Host header value, or "" with ok=false for invalid
// hosts (nginx answers 400 "Bad Request" for a Host with "/" or ".." etc.).
//
// It follows nginx's ngx_http_validate_host: the port is dropped (an IPv6 literal keeps its
// brackets), one trailing dot is dropped, ASCII letters are lower-cased; "..", "/", NUL, spaces
// and control characters make the host invalid, and so does an empty name.
func CleanHost(host string) (string, bool) {
	if name, ok := plainHost(host); ok {
		return name, true
	}
	return cleanHost(host)
}

// plainHost is CleanHost for the usual Host value, in one pass over a table: lower-case letters, digits and
// '-' in labels separated by single dots, then an optional port of digits. false: not such a value, and
// cleanHost decides.
func plainHost(host string) (string, bool) {
	i, dot := 0, true // dot: the last byte was a dot (a leading dot is not plain)
	for ; i < len(host); i++ {
		c := host[i]
		if c == '.' {
			if dot {
				return "", false
			}
			dot = true
			continue
		}
		if !hostByte[c] {
			break
		}
		dot = false
	}
	if i == 0 || dot {
		return "", false // empty, or a trailing dot
	}
	if i < len(host) {
		if host[i] != ':' {
			return "", false
		}
		for _, c := range []byte(host[i+1:]) {
			if c < '0' || c > '9' {
				return "", false
			}
		}
	}
	return host[:i], true
}

// hostByte marks the bytes of a plain host name's labels.
var hostByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'] = true
	return t
}()

// cleanHost is CleanHost for any value.
func cleanHost(host string) (string, bool) {
	const (
		usual = iota
		literal
		rest
	)
	dot := -2 // index of the last '.'
	end := len(host)
	state := usual
	upper := false
	for i := 0; i < len(host); i++ {
		switch c := host[i]; c {
		case '.':
			if dot == i-1 {
				return "", false
			}
			dot = i
		case ':':
			if state == usual {
				end = i
				state = rest
			}
		case '[':
			if i == 0 {
				state = literal
			}
		case ']':
			if state == literal {
				end = i + 1
				state = rest
			}
		default:
			if c == '/' || c <= ' ' || c == 0x7f {
				return "", false
			}
			if 'A' <= c && c <= 'Z' {
				upper = true
			}
		}
	}
	if dot == end-1 {
		end--
	}
	if end <= 0 {
		return "", false
	}
	host = host[:end]
	if upper {
		host = lowerASCII(host)
	}
	return host, true
}

// lowerASCII lower-cases ASCII letters only, as nginx's ngx_strlow does.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
