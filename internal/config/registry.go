package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Context is a set of blocks a directive may appear in.
type Context uint

// The blocks of the configuration language.
const (
	CtxMain Context = 1 << iota
	CtxEvents
	CtxHTTP
	CtxServer
	CtxLocation
	CtxUpstream
	CtxIf          // `if` inside server or location
	CtxLimitExcept // limit_except inside location
	CtxStream      // the stream block (TCP proxying)
	CtxStreamServer
	CtxStreamUpstream
)

const ctxHSL = CtxHTTP | CtxServer | CtxLocation

var ctxNames = []struct {
	c    Context
	name string
}{{CtxMain, "main"}, {CtxEvents, "events"}, {CtxHTTP, "http"}, {CtxServer, "server"}, {CtxLocation, "location"}, {CtxUpstream, "upstream"}, {CtxIf, "if"}, {CtxLimitExcept, "limit_except"}, {CtxStream, "stream"}, {CtxStreamServer, "stream server"}, {CtxStreamUpstream, "stream upstream"}}

func (c Context) String() string {
	var parts []string
	for _, n := range ctxNames {
		if c&n.c != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, ", ")
}

// Spec declares one directive: where it may appear, how many arguments it takes, and the code that applies it.
// Each module's table (core.go, proxy.go, ssl.go, …) is the one home of its directives; the configuration
// reference in docs/ is generated from these tables.
type Spec struct {
	Name    string
	Module  string
	Ctx     Context
	Args    string // "0", "1", "2", "1-2", "1+", "0+"
	Block   bool
	Either  bool // block or not depending on context (server in http vs upstream)
	Default string
	Ignored bool   // accepted for compatibility, has no effect
	Doc     string // one line: what it does here
	Diff    string // difference from nginx, if any
	Apply   func(p *parser, d *Directive) error
}

func (s *Spec) argRange() (min, max int) {
	a := s.Args
	switch {
	case strings.HasSuffix(a, "+"):
		n, _ := strconv.Atoi(strings.TrimSuffix(a, "+"))
		return n, -1
	case strings.Contains(a, "-"):
		lo, hi, _ := strings.Cut(a, "-")
		x, _ := strconv.Atoi(lo)
		y, _ := strconv.Atoi(hi)
		return x, y
	}
	n, _ := strconv.Atoi(a)
	return n, n
}

// Registry is the set of directives the configuration language knows.
type Registry struct {
	specs map[string]*Spec
	names []string
}

// NewRegistry returns the registry of every directive sluice accepts.
func NewRegistry() *Registry {
	r := &Registry{specs: map[string]*Spec{}}
	for _, table := range [][]Spec{mainDirectives, coreDirectives, rewriteDirectives, headerDirectives, proxyDirectives, proxySSLDirectives, grpcDirectives, cacheDirectives, gatewayDirectives, spoolDirectives, fastcgiDirectives, uwsgiDirectives, scgiDirectives, staticDirectives, gzipDirectives, subDirectives, charsetDirectives, sslDirectives, logDirectives, upstreamDirectives, sluiceDirectives, accessDirectives, varDirectives, streamDirectives, ignoredDirectives} {
		for i := range table {
			s := &table[i]
			if _, dup := r.specs[s.Name]; dup {
				panic("config: directive declared twice: " + s.Name)
			}
			r.specs[s.Name] = s
			r.names = append(r.names, s.Name)
		}
	}
	sort.Strings(r.names)
	return r
}

// Specs returns every directive, sorted by name.
func (r *Registry) Specs() []*Spec {
	out := make([]*Spec, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, r.specs[n])
	}
	return out
}

// Lookup returns the spec of the directive name, if sluice knows it.
func (r *Registry) Lookup(name string) (*Spec, bool) {
	s, ok := r.specs[name]
	return s, ok
}

// check validates context and argument count of d against its spec.
func (r *Registry) check(d *Directive, ctx Context) (*Spec, error) {
	s, ok := r.specs[d.Name]
	if !ok {
		if mod, hint, ok := unsupportedHint(d.Name); ok {
			e := d.errorf("unknown directive %q (%s)", d.Name, mod)
			e.Hint = hint
			return nil, e
		}
		e := d.errorf("unknown directive %q", d.Name)
		if sug := r.suggest(d.Name); sug != "" {
			e.Hint = fmt.Sprintf("did you mean %q?", sug)
		}
		return nil, e
	}
	if s.Ctx&ctx == 0 {
		e := d.errorf("%q directive is not allowed here", d.Name)
		e.Hint = "it is allowed in: " + s.Ctx.String()
		return nil, e
	}
	min, max := s.argRange()
	if n := len(d.Args); n < min || (max >= 0 && n > max) {
		return nil, d.errorf("invalid number of arguments in %q directive", d.Name)
	}
	if s.Either {
		return s, nil
	}
	if s.Block && d.Block == nil {
		return nil, d.errorf("directive %q has no opening \"{\"", d.Name)
	}
	if !s.Block && d.Block != nil {
		return nil, d.errorf("directive %q has no block", d.Name)
	}
	return s, nil
}

// suggest returns the known directive closest to name, if it is close enough to be a typo.
func (r *Registry) suggest(name string) string {
	best, bestD := "", 1<<30
	for _, n := range r.names {
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	if bestD <= 2 || (bestD <= 3 && len(name) > 10) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
