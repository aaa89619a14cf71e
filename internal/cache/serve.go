package cache

import (
	"io"
	"net/http"
	"strconv"

	"github.com/sluice-proxy/sluice/internal/compress"
	"github.com/sluice-proxy/sluice/internal/httpsyntax"
	"github.com/sluice-proxy/sluice/internal/static"
)

// Precondition is nginx's not_modified filter on a cached or cacheable 200 whose header h is about to be
// sent: 412, or 304 with h made a 304's (no length, type or Accept-Ranges, as nginx sends it), or 0.
func Precondition(r *http.Request, ims static.IMS, h http.Header) int {
	etag, lm := httpsyntax.FirstOf(h["Etag"]), httpsyntax.FirstOf(h["Last-Modified"])
	mtime := int64(-1)
	if t, err := http.ParseTime(lm); err == nil {
		mtime = t.Unix()
	}
	st := static.Precondition(r.Header, ims, mtime, etag)
	if st == http.StatusNotModified {
		delete(h, "Content-Length")
		delete(h, "Content-Type")
		delete(h, "Accept-Ranges")
	}
	return st
}

// Sender is what Serve needs of the location and the response path.
type Sender struct {
	W           http.ResponseWriter
	R           *http.Request
	IMS         static.IMS       // if_modified_since
	ForceRanges bool             // proxy_force_ranges
	Gzip        *compress.Gzip   // the location's gzip filter, nil without: a response it compresses is not ranged
	Gunzip      *compress.Gunzip // the location's gunzip, nil without: a response it decompresses is not ranged
	Error       func(status int)
	Header      func(status int) // called before the head is written; may be nil
}

// Serve answers from e through s, whose header the caller has filled from e's fields by its module's rules
// (proxy_hide_header, fastcgi_hide_header, …): a 200 answers conditional requests (304, 412) and a single range
// (206, 416) as nginx's not_modified and range filters do; the body goes from the file (sendfile where the
// writer can). The error is the client's, from sending the body.
func (s *Sender) Serve(e *Entry) error {
	h := s.W.Header()
	code, off, n := e.Status, int64(0), e.BodySize
	// (a chunked response has none, and is sent chunked again, as nginx; a HEAD's entry keeps the length it
	// was sent with)
	length := e.Get("Content-Length") != "" && !e.HeadOnly
	if code == http.StatusOK {
		switch st := Precondition(s.R, s.IMS, h); st {
		case http.StatusPreconditionFailed:
			s.Error(st)
			return nil
		case http.StatusNotModified:
			if s.Header != nil {
				s.Header(st)
			}
			s.W.WriteHeader(st)
			return nil
		}
		// nginx answers ranges of a cached response whose upstream sent Accept-Ranges (or with
		// proxy_force_ranges), and of one with a length only; the range filter then sends its own Accept-Ranges
		_, accept := h["Accept-Ranges"]
		if (accept || s.ForceRanges) && length {
			delete(h, "Accept-Ranges")
			// (nor one gunzip decompresses: nginx's range filter then sees no length)
			if g := s.Gzip; (g == nil || !g.Compressible(http.StatusOK, h) || !g.Accepts(s.R, h)) && (s.Gunzip == nil || !s.Gunzip.Inflates(s.R, h)) {
				start, end, st, ok := static.ForcedRange(s.R.Header, e.BodySize, httpsyntax.FirstOf(h["Etag"]), httpsyntax.FirstOf(h["Last-Modified"]))
				switch {
				case !ok:
					h["Accept-Ranges"] = []string{"bytes"}
				case st == http.StatusRequestedRangeNotSatisfiable:
					h["Content-Range"] = []string{"bytes */" + strconv.FormatInt(e.BodySize, 10)}
					s.Error(st)
					return nil
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
	if s.Header != nil {
		s.Header(code)
	}
	s.W.WriteHeader(code)
	if s.R.Method == http.MethodHead || n == 0 {
		return nil
	}
	_, err := io.Copy(s.W, e.Body(off, n))
	return err
}
