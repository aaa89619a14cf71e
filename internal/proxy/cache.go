package proxy

import (
	"context"
	"net/http"

	"github.com/sluice-proxy/sluice/internal/cache"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/static"
)

// serveCache is Serve for a location with proxy_cache: the entry of the request's key answers when it is fresh
// (HIT); otherwise the upstream is asked, as serveHTTP does, and a cacheable answer is stored as it streams to
// the client (cache.Request). The outgoing request is o's, built by outRequest.
func (p *Proxy) serveCache(ctx context.Context, pr *Request, o *outgoing) {
	cr, hit := cache.Begin(ctx, pr.Cache, pr.Conf.ProxyCacheConf, pr.V, pr.R, pr.CacheBG)
	if cr == nil {
		p.serveHTTP(ctx, pr, o, nil)
		return
	}
	defer cr.Finish()
	if hit != nil {
		p.serveEntry(pr, hit)
		return
	}
	cacheHeaders(pr, &o.hl)
	if cr.HeadGet {
		o.req.Method = http.MethodGet
	}
	if ims, inm := cr.Revalidate(); ims != "" || inm != "" {
		if ims != "" {
			o.hl.set("If-Modified-Since", []string{ims})
		}
		if inm != "" {
			o.hl.set("If-None-Match", []string{inm})
		}
	}
	p.serveHTTP(ctx, pr, o, cr)
}

// cacheHeaders removes cache.Fields from the outgoing request unless proxy_set_header sets them.
func cacheHeaders(pr *Request, hl *headerList) {
	for _, k := range cache.Fields {
		set := false
		for _, hs := range pr.Conf.ProxySetHeaders.V {
			set = set || hs.Key == k
		}
		if !set {
			hl.del(k)
		}
	}
}

// cacheFailure is a failed try in proxy_cache_use_stale's terms (0: a failure by status).
func cacheFailure(f failure) cache.Failure {
	switch f {
	case failError:
		return cache.FailError
	case failTimeout:
		return cache.FailTimeout
	case failInvalidHeader:
		return cache.FailInvalidHeader
	}
	return 0
}

// answered hands the upstream's response to the cache before it is passed on: an expired entry that answers
// instead (STALE, REVALIDATED) is sent, and answered reports true. Otherwise the response may be stored as it
// streams (cr.Storing).
func (p *Proxy) answered(pr *Request, cr *cache.Request, resp *http.Response, list []field) bool {
	e := cr.Response(pr.V, resp.StatusCode, cacheFieldsOf(resp, list), func(msg string) {
		pr.Log.Error("proxy: cache: "+msg, pr.V.LogAttrs()...)
	})
	if e == nil {
		return false
	}
	resp.Body.Close()
	p.serveEntry(pr, e)
	return true
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

// cachePrecondition is cache.Precondition for the location's if_modified_since.
func cachePrecondition(pr *Request, h http.Header) int {
	return cache.Precondition(pr.R, pr.Conf.IMS.Get(static.IMSExact), h)
}

// serveEntry answers from a cache entry through the usual response path: the stored upstream fields pass the
// location's proxy_hide_header, proxy_pass_header, proxy_redirect and cookie rules as a proxied response's do,
// and cache.Sender answers conditions and ranges and sends the body.
func (p *Proxy) serveEntry(pr *Request, e *cache.Entry) {
	list := make([]field, len(e.Fields))
	for i, f := range e.Fields {
		list[i] = field{name: f.Name, vals: f.Values}
	}
	pr.V.UpstreamHeader = &headerList{kv: list}
	if uf := p.copyResponseHeader(pr.W.Header(), nil, list, pr); pr.Conf.ProxyIgnoreHeaders.V&config.IgnoreAccelCharset == 0 {
		pr.V.AccelCharset = uf.accelCharset // (nginx acts on a cached X-Accel-Charset as on a fresh one)
	}
	s := cache.Sender{W: pr.W, R: pr.R, IMS: pr.Conf.IMS.Get(static.IMSExact), ForceRanges: pr.Conf.ProxyForceRanges.V,
		Gzip: pr.Conf.GzipFilter, Gunzip: pr.Conf.GunzipFilter, Error: pr.Error, Header: pr.Header}
	if err := s.Serve(e); err != nil {
		pr.Log.Info("proxy: cache: sending entry: "+err.Error(), pr.V.LogAttrs()...)
	}
}
