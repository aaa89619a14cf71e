package vars

import (
	"fmt"
	"regexp"
	"strings"
)

// MapEntry is one line of a map block; Key "default" sets the default value.
type MapEntry struct{ Key, Value string }

// Map is a compiled map block: exact keys, hostnames wildcards, then regexes in order, else the default.
type Map struct {
	source    *Template
	exact     map[string]*Template
	wild      []wildEntry
	res       []reEntry
	def       *Template
	hostnames bool
	volatile  bool
}

type wildEntry struct {
	suffix, prefix string
	val            *Template
}

type reEntry struct {
	re  *regexp.Regexp
	val *Template
}

// NewMap builds a map from its source template and entries in configuration order.
func NewMap(source *Template, entries []MapEntry, hostnames bool, t *Table) (*Map, error) {
	m := &Map{source: source, exact: map[string]*Template{}, hostnames: hostnames}
	for _, e := range entries {
		key := e.Key
		if key == "volatile" {
			m.volatile = true
			continue
		}
		if strings.HasPrefix(key, "~") {
			pat := key[1:]
			if strings.HasPrefix(pat, "*") {
				pat = "(?i)" + pat[1:]
			}
			re, err := regexp.Compile(pat)
			if err != nil {
				return nil, fmt.Errorf("invalid regex %q in map: %v", key, err)
			}
			t.AddCaptureNames(re)
			val, err := Compile(e.Value, t)
			if err != nil {
				return nil, err
			}
			m.res = append(m.res, reEntry{re, val})
			continue
		}
		val, err := Compile(e.Value, t)
		if err != nil {
			return nil, err
		}
		if key == "default" {
			if m.def != nil {
				return nil, fmt.Errorf("duplicate default map parameter")
			}
			m.def = val
			continue
		}
		key = strings.TrimPrefix(key, "\\")
		if hostnames {
			key = strings.ToLower(key)
			switch {
			case strings.HasPrefix(key, "*."):
				m.wild = append(m.wild, wildEntry{suffix: key[1:], val: val})
				continue
			case strings.HasPrefix(key, "."):
				m.exact[key[1:]] = val
				m.wild = append(m.wild, wildEntry{suffix: key, val: val})
				continue
			case strings.HasSuffix(key, ".*"):
				m.wild = append(m.wild, wildEntry{prefix: key[:len(key)-1], val: val})
				continue
			}
		}
		if _, dup := m.exact[key]; dup {
			return nil, fmt.Errorf("conflicting parameter %q", e.Key)
		}
		m.exact[key] = val
	}
	return m, nil
}

func (m *Map) eval(r *Request) string {
	key := m.source.Eval(r)
	if m.hostnames {
		key = strings.TrimSuffix(strings.ToLower(key), ".")
	}
	if v, ok := m.exact[key]; ok {
		return v.Eval(r)
	}
	best, bestLen := (*Template)(nil), -1
	for _, w := range m.wild {
		if w.suffix != "" && strings.HasSuffix(key, w.suffix) && len(w.suffix) > bestLen {
			best, bestLen = w.val, len(w.suffix)
		}
	}
	if best == nil {
		for _, w := range m.wild {
			if w.prefix != "" && strings.HasPrefix(key, w.prefix) && len(w.prefix) > bestLen {
				best, bestLen = w.val, len(w.prefix)
			}
		}
	}
	if best != nil {
		return best.Eval(r)
	}
	for _, e := range m.res {
		if sm := e.re.FindStringSubmatch(key); sm != nil {
			r.Captures, r.CaptureNames = sm, e.re.SubexpNames()
			return e.val.Eval(r)
		}
	}
	if m.def != nil {
		return m.def.Eval(r)
	}
	return ""
}
