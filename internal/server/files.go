package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/route"
	"github.com/sluice-proxy/sluice/internal/static"
)

// serveStatic is the static content handler: index files as internal redirects (so "/" can run index.php),
// then the file itself, a listing, or the error status.
func (rq *request) serveStatic() {
	c, uri := rq.conf, rq.v.URI
	name := rq.v.RequestFilename // content() has mapped the URI already in an alias location
	if name == "" {
		name = rq.filename(uri)
	}
	if strings.HasSuffix(uri, "/") && (c.Dotfiles.Get(false) || !static.Hidden(uri)) {
		if idx := static.FindIndex(name, rq.indexFiles()); idx != "" {
			// nginx's index module: an internal redirect to the index file's URI, which may match another location
			if strings.HasPrefix(idx, "/") {
				uri = ""
			}
			rq.v.URI, rq.uriChanged = uri+idx, true
			rq.internal = true
			rq.findAndServe()
			return
		}
	}
	status := static.Serve(rq.w, rq.r, static.Request{
		Root:        rq.v.DocumentRoot,
		URI:         uri,
		Path:        name,
		Types:       c.MimeTypes(),
		DefaultType: c.DefaultType.Get("text/plain"),
		ETag:        c.ETag.Get(true),
		GzipStatic:  c.GzipStatic.V,
		Dotfiles:    c.Dotfiles.Get(false),
		NoSymlinks:  c.NoSymlinks.Get(false),
		Autoindex:   c.Autoindex.Get(false),
		Listing: static.Listing{Format: c.AutoindexFormat.V, Rounded: !c.AutoindexExactSize.Get(true),
			Localtime: c.AutoindexLocaltime.Get(false)},
		Bufs:        &rq.s.fileBufs,
		Validators:  &rq.s.validators,
		Parts:       &rq.s.byteranges,
		Gzip:        c.GzipFilter,
		Gunzip:      c.GunzipFilter,
		Sub:         c.SubFilter,
		Charset:     c.Charset,
		CharsetVars: rq.v,

		IfModifiedSince: c.IMS.Get(static.IMSExact),
		MaxRanges:       maxRanges(c.MaxRanges),
		// nginx's not_modified and range filters see 200s only: not an error page's own status
		NoConditions: rq.w.forceStatus != 0 && rq.w.forceStatus != http.StatusOK,
	})
	switch status {
	case 0:
	case http.StatusMovedPermanently:
		rq.redirect(status, rq.w.Header().Get("Location")) // a directory without its slash
	case http.StatusNotFound, http.StatusForbidden:
		if status == http.StatusForbidden || c.LogNotFound.Get(true) {
			rq.log.Error("open() "+strconv.Quote(name)+" failed", rq.v.LogAttrs()...)
		}
		rq.special(status)
	default:
		rq.special(status)
	}
}

// unsafePath reports whether path (raw or %-decoded) has a ".." segment or a NUL.
func unsafePath(path string) bool {
	if dec, err := url.PathUnescape(path); err == nil && dec != path && unsafePath(dec) {
		return true
	}
	if strings.IndexByte(path, 0) >= 0 {
		return true
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}

// maxRanges is static.Request's MaxRanges for max_ranges: 0 when not set (no limit), -1 for 0 (ranges off).
func maxRanges(o config.Opt[int]) int {
	switch {
	case !o.Set:
		return 0
	case o.V == 0:
		return -1
	}
	return o.V
}

// filename maps a URI to the file system: root + URI, or with alias the alias in place of the location's
// prefix (in a regex location the alias, with its captures, is the whole file name).
func (rq *request) filename(uri string) string {
	if a := rq.conf.Alias; a.Set && rq.loc != nil {
		alias := a.V.Eval(rq.v)
		switch rq.loc.Modifier {
		case route.Regex, route.RegexCaseless:
			return alias
		default:
			if rest, ok := strings.CutPrefix(uri, rq.loc.Pattern); ok {
				return alias + rest
			}
		}
	}
	return rq.v.DocumentRoot + uri
}

// fileRoot is the directory filename maps URIs below: the alias in an alias location, else $document_root.
func (rq *request) fileRoot() string {
	if a := rq.conf.Alias; a.Set && rq.loc != nil {
		return strings.TrimSuffix(a.V.Eval(rq.v), "/")
	}
	return rq.v.DocumentRoot
}

// tryFiles runs try_files: the first argument naming an existing file (or, ending in "/", a directory) becomes
// the URI the location's handler serves; otherwise the last argument decides: =code, @named location, or an
// internal redirect to a URI. It reports whether the request was answered.
func (rq *request) tryFiles() bool {
	ts := rq.conf.TryFiles.V
	root, noLinks := "", rq.conf.NoSymlinks.Get(false)
	if noLinks {
		root = rq.fileRoot()
	}
	for _, t := range ts[:len(ts)-1] {
		// as nginx: an argument written with a final "/" ($uri/) tests for a directory, and that "/" is not
		// part of the URI it yields, so "/dir" found as a directory gets the static handler's 301 to "/dir/"
		testDir := strings.HasSuffix(t.String(), "/")
		val := t.Eval(rq.v)
		if testDir && len(val) > 1 {
			val = val[:len(val)-1]
		}
		if val == "" || !strings.HasPrefix(val, "/") || strings.Contains(val, "/../") || strings.HasSuffix(val, "/..") || strings.IndexByte(val, 0) >= 0 {
			continue
		}
		isDir, ok := static.Exists(root, rq.filename(val), noLinks)
		if !ok || isDir != testDir {
			continue
		}
		if !rq.conf.Dotfiles.Get(false) && static.Hidden(val) {
			continue
		}
		if val != rq.v.URI {
			rq.v.URI = val
		}
		return false
	}
	last := ts[len(ts)-1].Eval(rq.v)
	if code, ok := strings.CutPrefix(last, "="); ok {
		n, _ := strconv.Atoi(code)
		rq.special(n)
		return true
	}
	rq.internalRedirect(last)
	return true
}

// internalRedirect serves target (a URI with optional arguments, or @name) as nginx's internal redirect:
// the location is searched again and `internal` locations may answer.
func (rq *request) internalRedirect(target string) {
	rq.internal = true
	if name, ok := strings.CutPrefix(target, "@"); ok {
		if l, ok := rq.srv.Matcher.Named(name); ok {
			rq.serveLocation(l.Value)
			return
		}
		rq.log.Error("could not find named location "+strconv.Quote("@"+name), rq.v.LogAttrs()...)
		rq.special(http.StatusInternalServerError)
		return
	}
	path, args, hasArgs := strings.Cut(target, "?")
	if hasArgs {
		rq.v.Args = args
	}
	norm, err := route.Normalize(path)
	if err != nil {
		rq.log.Error("invalid internal redirect to "+strconv.Quote(target), rq.v.LogAttrs()...)
		rq.special(http.StatusInternalServerError)
		return
	}
	rq.v.URI, rq.uriChanged = norm, true
	rq.findAndServe()
}

// accelRedirect follows an upstream's X-Accel-Redirect: to a named location as the request is, to a URI as a
// GET (HEAD stays HEAD), without body either way. A URI that is empty, relative, or has a ".." segment or a
// NUL (also %-encoded) gets 404, as nginx's unsafe-URI check (and its search for a location) answer it.
func (rq *request) accelRedirect(target string) {
	rq.r.Body, rq.r.ContentLength = http.NoBody, 0
	if strings.HasPrefix(target, "@") {
		rq.internalRedirect(target)
		return
	}
	if path, _, _ := strings.Cut(target, "?"); !strings.HasPrefix(path, "/") || unsafePath(path) {
		rq.log.Error("unsafe URI "+strconv.Quote(target)+" was detected", rq.v.LogAttrs()...)
		rq.special(http.StatusNotFound)
		return
	}
	if rq.r.Method != http.MethodHead {
		rq.r.Method = http.MethodGet
	}
	rq.internalRedirect(target)
}
