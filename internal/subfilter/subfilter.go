// Package subfilter is nginx's sub module (ngx_http_sub_filter_module): strings in a response body replaced by
// others while the body streams to the client. A Filter is one location's sub_filter settings, compiled at
// load; a Stream replaces the strings of one response, holding back at most the longest search string less one
// byte (a possible match split across two writes), never the body.
//
// The matching is nginx's: ASCII case-insensitive, the leftmost match first, and among the strings that match
// at the same place the one configured first; replacements do not overlap and are not searched again. With
// sub_filter_once on, each string is replaced once (its first match), and once every string has been, the
// rest passes unsearched. A possible match still pending when the body ends is sent as it is, even if a
// string configured later would have matched there.
package subfilter

import (
	"io"
	"net/http"
	"strings"

	"github.com/sluice-proxy/sluice/internal/compress"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// Pair is one sub_filter: the string searched for (lower-cased when it has no variables) and its replacement.
type Pair struct {
	Search      *vars.Template
	Replacement *vars.Template
}

// Filter is one level's merged sub_filter settings, compiled at load.
type Filter struct {
	Pairs        []Pair
	Once         bool // sub_filter_once
	LastModified bool // sub_filter_last_modified: Last-Modified kept and the ETag made weak, not both removed
	types        compress.Types
	static       *Matcher // the searches' matcher when none has variables, built at load
}

// New compiles a level's sub_filter settings: types are sub_filter_types' (text/html is always one; "*" any).
func New(pairs []Pair, types []string, once, lastModified bool) *Filter {
	f := &Filter{Pairs: pairs, Once: once, LastModified: lastModified, types: compress.NewTypes(types)}
	searches := make([]string, 0, len(pairs))
	for _, p := range pairs {
		if !p.Search.IsConst() {
			return f
		}
		searches = append(searches, string(p.Search.Append(nil, nil)))
	}
	f.static = NewMatcher(searches)
	return f
}

// Takes reports whether a response of type ctype (parameters allowed) and length (-1: unknown) is one the filter
// rewrites, as nginx's header filter decides: a listed type ("*": any, even none) and a body that is not known
// to be empty. (A search made of variables may still come out empty for a request, and then nothing is.)
func (f *Filter) Takes(ctype string, length int64) bool {
	if f == nil || length == 0 {
		return false
	}
	return f.types.Match(ctype)
}

// Start is the header side of the filter for a response with status code and header h, about to be written to
// out: nil when the filter leaves the response alone (a type not listed, a known empty body, or searches whose
// variables are all empty). As in nginx the status does not matter: a 404 page is rewritten, and a 304 loses its
// validators when it has a listed type (with "*" any 304 does; a file's 304 has no type). Otherwise the header loses Content-Length (the length changes) and either
// Last-Modified and ETag or, with sub_filter_last_modified, only the ETag's strength, and the returned Stream
// takes the body. Variables in the searches are evaluated now, those in replacements at their first use.
func (f *Filter) Start(code int, h http.Header, v *vars.Request, out io.Writer) *Stream {
	if code < 200 {
		return nil
	}
	length := int64(-1)
	if cl := h["Content-Length"]; len(cl) > 0 && cl[0] == "0" {
		length = 0
	}
	ct := ""
	if t := h["Content-Type"]; len(t) > 0 {
		ct = t[0]
	}
	if !f.Takes(ct, length) {
		return nil
	}
	s := &Stream{out: out, once: f.Once, v: v}
	if f.static != nil {
		s.m, s.repl = f.static, make([]*vars.Template, len(f.Pairs))
		for i := range f.Pairs {
			s.repl[i] = f.Pairs[i].Replacement
		}
	} else {
		searches := make([]string, 0, len(f.Pairs))
		for _, p := range f.Pairs {
			// as nginx: a search whose value is empty is left out
			if m := p.Search.Eval(v); m != "" {
				searches = append(searches, strings.ToLower(m))
				s.repl = append(s.repl, p.Replacement)
			}
		}
		if len(searches) == 0 {
			return nil
		}
		s.m = NewMatcher(searches)
	}
	delete(h, "Content-Length")
	if f.LastModified {
		compress.WeakETag(h)
	} else {
		delete(h, "Last-Modified")
		delete(h, "Etag")
	}
	return s
}
