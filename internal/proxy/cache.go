package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/static"
	"github.com/sluice-proxy/sluice/internal/vars"
)

// The values of $upstream_cache_status, as nginx names them.
const (
	cacheMiss        = "MISS"
	cacheHit         = "HIT"
	cacheExpired     = "EXPIRED"
	cacheBypass      = "BYPASS"
	cacheStale       = "STALE"
	cacheUpdating    = "UPDATING"
	cacheRevalidated = "REVALIDATED"
)

// cacheMethods is proxy_cache_methods' default.
var cacheMethods = []string{http.MethodGet, http.MethodHead}

// cacheReq is one request's use of proxy_cache: what the zone had for its key and what becomes of the
// upstream's answer.
type cacheReq struct {
	z       *cache.Zone
	look    cache.Lookup
	stale   *cache.Entry // the expired entry: sent instead of a failure (proxy_cache_use_stale) or revalidated
	store   bool         // the upstream's answer may be stored (not after a lock timeout or before min_uses)
	release bool         // this request updates or fills the entry: Done when finished
	headGet bool         // a HEAD sent upstream as GET (proxy_cache_convert_head)
	reval   bool         // If-Modified-Since or If-None-Match of the stale entry went upstream
	noBody  bool         // the client is answered 304: the body goes to the entry only
	w       *cache.Writer
}

// finish releases what the request held of the zone.
func (cc *cacheReq) finish() {
	if cc.w != nil {
		cc.w.Abort() // (not committed: the transfer did not complete)
	}
	if cc.look.Entry != nil {
		cc.look.Entry.Close()
	}
	if cc.release {
		cc.z.Done(cc.look.Hash)
	}
}

// serveCache is Serve for a location with proxy_cache: the entry of the request's key answers when it is fresh
// (HIT); otherwise the upstream is asked, as serveHTTP does, and a cacheable answer is stored as it streams to
// the client. The outgoing request is o's, built by outRequest.
func (p *Proxy) serveCache(ctx context.Context, pr *Request, o *outgoing) {
	c := pr.Conf
	if !slices.Contains(c.ProxyCacheMethods.Get(cacheMethods), pr.R.Method) {
		p.serveHTTP(ctx, pr, o, nil)
		return
	}
	cc := &cacheReq{z: pr.Cache, store: true}
	defer cc.finish()
	cacheHeaders(pr, &o.hl)
	if pr.R.Method == http.MethodHead {
		if c.ProxyCacheConvertHead.Get(true) {
			o.req.Method, cc.headGet = http.MethodGet, true
		} else {
			cc.store = false // the entry would have no body
		}
	}
	key := c.ProxyCacheKey.V.Eval(pr.V) // (the default is compiled with the configuration)
	if anyTrue(c.ProxyCacheBypass.V, pr.V) {
		cc.look = cache.Lookup{Hash: cache.Hash(key), Key: key, Uses: c.ProxyCacheMinUses.Get(1)}
		pr.V.UpstreamCacheStatus = cacheBypass
		p.serveHTTP(ctx, pr, o, cc)
		return
	}
	cc.look = cc.z.Get(key)
	status := cacheMiss
	switch cc.look.Status {
	case cache.Hit:
		p.serveEntry(pr, cc.look.Entry, cacheHit)
		return
	case cache.Updating:
		if c.ProxyCacheUseStale.V.Updating {
			p.serveEntry(pr, cc.look.Entry, cacheUpdating)
			return
		}
		status, cc.stale = cacheExpired, cc.look.Entry
	case cache.Stale:
		cc.release = true
		status, cc.stale = cacheExpired, cc.look.Entry
		if c.ProxyCacheRevalidate.V {
			cc.revalidate(&o.hl)
		}
	case cache.Miss:
		switch {
		case cc.look.Uses < c.ProxyCacheMinUses.Get(1):
			cc.store = false
		case c.ProxyCacheLock.V:
			owner, done := cc.z.Lock(ctx, cc.look.Hash, c.ProxyCacheLockTimeout.Get(5*time.Second), c.ProxyCacheLockAge.Get(5*time.Second))
			switch {
			case owner:
				cc.release = true
			case done:
				// the request that held the lock is done: its entry answers, if it stored one
				if l := cc.z.Get(key); l.Status == cache.Hit {
					cc.look.Entry = l.Entry
					p.serveEntry(pr, l.Entry, cacheHit)
					return
				} else if l.Entry != nil {
					l.Entry.Close()
					if l.Status == cache.Stale {
						cc.z.Done(l.Hash)
					}
				}
			default:
				cc.store = false // timed out: asks the upstream, stores nothing (nginx)
			}
		}
	}
	pr.V.UpstreamCacheStatus = status
	p.serveHTTP(ctx, pr, o, cc)
}

// anyTrue reports whether a value of ts is neither empty nor "0" (proxy_cache_bypass, proxy_no_cache).
func anyTrue(ts []*vars.Template, v *vars.Request) bool {
	for _, t := range ts {
		if s := t.Eval(v); s != "" && s != "0" {
			return true
		}
	}
	return false
}

// cacheFields are the request fields nginx's proxy_set_header defaults clear when the location caches: a
// response is stored for every client, so the client's conditions and ranges never reach the upstream.
var cacheFields = [...]string{"If-Modified-Since", "If-Unmodified-Since", "If-None-Match", "If-Match", "Range", "If-Range"}

// cacheHeaders removes cacheFields from the outgoing request unless proxy_set_header sets them.
func cacheHeaders(pr *Request, hl *headerList) {
	for _, k := range cacheFields {
		set := false
		for _, hs := range pr.Conf.ProxySetHeaders.V {
			set = set || hs.Key == k
		}
		if !set {
			hl.del(k)
		}
	}
}

// revalidate asks the upstream whether the stale entry is still current (proxy_cache_revalidate): its
// Last-Modified and ETag go as If-Modified-Since and If-None-Match.
func (cc *cacheReq) revalidate(hl *headerList) {
	e := cc.stale
	if e.Status != http.StatusOK {
		return
	}
	if lm := e.Get("Last-Modified"); lm != "" {
		hl.set("If-Modified-Since", []string{lm})
		cc.reval = true
	}
	if et := e.Get("Etag"); et != "" {
		hl.set("If-None-Match", []string{et})
		cc.reval = true
	}
}

// useStale reports whether the stale entry answers instead of a failed exchange (proxy_cache_use_stale).
func (cc *cacheReq) useStale(pr *Request, fail failure, status int) bool {
	if cc == nil || cc.stale == nil {
		return false
	}
	us := pr.Conf.ProxyCacheUseStale.V
	switch fail {
	case failError:
		return us.Error
	case failTimeout:
		return us.Timeout
	case failInvalidHeader:
		return us.InvalidHeader
	}
	return slices.Contains(us.Status, status)
}

// answered handles the upstream's response before it is passed on: a status proxy_cache_use_stale lists sends
// the stale entry instead (STALE), a 304 to a revalidation makes the entry fresh again and sends it
// (REVALIDATED); both report true. Otherwise it decides whether the response is stored and, if so, starts the
// entry's file.
func (p *Proxy) answered(pr *Request, cc *cacheReq, resp *http.Response, list []field) bool {
	if cc.useStale(pr, failStatus, resp.StatusCode) {
		resp.Body.Close()
		p.serveEntry(pr, cc.stale, cacheStale)
		return true
	}
	fields := cacheFieldsOf(resp, list)
	now := time.Now()
	if cc.reval && resp.StatusCode == http.StatusNotModified {
		resp.Body.Close()
		until, ok := cache.Validity(cc.stale.Status, fields, pr.Conf.CacheIgnore(), pr.Conf.ProxyCacheValid.V, now)
		if ok {
			if err := cc.z.Refresh(cc.look.Hash, until); err != nil {
				pr.Log.Error("proxy: cache: refreshing entry failed: "+err.Error(), pr.V.LogAttrs()...)
			}
		}
		p.serveEntry(pr, cc.stale, cacheRevalidated)
		return true
	}
	if !cc.store || resp.StatusCode == http.StatusPartialContent {
		return false
	}
	until, ok := cache.Validity(resp.StatusCode, fields, pr.Conf.CacheIgnore(), pr.Conf.ProxyCacheValid.V, now)
	if !ok || anyTrue(pr.Conf.ProxyNoCache.V, pr.V) {
		return false
	}
	w, err := cc.z.Create(&cc.look, resp.StatusCode, fields, until, now.Unix())
	if err != nil {
		pr.Log.Error("proxy: cache: creating entry failed: "+err.Error(), pr.V.LogAttrs()...)
		return false
	}
	cc.w = w
	return false
}

// cacheFieldsOf is the upstream's header as the cache stores it, in the order the fields came when known.
func cacheFieldsOf(resp *http.Response, list []field) []cache.Field {
	var out []cache.Field
	if list != nil {
		out = make([]cache.Field, 0, len(list))
		for _, f := range list {
			out = append(out, cache.Field{Name: f.name, Values: f.vals})
		}
		return out
	}
	out = make([]cache.Field, 0, len(resp.Header))
	for k, v := range resp.Header {
		out = append(out, cache.Field{Name: k, Values: v})
	}
	return out
}

// teeBody passes an upstream body on while writing it to the entry; eof notes that the body was read to its
// end, the one case in which the entry is committed.
type teeBody struct {
	r   io.Reader
	w   *cache.Writer
	eof bool
}

func (t *teeBody) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if n > 0 {
		t.w.Write(b[:n])
	}
	if errors.Is(err, io.EOF) {
		t.eof = true
	}
	return n, err
}

// end commits the entry when the whole body was read and passed on, else drops it.
func (cc *cacheReq) end(pr *Request, t *teeBody, err error) {
	w := cc.w
	cc.w = nil
	if err != nil || !t.eof {
		w.Abort()
		return
	}
	if cerr := w.Commit(); cerr != nil {
		pr.Log.Error("proxy: cache: storing entry failed: "+cerr.Error(), pr.V.LogAttrs()...)
	}
}

// cachePrecondition is nginx's not_modified filter on a cached or cacheable 200 whose header h is about to be
// sent: 412, or 304 with h made a 304's (no length, type or Accept-Ranges, as nginx sends it), or 0.
func cachePrecondition(pr *Request, h http.Header) int {
	etag, lm := httpsyntax.FirstOf(h["Etag"]), httpsyntax.FirstOf(h["Last-Modified"])
	mtime := int64(-1)
	if t, err := http.ParseTime(lm); err == nil {
		mtime = t.Unix()
	}
	st := static.Precondition(pr.R.Header, pr.Conf.IMS.Get(static.IMSExact), mtime, etag)
	if st == http.StatusNotModified {
		delete(h, "Content-Length")
		delete(h, "Content-Type")
		delete(h, "Accept-Ranges")
	}
	return st
}

// serveEntry answers from a cache entry through the usual response path: the stored upstream fields pass the
// location's proxy_hide_header, proxy_pass_header, proxy_redirect and cookie rules as a proxied response's do;
// a 200 answers conditional requests (304, 412) and a single range (206, 416) as nginx's not_modified and range
// filters do; the body goes from the file (sendfile where the writer can).
func (p *Proxy) serveEntry(pr *Request, e *cache.Entry, status string) {
	pr.V.UpstreamCacheStatus = status
	list := make([]field, len(e.Fields))
	for i, f := range e.Fields {
		list[i] = field{name: f.Name, vals: f.Values}
	}
	pr.V.UpstreamHeader = &headerList{kv: list}
	h := pr.W.Header()
	if uf := p.copyResponseHeader(h, nil, list, pr); pr.Conf.ProxyIgnoreHeaders.V&config.IgnoreAccelCharset == 0 {
		pr.V.AccelCharset = uf.accelCharset // (nginx acts on a cached X-Accel-Charset as on a fresh one)
	}
	code, off, n := e.Status, int64(0), e.BodySize
	length := e.Get("Content-Length") != "" // (a chunked response has none, and is sent chunked again, as nginx)
	if code == http.StatusOK {
		switch st := cachePrecondition(pr, h); st {
		case http.StatusPreconditionFailed:
			pr.Error(st)
			return
		case http.StatusNotModified:
			if pr.Header != nil {
				pr.Header(st)
			}
			pr.W.WriteHeader(st)
			return
		}
		// nginx answers ranges of a cached response whose upstream sent Accept-Ranges (or with
		// proxy_force_ranges), and of one with a length only; the range filter then sends its own Accept-Ranges
		_, accept := h["Accept-Ranges"]
		// (not when gunzip will decompress it: nginx's range filter then sees no length)
		inflated := pr.Conf.GunzipFilter != nil && pr.Conf.GunzipFilter.Inflates(pr.R, h)
		if (accept || pr.Conf.ProxyForceRanges.V) && length && !inflated {
			delete(h, "Accept-Ranges")
			if g := pr.Conf.GzipFilter; g == nil || !g.Compressible(http.StatusOK, h) || !g.Accepts(pr.R, h) {
				start, end, st, ok := static.ForcedRange(pr.R.Header, e.BodySize, httpsyntax.FirstOf(h["Etag"]), httpsyntax.FirstOf(h["Last-Modified"]))
				switch {
				case !ok:
					h["Accept-Ranges"] = []string{"bytes"}
				case st == http.StatusRequestedRangeNotSatisfiable:
					h["Content-Range"] = []string{"bytes */" + itoa(e.BodySize)}
					pr.Error(st)
					return
				default:
					h["Content-Range"] = []string{static.ContentRange(start, end, e.BodySize)}
					code, off, n, length = st, start, end-start, true
				}
			}
		}
	}
	if length {
		h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	}
	if pr.Header != nil {
		pr.Header(code)
	}
	pr.W.WriteHeader(code)
	if pr.R.Method == http.MethodHead || n == 0 {
		return
	}
	if _, err := io.Copy(pr.W, e.Body(off, n)); err != nil {
		pr.Log.Info("proxy: cache: sending entry: "+err.Error(), pr.V.LogAttrs()...)
	}
}
