package route

import "strings"

// findResult is the outcome of a location search at one level, as in nginx's
// ngx_http_core_find_static_location / ngx_http_core_find_location.
type findResult int

const (
	declined findResult = iota // nothing matched
	again                      // a prefix matched; regexes may still win
	found                      // an exact or regex location matched: final
	redirect                   // path + "/" names an auto-redirect location: final
)

// node is a radix tree over the exact and prefix locations of one level. A node's key is the
// concatenation of the labels from the root; children are found by the first byte of their label.
type node[T any] struct {
	label    string
	exact    *cloc[T] // "= key"
	prefix   *cloc[T] // "key" or "^~ key"
	redirect *cloc[T] // set when key ends in '/' and exact or prefix asks for AutoRedirect
	index    string   // index[i] is the first byte of kids[i].label
	kids     []*node[T]
}

// insert adds c under key; it reports false if the slot (exact or prefix) is already taken.
func (n *node[T]) insert(key string, c *cloc[T], exact bool) bool {
	full := key
	for key != "" {
		i := strings.IndexByte(n.index, key[0])
		if i < 0 {
			k := &node[T]{label: key}
			n.index += key[:1]
			n.kids = append(n.kids, k)
			n = k
			break
		}
		k := n.kids[i]
		p := commonPrefix(key, k.label)
		if p < len(k.label) { // split k at p
			mid := &node[T]{label: k.label[:p], index: k.label[p : p+1], kids: []*node[T]{k}}
			k.label = k.label[p:]
			n.kids[i] = mid
			k = mid
		}
		key = key[p:]
		n = k
	}
	slot := &n.prefix
	if exact {
		slot = &n.exact
	}
	if *slot != nil {
		return false
	}
	*slot = c
	// As in nginx, either location asking for it makes the key redirect, to the exact one if any.
	if strings.HasSuffix(full, "/") &&
		(n.exact != nil && n.exact.src.AutoRedirect || n.prefix != nil && n.prefix.src.AutoRedirect) {
		n.redirect = n.exact
		if n.redirect == nil {
			n.redirect = n.prefix
		}
	}
	return true
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// lookup finds the location for path at this level: an exact location whose key is path
// (found), else a prefix location whose key is path (again), else an auto-redirect location
// whose key is path+"/" (redirect), else the longest prefix location whose key starts path
// (again). It does not allocate.
func (n *node[T]) lookup(path string) (*cloc[T], findResult) {
	var best *cloc[T]
	rest := path
	for n != nil {
		if rest == "" {
			if n.exact != nil {
				return n.exact, found
			}
			if n.prefix != nil {
				return n.prefix, again
			}
		} else if n.prefix != nil {
			best = n.prefix
		}
		b := byte('/')
		if rest != "" {
			b = rest[0]
		}
		i := strings.IndexByte(n.index, b)
		if i < 0 {
			break
		}
		k := n.kids[i]
		if len(k.label) > len(rest) {
			// The redirect label ends in '/', so it is exactly rest + "/".
			if k.redirect != nil && len(k.label) == len(rest)+1 && k.label[:len(rest)] == rest {
				return k.redirect, redirect
			}
			break
		}
		if k.label != rest[:len(k.label)] {
			break
		}
		rest = rest[len(k.label):]
		n = k
	}
	if best != nil {
		return best, again
	}
	return nil, declined
}
