package proxy

import (
	"net/http"
	"net/textproto"
)

// headerList is the header of a request going upstream, as a list: a request's dozen fields are built (copied
// from the client's, filtered, proxy_set_header applied) and written for less than a map costs (hashing each
// name on every assignment and lookup, a random start on every walk). A map is made from it only for what
// net/http writes (a request with a body, an upgrade handshake).
type headerList struct{ kv []field }

type field struct {
	name string // canonical
	vals []string
}

// reset empties f, keeping its array.
func (f *headerList) reset() {
	clear(f.kv)
	f.kv = f.kv[:0]
}

// index returns the position of name, -1 if absent.
func (f *headerList) index(name string) int {
	for i := range f.kv {
		if len(f.kv[i].name) == len(name) && f.kv[i].name == name {
			return i
		}
	}
	return -1
}

// get returns name's values and whether it is there.
func (f *headerList) get(name string) ([]string, bool) {
	if i := f.index(name); i >= 0 {
		return f.kv[i].vals, true
	}
	return nil, false
}

// Values returns the values of name, which is canonical (vars.Fields, for $upstream_http_NAME).
func (f *headerList) Values(name string) []string {
	vals, _ := f.get(name)
	return vals
}

// add appends a field known not to be in f.
func (f *headerList) add(name string, vals []string) { f.kv = append(f.kv, field{name, vals}) }

// set makes vals name's values.
func (f *headerList) set(name string, vals []string) {
	if i := f.index(name); i >= 0 {
		f.kv[i].vals = vals
		return
	}
	f.add(name, vals)
}

// del removes name.
func (f *headerList) del(name string) {
	if i := f.index(name); i >= 0 {
		copy(f.kv[i:], f.kv[i+1:])
		f.kv[len(f.kv)-1] = field{}
		f.kv = f.kv[:len(f.kv)-1]
	}
}

// removeNamed removes the fields a Connection header names.
func (f *headerList) removeNamed(connection []string) {
	for name := range namedTokens(connection) {
		f.del(textproto.CanonicalMIMEHeaderKey(name))
	}
}

// header returns f as a map.
func (f *headerList) header() http.Header {
	h := make(http.Header, len(f.kv))
	for _, kv := range f.kv {
		if prev, ok := h[kv.name]; ok {
			// a name listed twice (two proxy_set_header lines): both values go out
			h[kv.name] = append(prev[:len(prev):len(prev)], kv.vals...)
			continue
		}
		h[kv.name] = kv.vals
	}
	return h
}
