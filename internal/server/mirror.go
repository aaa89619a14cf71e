package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/sluice-proxy/sluice/internal/cache"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// Mirroring bounds: the largest body copied to mirrors (held in memory while they run), and how many mirror
// subrequests a server runs at once.
const (
	mirrorBodyMax = 1 << 20
	mirrorMax     = 256
)

// startMirrors runs nginx's mirror: a background subrequest to each URI with the request's method, headers
// and arguments, and with mirror_request_body on its body, which is read first and handed to the request's
// handler from memory. The mirrors' answers are dropped; the request does not wait for them. It reports
// false when reading the body failed and the request was answered.
func (rq *request) startMirrors(uris []string) bool {
	var body []byte
	if rq.conf.MirrorBody.Get(true) && rq.r.Body != nil && rq.r.Body != http.NoBody && rq.r.ContentLength != 0 {
		b, err := io.ReadAll(io.LimitReader(rq.r.Body, mirrorBodyMax+1))
		switch {
		case err != nil:
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				rq.special(http.StatusRequestEntityTooLarge)
			} else {
				rq.log.Info("client closed the connection or sent a bad body while it was read for mirror: "+err.Error(), rq.v.LogAttrs()...)
				rq.special(http.StatusBadRequest)
			}
			return false
		case len(b) > mirrorBodyMax:
			// too large to hold: the request goes on with what was read and the rest, unmirrored
			rq.r.Body = readCloser{io.MultiReader(bytes.NewReader(b), rq.r.Body), rq.r.Body}
			rq.log.Warn("mirror: request body larger than "+strconv.Itoa(mirrorBodyMax)+" bytes is not mirrored", rq.v.LogAttrs()...)
			return true
		}
		body = b
		rq.r.Body = io.NopCloser(bytes.NewReader(b))
	}
	s := rq.s // (the goroutines must not read rq: it is reused once the request ends)
	for _, uri := range uris {
		if s.mirrors.Add(1) > mirrorMax {
			s.mirrors.Add(-1)
			rq.log.Warn("mirror: "+strconv.Itoa(mirrorMax)+" mirror requests are running; "+uri+" is skipped", rq.v.LogAttrs()...)
			continue
		}
		sub := rq.newSubrequest(rq.detachedContext(), rq.r.Method, body)
		args := rq.v.Args
		go func() {
			defer s.mirrors.Add(-1)
			defer sub.endSubrequest()
			defer sub.recoverDetached("mirror")
			if _, ok := sub.runSubrequest(uri, args); !ok {
				sub.log.Error("mirror: invalid URI "+strconv.Quote(uri), sub.v.LogAttrs()...)
			}
		}()
	}
	return true
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// cacheBackground is the request's part in proxy_cache_background_update (fastcgi_…, uwsgi_…): a request may
// start an update; the update's own subrequest starts none.
func (rq *request) cacheBackground() cache.Background {
	if rq.subrequest {
		return cache.Background{Update: rq.cacheUpdate}
	}
	return cache.Background{Start: rq.bound.update}
}

// startCacheUpdate starts the background update of an expired cache entry: a subrequest that continues the
// request in its location at the content phase, with its variables (as nginx's cloned subrequests), its
// answer going to the cache only. At most updateMax run at once; false: not started (the request then updates
// the entry itself).
func (rq *request) startCacheUpdate(u *cache.Update) bool {
	s := rq.s
	if s.cacheUpdates.Add(1) > updateMax {
		s.cacheUpdates.Add(-1)
		if now := time.Now().Unix(); s.updatesWarned.Swap(now) != now { // (once a second at most)
			rq.log.Warn("cache: "+strconv.Itoa(updateMax)+" background updates are running; an entry is updated in the foreground", rq.v.LogAttrs()...)
		}
		return false
	}
	sub := rq.newSubrequest(rq.detachedContext(), rq.r.Method, nil)
	sub.cacheUpdate = u
	sub.v.CopyRequestVars(rq.v)
	sub.loc, sub.conf, sub.rewriteBreak = rq.loc, rq.conf, rq.rewriteBreak
	go func() {
		defer s.cacheUpdates.Add(-1)
		defer u.Release() // (whatever ends the update before the cache takes it over)
		defer sub.endSubrequest()
		defer sub.recoverDetached("cache update")
		sub.content()
		sub.w.endFilters(false)
	}()
	return true
}

// updateMax bounds the background cache updates running at once.
const updateMax = 256

// detachedContext is the context of a subrequest that outlives the request (mirror, cache update): it carries
// the connection's information and nothing of the request's own context, which the connection recycles once the
// request ends.
func (rq *request) detachedContext() context.Context {
	return context.WithValue(context.Background(), connInfoKey{}, rq.ci)
}

// recoverDetached ends a panic in a subrequest that runs on its own goroutine (a handler aborting a response
// cut by its upstream: http.ErrAbortHandler), which would otherwise end the process; others are logged.
func (sub *request) recoverDetached(what string) {
	if p := recover(); p != nil && p != http.ErrAbortHandler {
		sub.log.Error(fmt.Sprintf("%s: panic: %v\n%s", what, p, debug.Stack()), sub.v.LogAttrs()...)
	}
}
