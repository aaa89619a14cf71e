package access

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Referers is a compiled valid_referers: which Referer headers leave $invalid_referer empty. It is built while
// the configuration loads (Add, then Check) and read-only afterwards.
type Referers struct {
	none, blocked bool
	// host (lower case) → the path the referer's must start with ("": any); head holds "*.example.com" and
	// ".example.com" as "example.com", tail "www.example.*" as "www.example"
	exact, head, tail map[string]string
	hostRes           []*regexp.Regexp // server_names' regex names, against the lower-case host
	res               []*regexp.Regexp // ~ values, caseless, against the referer without its scheme
}

// Add reads one valid_referers directive's values: none, blocked, server_names (the server's names, given in
// names: a regex name starts with "~"), ~regex, and host names with an optional path (example.com/galleries/,
// *.example.com, .example.com, www.example.*).
func (rf *Referers) Add(values, names []string) error {
	if rf.exact == nil {
		rf.exact, rf.head, rf.tail = map[string]string{}, map[string]string{}, map[string]string{}
	}
	for _, v := range values {
		switch {
		case v == "":
			return fmt.Errorf("invalid referer %q", v)
		case v == "none":
			rf.none = true
		case v == "blocked":
			rf.blocked = true
		case v == "server_names":
			for _, n := range names {
				if re, ok := strings.CutPrefix(n, "~"); ok {
					c, err := regexp.Compile(re)
					if err != nil {
						return fmt.Errorf("invalid regex %q: %v", n, err)
					}
					rf.hostRes = append(rf.hostRes, c)
				} else if n != "" {
					if err := rf.addHost(n, ""); err != nil {
						return err
					}
				}
			}
		case v[0] == '~':
			c, err := regexp.Compile("(?i)" + v[1:])
			if err != nil {
				return fmt.Errorf("invalid regex %q: %v", v, err)
			}
			rf.res = append(rf.res, c)
		default:
			host, uri := v, ""
			if i := strings.IndexByte(v, '/'); i >= 0 {
				host, uri = v[:i], v[i:]
			}
			if err := rf.addHost(host, uri); err != nil {
				return err
			}
		}
	}
	return nil
}

// addHost places one host name or wildcard, as nginx's hash of wildcard keys does.
func (rf *Referers) addHost(host, uri string) error {
	key := strings.ToLower(host)
	put := func(tab map[string]string, k string) error {
		if _, dup := tab[k]; dup {
			return fmt.Errorf("conflicting parameter %q", host)
		}
		tab[k] = uri
		return nil
	}
	bad := fmt.Errorf("invalid hostname or wildcard %q", host)
	switch {
	case strings.HasPrefix(key, "*."):
		if rest := key[2:]; rest != "" && !strings.Contains(rest, "*") {
			return put(rf.head, rest)
		}
		return bad
	case strings.HasSuffix(key, ".*"):
		if rest := key[:len(key)-2]; rest != "" && !strings.Contains(rest, "*") {
			return put(rf.tail, rest)
		}
		return bad
	case strings.Contains(key, "*") || key == ".":
		return bad
	case strings.HasPrefix(key, "."):
		if err := put(rf.exact, key[1:]); err != nil {
			return err
		}
		return put(rf.head, key[1:])
	}
	return put(rf.exact, key)
}

// Check refuses, as nginx does, none or blocked without any host name to be valid.
func (rf *Referers) Check() error {
	if (rf.none || rf.blocked) && len(rf.exact) == 0 && len(rf.head) == 0 && len(rf.tail) == 0 {
		return errors.New(`the "none" or "blocked" referers are specified in the "valid_referers" directive without any valid referer`)
	}
	return nil
}

// Valid reports whether a request with these Referer values (the first counts) passes, with nginx's rules: no
// header passes with none; one not starting with http:// or https:// (or shorter than "http://i.ru") passes
// with blocked; otherwise the host (up to ":" or "/", without case) must be listed — with its path prefix when
// one was given — or match a server_names regex, or the whole referer without its scheme a ~regex.
func (rf *Referers) Valid(referer []string) bool {
	if rf == nil || len(rf.exact) == 0 && len(rf.head) == 0 && len(rf.tail) == 0 && len(rf.res) == 0 && len(rf.hostRes) == 0 {
		return true
	}
	if len(referer) == 0 {
		return rf.none
	}
	ref := referer[0]
	rest, ok := "", false
	if len(ref) >= len("http://i.ru") {
		if len(ref) >= 7 && strings.EqualFold(ref[:7], "http://") {
			rest, ok = ref[7:], true
		} else if strings.EqualFold(ref[:8], "https://") {
			rest, ok = ref[8:], true
		}
	}
	if !ok {
		return rf.blocked
	}
	end := strings.IndexAny(rest, "/:")
	if end < 0 {
		end = len(rest)
	}
	if end > 256 {
		return false
	}
	var buf [256]byte
	host := buf[:end]
	for i := range end {
		c := rest[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		host[i] = c
	}
	if uri, ok := rf.find(host); ok {
		path := rest[end:]
		if i := strings.IndexByte(path, '/'); i >= 0 {
			path = path[i:]
		} else {
			path = ""
		}
		return strings.HasPrefix(path, uri)
	}
	for _, re := range rf.hostRes {
		if re.Match(host) {
			return true
		}
	}
	for _, re := range rf.res {
		if re.MatchString(rest) {
			return true
		}
	}
	return false
}

// find looks host up: exact, then the longest *.suffix, then the longest prefix.*.
func (rf *Referers) find(host []byte) (string, bool) {
	if uri, ok := rf.exact[string(host)]; ok {
		return uri, true
	}
	for i, c := range host {
		if c == '.' {
			if uri, ok := rf.head[string(host[i+1:])]; ok {
				return uri, true
			}
		}
	}
	for i := len(host) - 1; i > 0; i-- {
		if host[i] == '.' {
			if uri, ok := rf.tail[string(host[:i])]; ok {
				return uri, true
			}
		}
	}
	return "", false
}
