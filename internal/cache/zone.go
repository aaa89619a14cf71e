// Package cache is proxy_cache's and fastcgi_cache's storage and the flow of a request through it: a directory
// of files, one per key (and per variant of a response with Vary), named and laid out as nginx names them (the
// md5 in hex, in levels of subdirectories taken from its end), an in-memory index of them (keys_zone) that
// tracks use, freshness and which request is filling or updating an entry, and Request, one request's use of
// a cache for either module.
//
// Request asks Zone.Get for a key; a missing entry is written through a Writer (a temporary file in the
// cache directory, renamed into place only once the whole response was read, so a failed transfer leaves no
// entry), and a hit is read through an Entry. What may be cached and for how long is Validity's decision
// (fresh.go), nginx 1.22's reading of X-Accel-Expires, Cache-Control, Expires, Set-Cookie and Vary.
package cache

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"
)

// Spec is one proxy_cache_path.
type Spec struct {
	Path     string        // absolute directory
	Levels   []int         // subdirectory name lengths (1 or 2 each), outermost first
	Name     string        // keys_zone name
	Size     int64         // keys_zone size in bytes: bounds the number of keys
	Inactive time.Duration // an entry not used for this long is removed (default 10m)
	MaxSize  int64         // most bytes of files; least recently used entries go first (0: no limit)
}

// nodeBytes is what one key costs in nginx's keys_zone (its documentation: one megabyte keeps about 8000 keys).
const nodeBytes = 128

// Status is what Get found.
type Status int

const (
	Miss     Status = iota // no entry
	Hit                    // a fresh entry
	Stale                  // an expired entry; this request is the one to update it
	Updating               // an expired entry that another request is updating
)

// Zone is one keys_zone and its directory. It is safe for concurrent use; a reload that keeps the path keeps
// the Zone (Open), with its index and files.
type Zone struct {
	spec Spec // Name, Path and Levels never change; a reload's Inactive, MaxSize and Size go to the fields below

	mu       sync.Mutex
	nodes    map[[16]byte]*node
	lru      node // sentinel: lru.next is the most recently used
	size     int64
	max      int
	inactive time.Duration
	maxSize  int64
	now      func() time.Time
}

// node is one key of the index: its use count and, once committed, its file's freshness and size.
type node struct {
	hash       [16]byte
	prev, next *node
	uses       int
	used       time.Time
	exists     bool
	valid      int64 // Unix seconds the entry is fresh until
	fsize      int64
	updating   bool          // a request is fetching a fresh copy of the expired entry
	filling    chan struct{} // proxy_cache_lock: closed when the request filling the missing entry is done
	fillSince  time.Time     // when the latest filler started (proxy_cache_lock_age)
}

// Open returns the zone for spec: prev's zone of the same path when there is one (a reload keeps the cache and
// its index; inactive and max_size take their new values), else a new one whose index is rebuilt from the
// files already in the directory.
func Open(spec Spec, prev map[string]*Zone) (*Zone, error) {
	for _, z := range prev {
		// the same path, name and levels: the running zone (its files are where they were); other levels
		// make a new zone, whose index is read again from the directory
		if z.spec.Path == spec.Path && z.spec.Name == spec.Name && slices.Equal(z.spec.Levels, spec.Levels) {
			z.mu.Lock()
			z.max, z.inactive, z.maxSize = max(int(spec.Size/nodeBytes), 1), spec.Inactive, spec.MaxSize
			z.mu.Unlock()
			return z, nil
		}
	}
	if err := os.MkdirAll(spec.Path, 0o700); err != nil {
		return nil, err
	}
	z := &Zone{spec: spec, nodes: map[[16]byte]*node{}, max: max(int(spec.Size/nodeBytes), 1), now: time.Now,
		inactive: spec.Inactive, maxSize: spec.MaxSize}
	z.lru.next, z.lru.prev = &z.lru, &z.lru
	z.load()
	go sweep(weak.Make(z))
	return z, nil
}

// Name is the keys_zone name.
func (z *Zone) Name() string { return z.spec.Name }

// sweep removes inactive entries every second while the zone is in use; it ends once no configuration
// refers to the zone any more (the weak pointer is cleared), so a reload that drops a path needs no stop.
func sweep(w weak.Pointer[Zone]) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for range t.C {
		z := w.Value()
		if z == nil {
			return
		}
		z.Sweep()
	}
}

// Sweep removes the entries not used for the zone's inactive time, least recently used first, as nginx's
// cache manager does.
//
// It removes at most sweepBatch entries (and their files) while it holds the index, then lets lookups in: after
// a restart every entry was last used at once, and one pass over all of them would stall the cache.
func (z *Zone) Sweep() {
	for {
		z.mu.Lock()
		limit := z.now().Add(-z.inactive)
		removed := 0
		n := z.lru.prev
		for n != &z.lru && removed < sweepBatch {
			prev := n.prev
			if n.used.After(limit) {
				break
			}
			if !n.updating && n.filling == nil {
				z.remove(n)
				removed++
			}
			n = prev
		}
		more := removed == sweepBatch
		z.mu.Unlock()
		if !more {
			return
		}
	}
}

// sweepBatch is how many entries Sweep removes while it holds the index.
const sweepBatch = 64

// Hash is nginx's cache key hash: the md5 of the key.
func Hash(key string) [16]byte { return md5.Sum([]byte(key)) }

// File is the path of the entry of hash: its hex md5 under levels of directories named by its last digits
// (levels=1:2 puts …9c29b7f… at c/29/…), as nginx lays it out.
func (z *Zone) File(hash [16]byte) string {
	name := hex.EncodeToString(hash[:])
	parts := []string{z.spec.Path}
	end := len(name)
	for _, l := range z.spec.Levels {
		parts = append(parts, name[end-l:end])
		end -= l
	}
	return filepath.Join(append(parts, name)...)
}

// Lookup is what Get found for one request.
type Lookup struct {
	Hash   [16]byte // the entry's: the key's md5, or a variant's (Vary)
	Key    string
	Status Status
	Uses   int    // requests for the key (its variant) so far, this one included (proxy_cache_min_uses)
	Entry  *Entry // the entry, open, for Hit, Stale and Updating; the caller closes it

	main      [16]byte      // the key's md5
	secondary bool          // Hash is a variant's: the main entry varies, and not for this request's values
	req       *http.Request // for the variant of a response that varies
	head      bool          // a HEAD not converted to GET: its entry has no body
}

// Get looks key up for r and counts the use. An expired entry makes this request its updater (Stale) unless
// another request is updating it (Updating); the updater calls Done when it is finished.
//
// The entry of a response that varies (Vary) holds the variant of the request that stored it, the md5 of the
// key's and of that request's values of the fields Vary names; a request with other values goes on to the
// entry named by its own variant, as nginx's secondary lookup does, so each variant has an entry of its own.
//
// head is a HEAD request that goes upstream as HEAD: an entry it stores has no body, and answers only HEAD
// requests (for another method it is a Miss, and the new response replaces it).
func (z *Zone) Get(key string, r *http.Request, head bool) Lookup {
	l := Lookup{Hash: Hash(key), Key: key, req: r, head: head}
	l.main = l.Hash
	for {
		z.mu.Lock()
		n := z.touch(l.Hash)
		n.uses++
		l.Uses = n.uses
		exists, valid := n.exists, n.valid
		z.mu.Unlock()
		if !exists {
			return l
		}
		e, err := openEntry(z.File(l.Hash))
		if err != nil || e.Key != key {
			// gone, unreadable or another key's (an md5 collision): a miss, which a new entry replaces
			if e != nil {
				e.Close()
			}
			z.mu.Lock()
			if n := z.nodes[l.Hash]; n != nil && n.exists {
				z.size -= n.fsize
				n.exists = false
			}
			z.mu.Unlock()
			return l
		}
		if e.Vary != "" {
			if v := variant(l.main, e.Vary, r); v != e.Variant {
				e.Close()
				if l.secondary {
					return l // (a variant's entry for other values: nginx's "incorrect vary hash", a miss)
				}
				l.Hash, l.secondary = v, true
				continue
			}
		}
		if e.HeadOnly && !head {
			e.Close() // a HEAD's entry, without the body this request needs: a miss, which its response replaces
			return l
		}
		e.Valid = valid
		l.Entry = e
		if valid >= z.now().Unix() {
			l.Status = Hit
			return l
		}
		z.mu.Lock()
		if n := z.nodes[l.Hash]; n != nil && n.updating {
			l.Status = Updating
		} else if n != nil {
			n.updating = true
			l.Status = Stale
		}
		z.mu.Unlock()
		return l
	}
}

// varyMax is the longest Vary value nginx keeps (NGX_HTTP_CACHE_VARY_LEN); a response with a longer one is not
// cached.
const varyMax = 128

// variant is nginx's ngx_http_file_cache_vary: the md5 of the key's md5 and, for each field name in vary (lower
// case), "name:", r's values of it and CRLF. Values of the same field are joined with ","; those of
// Accept-Charset, Accept-Encoding and Accept-Language are split at commas and spaces first, so "gzip, deflate"
// and "gzip,deflate" are one variant.
func variant(main [16]byte, vary string, r *http.Request) [16]byte {
	h := md5.New()
	h.Write(main[:])
	sep := func(c rune) bool { return c == ',' || c == ' ' }
	for _, name := range strings.FieldsFunc(strings.ToLower(vary), sep) {
		h.Write([]byte(name))
		h.Write([]byte(":"))
		vals := r.Header[textproto.CanonicalMIMEHeaderKey(name)]
		if name == "host" && len(vals) == 0 && r.Host != "" {
			vals = []string{r.Host} // (Go's server keeps Host out of the header)
		}
		normalize := name == "accept-charset" || name == "accept-encoding" || name == "accept-language"
		first := true
		for _, v := range vals {
			parts := []string{v}
			if normalize {
				parts = strings.FieldsFunc(v, sep)
			}
			for _, p := range parts {
				if !first {
					h.Write([]byte(","))
				}
				h.Write([]byte(p))
				first = false
			}
		}
		h.Write([]byte("\r\n"))
	}
	var out [16]byte
	h.Sum(out[:0])
	return out
}

// Done ends this request's update of an expired entry (Stale) or its filling of a missing one (Lock).
func (z *Zone) Done(hash [16]byte) {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := z.nodes[hash]
	if n == nil {
		return
	}
	n.updating = false
	if n.filling != nil {
		close(n.filling)
		n.filling = nil
	}
}

// Lock is proxy_cache_lock for a missing entry: the first request to ask fills it (true, and calls Done when
// finished); another waits until that request is done or timeout passes, and gets false with waited true when
// the first was done (the entry may be there now: look again) or with waited false after the timeout (the
// request goes to the upstream and its response is not cached, as nginx).
//
// A filler that has not finished within age (proxy_cache_lock_age) no longer holds the others back: the next
// request fills too, as nginx passes one more request on, so a client that reads its response slowly (the entry
// fills at its pace) delays the others by age at most per request, not for as long as it reads.
func (z *Zone) Lock(ctx context.Context, hash [16]byte, timeout, age time.Duration) (owner, done bool) {
	z.mu.Lock()
	n := z.touch(hash)
	ch := n.filling
	now := time.Now()
	if ch == nil {
		n.filling, n.fillSince = make(chan struct{}), now
		z.mu.Unlock()
		return true, false
	}
	if age > 0 && now.Sub(n.fillSince) >= age {
		n.fillSince = now
		z.mu.Unlock()
		return true, false // (the first filler's Done wakes the waiters)
	}
	z.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return false, true
	case <-t.C:
	case <-ctx.Done():
	}
	return false, false
}

// touch finds or makes the node of hash and makes it the most recently used; z.mu is held. A full index loses
// its least recently used key (and file) first.
func (z *Zone) touch(hash [16]byte) *node {
	n := z.nodes[hash]
	if n == nil {
		if len(z.nodes) >= z.max {
			for t := z.lru.prev; t != &z.lru; t = t.prev {
				if !t.updating && t.filling == nil {
					z.remove(t)
					break
				}
			}
		}
		n = &node{hash: hash}
		z.nodes[hash] = n
	} else {
		n.prev.next, n.next.prev = n.next, n.prev
	}
	n.used = z.now()
	n.next, n.prev = z.lru.next, &z.lru
	z.lru.next.prev = n
	z.lru.next = n
	return n
}

// remove drops n from the index and its file from the directory; z.mu is held.
func (z *Zone) remove(n *node) {
	n.prev.next, n.next.prev = n.next, n.prev
	delete(z.nodes, n.hash)
	if n.exists {
		z.size -= n.fsize
		os.Remove(z.File(n.hash)) // (a file already gone is no loss)
	}
}

// commit records hash's file of fsize bytes, fresh until valid, and evicts least recently used entries while
// the files exceed max_size; z.mu is held.
func (z *Zone) commit(hash [16]byte, fsize, valid int64) {
	n := z.touch(hash)
	if n.exists {
		z.size -= n.fsize
	}
	n.exists, n.fsize, n.valid = true, fsize, valid
	z.size += fsize
	for t := z.lru.prev; z.maxSize > 0 && z.size > z.maxSize && t != &z.lru; {
		prev := t.prev
		if t.exists && !t.updating && t.filling == nil {
			z.remove(t)
		}
		t = prev
	}
}

// Size is the bytes of the entries' files.
func (z *Zone) Size() int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.size
}

// load rebuilds the index from the directory: every entry file becomes a key, used now; temporary files left
// by a process that stopped while writing them are removed.
func (z *Zone) load() {
	now := z.now()
	filepath.WalkDir(z.spec.Path, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, tempPrefix) {
			os.Remove(path)
			return nil
		}
		var hash [16]byte
		if b, err := hex.DecodeString(name); err != nil || len(b) != 16 || z.File([16]byte(b)) != path {
			return nil
		} else {
			hash = [16]byte(b)
		}
		valid, err := readValid(path)
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if len(z.nodes) >= z.max {
			return filepath.SkipAll
		}
		n := z.touch(hash)
		n.exists, n.valid, n.fsize, n.used = true, valid, info.Size(), now
		z.size += info.Size()
		return nil
	})
}

// String names the zone for logs.
func (z *Zone) String() string { return fmt.Sprintf("%s (%s)", z.spec.Name, z.spec.Path) }
