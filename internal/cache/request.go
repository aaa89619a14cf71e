package cache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// The values of $upstream_cache_status, as nginx names them.
const (
	StatusMiss        = "MISS"
	StatusHit         = "HIT"
	StatusExpired     = "EXPIRED"
	StatusBypass      = "BYPASS"
	StatusStale       = "STALE"
	StatusUpdating    = "UPDATING"
	StatusRevalidated = "REVALIDATED"
)

// Conf is a location's cache directives, proxy_cache* or fastcgi_cache* (the config package compiles it once
// merged): what a Request reads of them.
type Conf struct {
	Zone        string         // the keys_zone's name
	Key         *vars.Template // proxy_cache_key (fastcgi_cache_key)
	Valid       []Valid
	Methods     []string
	Bypass      []*vars.Template
	NoCache     []*vars.Template
	MinUses     int
	UseStale    UseStale
	Lock        bool
	LockTimeout time.Duration
	LockAge     time.Duration
	Revalidate  bool
	Background  bool   // proxy_cache_background_update: with UseStale.Updating, an expired entry answers while a subrequest updates it
	ConvertHead bool   // a HEAD goes upstream as GET, so its entry has a body (proxy_cache_convert_head)
	Ignore      Ignore // the cache's part of proxy_ignore_headers (fastcgi_ignore_headers)
}

// UseStale is proxy_cache_use_stale: the failures of the upstream that an expired entry answers instead.
type UseStale struct {
	Error, Timeout, InvalidHeader bool
	Updating                      bool  // while another request updates the entry
	Status                        []int // http_500 … http_429
}

// Failure is how an exchange with the upstream failed, for proxy_cache_use_stale.
type Failure int

// The failures proxy_cache_use_stale names.
const (
	FailError Failure = iota + 1
	FailTimeout
	FailInvalidHeader
)

// Request is one request's use of a cache, for proxy_cache and fastcgi_cache alike: Begin looks its key up;
// when no entry answers, the handler asks the upstream and hands the answer to Response, streams the body
// through Tee and ends with End; Finish releases what the request held of the zone.
type Request struct {
	z       *Zone
	c       *Conf
	look    Lookup
	stale   *Entry // the expired entry: sent instead of a failure (use_stale) or revalidated
	store   bool   // the upstream's answer may be stored (not after a lock timeout or before min_uses)
	release bool   // this request updates or fills the entry: Done when finished
	reval   bool   // If-Modified-Since or If-None-Match of the stale entry went upstream
	w       *Writer
	upd     *Update // the background update this request owns (release goes through it)

	// HeadGet: a HEAD is sent upstream as GET (ConvertHead); the client gets the head, the entry the body.
	HeadGet bool
	// NoBody: the client is answered 304 (Precondition) while the body goes to the entry only.
	NoBody bool
}

// Background is a request's part in proxy_cache_background_update: Start, when the server can make one,
// starts a subrequest to update an expired entry with the Update given (false: it could not be started);
// Update is set in that subrequest.
type Background struct {
	Start  func(*Update) bool
	Update *Update
}

// Update hands the update of an expired entry from the request that answers with it (STALE) to the
// subrequest that asks the upstream; the subrequest then owns the update and ends it (Release, once).
type Update struct {
	look Lookup
	z    *Zone
	once sync.Once
	// the expired entry's status and validators, for proxy_cache_revalidate (the entry itself stays with the
	// request that answers with it)
	status   int
	ims, inm string
}

// Release ends the update of the entry: another request may update it. Only the first call counts, so the
// subrequest may call it whatever ended it, and the cache when it is done with it.
func (u *Update) Release() { u.once.Do(func() { u.z.Done(u.look.Hash) }) }

// Begin looks the request's key up in z. It returns nil when c's methods do not include the request's (the
// cache is not used; $upstream_cache_status stays empty). Otherwise, with hit set, hit answers the request
// (HIT or UPDATING, in v.UpstreamCacheStatus; the caller serves it and calls Finish); without, the upstream is
// to be asked and v.UpstreamCacheStatus is MISS, EXPIRED or BYPASS.
func Begin(ctx context.Context, z *Zone, c *Conf, v *vars.Request, r *http.Request, bg Background) (cr *Request, hit *Entry) {
	if !slices.Contains(c.Methods, r.Method) {
		return nil, nil
	}
	cr = &Request{z: z, c: c, store: true}
	head := r.Method == http.MethodHead
	if head && c.ConvertHead {
		cr.HeadGet, head = true, false
	}
	if u := bg.Update; u != nil {
		// the background update of an expired entry: this subrequest asks the upstream, stores the answer and
		// ends the update the request that answered with the entry began
		cr.look, cr.release, cr.upd = u.look, true, u
		cr.look.req, cr.look.head = r, head
		v.UpstreamCacheStatus = StatusExpired
		return cr, nil
	}
	key := c.Key.Eval(v)
	if anyTrue(c.Bypass, v) {
		cr.look = Lookup{Hash: Hash(key), Key: key, Uses: c.MinUses, req: r, head: head}
		cr.look.main = cr.look.Hash
		v.UpstreamCacheStatus = StatusBypass
		return cr, nil
	}
	cr.look = z.Get(key, r, head)
	status := StatusMiss
	switch cr.look.Status {
	case Hit:
		v.UpstreamCacheStatus = StatusHit
		return cr, cr.look.Entry
	case Updating:
		if c.UseStale.Updating {
			v.UpstreamCacheStatus = StatusUpdating
			return cr, cr.look.Entry
		}
		status, cr.stale = StatusExpired, cr.look.Entry
	case Stale:
		if c.Background && c.UseStale.Updating && bg.Start != nil {
			// nginx's background update: the expired entry answers now, and a subrequest updates it
			e := cr.look.Entry
			u := &Update{look: cr.look, z: z, status: e.Status, ims: e.Get("Last-Modified"), inm: e.Get("Etag")}
			u.look.Entry, u.look.req = nil, nil
			if bg.Start(u) {
				v.UpstreamCacheStatus = StatusStale
				return cr, cr.look.Entry
			}
		}
		cr.release = true
		status, cr.stale = StatusExpired, cr.look.Entry
	case Miss:
		switch {
		case cr.look.Uses < c.MinUses:
			cr.store = false
		case c.Lock:
			owner, done := z.Lock(ctx, cr.look.Hash, c.LockTimeout, c.LockAge)
			switch {
			case owner:
				cr.release = true
			case done:
				// the request that held the lock is done: its entry answers, if it stored one
				if l := z.Get(key, r, head); l.Status == Hit {
					cr.look.Entry = l.Entry
					v.UpstreamCacheStatus = StatusHit
					return cr, l.Entry
				} else if l.Entry != nil {
					l.Entry.Close()
					if l.Status == Stale {
						z.Done(l.Hash)
					}
				}
			default:
				cr.store = false // timed out: asks the upstream, stores nothing (nginx)
			}
		}
	}
	v.UpstreamCacheStatus = status
	return cr, nil
}

// Finish releases what the request held of the zone: the entry read, an entry not committed, the update or
// fill it owned.
func (cr *Request) Finish() {
	if cr.w != nil {
		cr.w.Abort() // (not committed: the transfer did not complete)
	}
	if cr.look.Entry != nil {
		cr.look.Entry.Close()
	}
	switch {
	case cr.upd != nil:
		cr.upd.Release()
	case cr.release:
		cr.z.Done(cr.look.Hash)
	}
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

// Fields are the request fields nginx's proxy_set_header (fastcgi_param HTTP_*) defaults clear when the
// location caches: a response is stored for every client, so the client's conditions and ranges never reach
// the upstream.
var Fields = [...]string{"If-Modified-Since", "If-Unmodified-Since", "If-None-Match", "If-Match", "Range", "If-Range"}

// Revalidate returns the conditions that ask the upstream whether the expired entry is still current
// (proxy_cache_revalidate): its Last-Modified as If-Modified-Since and its ETag as If-None-Match, "" for none.
func (cr *Request) Revalidate() (ims, inm string) {
	if u := cr.upd; u != nil {
		// a background update: the validators the expired entry had
		if !cr.c.Revalidate || u.status != http.StatusOK {
			return "", ""
		}
		ims, inm = u.ims, u.inm
	} else {
		e := cr.stale
		if e == nil || cr.look.Status != Stale || !cr.c.Revalidate || e.Status != http.StatusOK {
			return "", ""
		}
		ims, inm = e.Get("Last-Modified"), e.Get("Etag")
	}
	cr.reval = ims != "" || inm != ""
	return ims, inm
}

// UseStale returns the expired entry to send instead of a failed exchange (proxy_cache_use_stale), nil when
// there is none or the failure is not listed; status is the upstream's for a failure by status (fail 0).
func (cr *Request) UseStale(fail Failure, status int) *Entry {
	if cr == nil || cr.stale == nil {
		return nil
	}
	us := cr.c.UseStale
	ok := false
	switch fail {
	case FailError:
		ok = us.Error
	case FailTimeout:
		ok = us.Timeout
	case FailInvalidHeader:
		ok = us.InvalidHeader
	default:
		ok = slices.Contains(us.Status, status)
	}
	if !ok {
		return nil
	}
	return cr.stale
}

// Response handles the upstream's response head before it is passed on. A status proxy_cache_use_stale lists
// returns the stale entry (STALE), a 304 to a revalidation makes the entry fresh again and returns it
// (REVALIDATED): the caller closes the response and serves the entry. Otherwise it decides whether the response
// is stored and, if so, starts the entry's file (Storing); log reports a file that could not be made.
func (cr *Request) Response(v *vars.Request, status int, fields []Field, log func(string)) *Entry {
	if e := cr.UseStale(0, status); e != nil {
		v.UpstreamCacheStatus = StatusStale
		return e
	}
	now := time.Now()
	if cr.reval && status == http.StatusNotModified {
		staleStatus := http.StatusOK // (a background update revalidates only a 200)
		if cr.stale != nil {
			staleStatus = cr.stale.Status
		}
		if until, ok := Validity(staleStatus, fields, cr.c.Ignore, cr.c.Valid, now); ok {
			if err := cr.z.Refresh(cr.look.Hash, until); err != nil {
				log("refreshing entry failed: " + err.Error())
			}
		}
		v.UpstreamCacheStatus = StatusRevalidated
		return cr.stale // (nil for a background update: its 304 goes to no client)
	}
	if !cr.store || status == http.StatusPartialContent {
		return nil
	}
	until, ok := Validity(status, fields, cr.c.Ignore, cr.c.Valid, now)
	if !ok || anyTrue(cr.c.NoCache, v) {
		return nil
	}
	w, err := cr.z.Create(&cr.look, status, fields, varyOf(fields, cr.c.Ignore), until, now.Unix())
	if err != nil {
		log("creating entry failed: " + err.Error())
		return nil
	}
	cr.w = w
	return nil
}

// Storing reports whether the response is being stored (Response started its entry).
func (cr *Request) Storing() bool { return cr != nil && cr.w != nil }

// Tee is an upstream body passed on while it is written to the entry; eof notes that the body was read to
// its end, the one case in which the entry is committed.
type Tee struct {
	r   io.Reader
	w   *Writer
	eof bool
}

// Tee returns r read through to the entry being stored (Storing).
func (cr *Request) Tee(r io.Reader) *Tee { return &Tee{r: r, w: cr.w} }

func (t *Tee) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if n > 0 {
		t.w.Write(b[:n])
	}
	if errors.Is(err, io.EOF) {
		t.eof = true
	}
	return n, err
}

// End commits the entry when the whole body was read through t and passed on (err nil), else drops it; log
// reports a commit that failed. A committed entry also ends the fill's hold on its key (proxy_cache_lock
// waiters take the entry). Ending again does nothing: a spool commits once it has the whole body, before
// a slow client has it.
func (cr *Request) End(t *Tee, err error, log func(string)) {
	w := cr.w
	if w == nil {
		return
	}
	cr.w = nil
	if err != nil || !t.eof {
		w.Abort()
		return
	}
	if cerr := w.Commit(); cerr != nil {
		log("storing entry failed: " + cerr.Error())
		return
	}
	if cr.release && cr.upd == nil {
		cr.release = false
		cr.z.Done(cr.look.Hash)
	}
}
