package route

import (
	"fmt"
	"regexp"
	"strings"
)

// Modifier is the kind of a location block: how its Pattern is matched.
type Modifier int

const (
	Prefix        Modifier = iota // location /path
	Exact                         // location = /path
	PrefixNoRegex                 // location ^~ /path: when it is the longest prefix, regexes are skipped
	Regex                         // location ~ regex
	RegexCaseless                 // location ~* regex
	Named                         // location @name: only for internal redirects
)

// String returns the modifier as written in a configuration file ("" for Prefix).
func (m Modifier) String() string {
	switch m {
	case Prefix:
		return ""
	case Exact:
		return "="
	case PrefixNoRegex:
		return "^~"
	case Regex:
		return "~"
	case RegexCaseless:
		return "~*"
	case Named:
		return "@"
	}
	return fmt.Sprintf("Modifier(%d)", int(m))
}

func (m Modifier) isRegex() bool { return m == Regex || m == RegexCaseless }

// Location is one location block as written in the configuration, with the caller's payload.
// Compile keeps pointers to Locations: do not modify them afterwards.
type Location[T any] struct {
	Modifier Modifier
	Pattern  string         // path, regex source, or the name for Named (without '@')
	Children []*Location[T] // nested locations, in config order
	Value    T

	// AutoRedirect asks for nginx's redirect of "/dir" to "/dir/": when Pattern ends in "/" and
	// the path is Pattern without that slash, Match returns this location with Redirect set
	// (unless an exact or prefix location is exactly the path). nginx sets it for locations
	// handled by proxy_pass, fastcgi_pass, uwsgi_pass, scgi_pass, memcached_pass or grpc_pass.
	AutoRedirect bool
}

// name is the location's name as nginx prints it in messages.
func (l *Location[T]) name() string {
	if l.Modifier == Named {
		return "@" + l.Pattern
	}
	return l.Pattern
}

// LocationError is a configuration error in one location; Loc lets the caller add file:line.
type LocationError[T any] struct {
	Loc *Location[T]
	Msg string
}

func (e *LocationError[T]) Error() string { return e.Msg }

// Matcher selects locations for paths. It is immutable and safe for concurrent use.
type Matcher[T any] struct {
	root  level[T]
	named map[string]*Location[T]
}

// level holds the locations of one block (the server, or one location's children).
type level[T any] struct {
	tree  *node[T]   // exact and prefix locations; nil if none
	regex []*cloc[T] // regex locations, in config order
}

// cloc is a compiled location.
type cloc[T any] struct {
	src     *Location[T]
	re      *regexp.Regexp // for regex locations
	noregex bool           // ^~
	sub     level[T]       // nested locations
}

// Compile validates and indexes a list of locations (one server's top level, config order): duplicate
// locations ("duplicate location \"/x\""), bad regexes, nested rules (nginx: an exact location cannot have nested
// locations; a named location must be top level; a nested prefix location must start with its parent's prefix:
// "location \"/b\" is outside location \"/a\""). Errors carry the offending *Location via LocationError so the caller
// can add file:line.
//
// Unlike nginx, which silently uses the first, two named locations with the same name are an error.
func Compile[T any](locs []*Location[T]) (*Matcher[T], error) {
	m := &Matcher[T]{named: make(map[string]*Location[T])}
	root, err := m.compileLevel(locs, nil)
	if err != nil {
		return nil, err
	}
	m.root = root
	return m, nil
}

func (m *Matcher[T]) compileLevel(locs []*Location[T], parent *Location[T]) (level[T], error) {
	var lv level[T]
	for _, l := range locs {
		if l == nil {
			return lv, &LocationError[T]{Msg: "nil location"}
		}
		if err := checkNesting(l, parent); err != nil {
			return lv, err
		}
		c := &cloc[T]{src: l, noregex: l.Modifier == PrefixNoRegex}
		switch l.Modifier {
		case Named:
			if l.Pattern == "" {
				return lv, &LocationError[T]{Loc: l, Msg: `invalid location name "@"`}
			}
			if _, dup := m.named[l.Pattern]; dup {
				return lv, dupError(l)
			}
			m.named[l.Pattern] = l
		case Regex, RegexCaseless:
			re, err := compileRegex(l.Pattern, l.Modifier == RegexCaseless)
			if err != nil {
				return lv, &LocationError[T]{Loc: l, Msg: fmt.Sprintf("location %q: %v", l.Pattern, err)}
			}
			c.re = re
			lv.regex = append(lv.regex, c)
		case Prefix, Exact, PrefixNoRegex:
			if lv.tree == nil {
				lv.tree = &node[T]{}
			}
			if !lv.tree.insert(l.Pattern, c, l.Modifier == Exact) {
				return lv, dupError(l)
			}
		default:
			return lv, &LocationError[T]{Loc: l, Msg: fmt.Sprintf("location %q: unknown modifier %v", l.Pattern, l.Modifier)}
		}
		sub, err := m.compileLevel(l.Children, l)
		if err != nil {
			return lv, err
		}
		c.sub = sub
	}
	return lv, nil
}

// checkNesting applies nginx's rules for a location l nested in parent (nil at the top level).
func checkNesting[T any](l, parent *Location[T]) error {
	if parent == nil {
		return nil
	}
	var msg string
	switch {
	case parent.Modifier == Exact:
		msg = fmt.Sprintf("location %q cannot be inside the exact location %q", l.name(), parent.name())
	case parent.Modifier == Named:
		msg = fmt.Sprintf("location %q cannot be inside the named location %q", l.name(), parent.name())
	case l.Modifier == Named:
		msg = fmt.Sprintf("named location %q can be on the server level only", l.name())
	case !l.Modifier.isRegex() && !strings.HasPrefix(l.Pattern, parent.Pattern):
		// As in nginx, the parent's Pattern is compared as text even when it is a regex.
		msg = fmt.Sprintf("location %q is outside location %q", l.name(), parent.name())
	default:
		return nil
	}
	return &LocationError[T]{Loc: l, Msg: msg}
}

func dupError[T any](l *Location[T]) error {
	return &LocationError[T]{Loc: l, Msg: fmt.Sprintf("duplicate location %q", l.name())}
}

// Match is the result of a location search.
type Match[T any] struct {
	Loc      *Location[T]
	Captures []string // regex captures ($0..$n); nil for prefix matches
	Names    []string // regexp.SubexpNames() of the matched regex, for named captures; do not modify

	// Redirect is set when the path is an AutoRedirect location's Pattern without its trailing
	// slash: the server should answer 301 with Location: path + "/" (plus the query string).
	Redirect bool
}

// Match finds the location for a normalised path: "=" exact match wins at once; otherwise the longest matching
// prefix is remembered; if it is "^~" it wins; otherwise regexes are tried in config order (nested regexes inside the
// remembered prefix location first, as nginx does with nested locations: matching recurses into the longest prefix's
// children) and the first match wins; otherwise the longest prefix. ok=false when nothing matches.
//
// As in nginx, "^~" on a nested location only skips the regexes nested beside it, and a regex
// location's own nested locations are searched after it matches. A match without regexes does
// not allocate.
func (m *Matcher[T]) Match(path string) (Match[T], bool) {
	var res Match[T]
	m.root.find(path, &res)
	return res, res.Loc != nil
}

// find is ngx_http_core_find_location: it records the best location so far in res.
func (lv *level[T]) find(path string, res *Match[T]) findResult {
	var c *cloc[T]
	rc := declined
	if lv.tree != nil {
		c, rc = lv.tree.lookup(path)
	}
	switch rc {
	case found:
		res.Loc = c.src
		return found
	case redirect:
		res.Loc = c.src
		res.Redirect = true
		return redirect
	}
	noregex := false
	if rc == again {
		res.Loc = c.src
		noregex = c.noregex
		if rc = c.sub.find(path, res); rc == found || rc == redirect {
			return rc
		}
	}
	if noregex {
		return rc
	}
	for _, r := range lv.regex {
		// MatchString does not allocate; only the winner pays for its captures.
		if !r.re.MatchString(path) {
			continue
		}
		res.Loc = r.src
		res.Captures = r.re.FindStringSubmatch(path)
		res.Names = r.re.SubexpNames()
		r.sub.find(path, res)
		// nginx reports any outcome inside a regex location as a plain match, even a redirect.
		res.Redirect = false
		return found
	}
	return rc
}

// Named returns the named location "@name" (name given without '@').
func (m *Matcher[T]) Named(name string) (*Location[T], bool) {
	l, ok := m.named[name]
	return l, ok
}
