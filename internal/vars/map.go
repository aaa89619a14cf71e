package vars

import (
	"errors"
	"fmt"
	"github.com/sluice-proxy/sluice/internal/route"
	"regexp"
	"strings"
)

// MapEntry is one "key value;" line of a map block, in configuration order. NewMap interprets the keys:
//
//   - "default": the value when nothing matches (otherwise "");
//   - "~re" and "~*re": a regular expression, case-sensitive and case-insensitive (Go regexp syntax);
//   - "\\..." : a backslash is dropped, so "\\default" and "\\~x" are plain keys;
//   - with hostnames, "*.example.com", ".example.com" (the name and its subdomains) and "www.example.*";
//   - anything else: an exact string, matched ignoring case.
//
// The bare "hostnames;" line is NewMap's hostnames argument, "volatile;" is SetVolatile, and "include" is the
// caller's to expand.
type MapEntry struct{ Key, Value string }

// Map is a compiled map block. Once built (and declared) it is immutable and safe for concurrent use.
type Map struct {
	source    *Template
	hostnames bool
	volatile  bool
	exact     map[string]*Template // lower-case key
	head      map[string]*Template // "*.example.com", ".example.com" -> "example.com"
	tail      map[string]*Template // "www.example.*" -> "www.example"
	regexes   []mapRegex
	def       *Template // nil means ""
}

type mapRegex struct {
	re  *regexp.Regexp
	val *Template
}

// NewMap builds a map from its source template (e.g. "$http_upgrade") and its entries in config order. With
// hostnames, keys may be wildcard names and a trailing dot on the source value is ignored. Values may contain
// variables, including the captures of the entry's own regex. Named captures in the regexes are declared in
// t, so they can be used elsewhere, as in nginx. Errors: a duplicate key or default, a bad regex or wildcard,
// a value naming an unknown variable.
//
// Lookup order is nginx's: exact key, then (hostnames) the longest "*.suffix", then the longest "prefix.*",
// then the regexes in order, else the default. A regex that matches and has groups replaces the request's
// captures ($1, named captures), as nginx does.
func NewMap(source *Template, entries []MapEntry, hostnames bool, t *Table) (*Map, error) {
	if source == nil {
		return nil, errors.New("map: no source")
	}
	m := &Map{
		source:    source,
		hostnames: hostnames,
		exact:     make(map[string]*Template),
	}
	// Regexes first, so that their named captures are declared before any value is compiled.
	res := make(map[int]*regexp.Regexp)
	for i, e := range entries {
		pat, ok := strings.CutPrefix(e.Key, "~")
		if !ok {
			continue
		}
		if p, ok := strings.CutPrefix(pat, "*"); ok {
			pat = "(?i)" + p
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("invalid regex %q: %s", e.Key, route.ExplainRegexError(strings.TrimPrefix(strings.TrimPrefix(e.Key, "~"), "*"), err))
		}
		if err := t.AddCaptureNames(re); err != nil {
			return nil, fmt.Errorf("regex %q: %v", e.Key, err)
		}
		res[i] = re
	}
	for i, e := range entries {
		val, err := Compile(e.Value, t)
		if err != nil {
			return nil, err
		}
		if re := res[i]; re != nil {
			m.regexes = append(m.regexes, mapRegex{re: re, val: val})
			continue
		}
		if e.Key == "default" {
			if m.def != nil {
				return nil, errors.New("duplicate default map parameter")
			}
			m.def = val
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(e.Key, `\`))
		if err := m.add(key, e.Key, val); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SetVolatile marks the map `volatile`: its value is computed on every read instead of once per request.
// Call it while building the configuration, before requests use the map.
func (m *Map) SetVolatile(v bool) { m.volatile = v }

func (m *Map) isVolatile() bool { return m.volatile }

// add places one non-regex key.
func (m *Map) add(key, orig string, val *Template) error {
	put := func(tab map[string]*Template, k string) error {
		if _, dup := tab[k]; dup {
			return fmt.Errorf("conflicting parameter %q", orig)
		}
		tab[k] = val
		return nil
	}
	if !m.hostnames {
		return put(m.exact, key)
	}
	if m.head == nil {
		m.head = make(map[string]*Template)
		m.tail = make(map[string]*Template)
	}
	bad := fmt.Errorf("invalid hostname or wildcard %q", orig)
	switch {
	case strings.HasPrefix(key, "*."):
		rest := key[2:]
		if rest == "" || strings.Contains(rest, "*") {
			return bad
		}
		return put(m.head, rest)
	case strings.HasSuffix(key, ".*"):
		rest := key[:len(key)-2]
		if rest == "" || strings.Contains(rest, "*") {
			return bad
		}
		return put(m.tail, rest)
	case strings.Contains(key, "*"):
		return bad
	case strings.HasPrefix(key, "."):
		rest := key[1:]
		if rest == "" {
			return bad
		}
		if err := put(m.exact, rest); err != nil {
			return err
		}
		return put(m.head, rest)
	}
	return put(m.exact, key)
}

// eval computes the map's value for r.
func (m *Map) eval(r *Request) string {
	src := m.source.Eval(r)
	if m.hostnames && strings.HasSuffix(src, ".") {
		src = src[:len(src)-1]
	}
	var buf [128]byte
	low := appendLower(buf[:0], src)
	if v, ok := m.exact[string(low)]; ok {
		return v.Eval(r)
	}
	if m.hostnames {
		for i, c := range low {
			if c == '.' {
				if v, ok := m.head[string(low[i+1:])]; ok {
					return v.Eval(r)
				}
			}
		}
		for i := len(low) - 1; i > 0; i-- {
			if low[i] == '.' {
				if v, ok := m.tail[string(low[:i])]; ok {
					return v.Eval(r)
				}
			}
		}
	}
	if src != "" {
		for _, e := range m.regexes {
			loc := e.re.FindStringSubmatchIndex(src)
			if loc == nil {
				continue
			}
			if len(loc) > 2 {
				caps := make([]string, len(loc)/2)
				for i := range caps {
					if loc[2*i] >= 0 {
						caps[i] = src[loc[2*i]:loc[2*i+1]]
					}
				}
				r.Captures, r.CaptureNames = caps, e.re.SubexpNames()
			}
			return e.val.Eval(r)
		}
	}
	if m.def != nil {
		return m.def.Eval(r)
	}
	return ""
}
