// Package static serves files from a document root with nginx's root/index semantics.
package static

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Request says what to serve.
type Request struct {
	Root        string            // $document_root, no trailing slash
	URI         string            // normalised URI
	Index       []string          // index file names, tried in order for a URI ending in "/"
	Types       map[string]string // extension -> MIME type
	DefaultType string
}

// Serve writes the file for req.URI and returns 0, or returns the error status for the caller's error page
// handling (404, 403, 405, 301 is written directly for directories without a trailing slash).
func Serve(w http.ResponseWriter, r *http.Request, req Request) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return http.StatusMethodNotAllowed
	}
	name := filepath.Join(req.Root, filepath.FromSlash(req.URI))
	if strings.HasSuffix(req.URI, "/") {
		for _, idx := range req.Index {
			if strings.HasPrefix(idx, "/") {
				continue
			}
			p := filepath.Join(name, idx)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return serveFile(w, r, p, fi, req)
			}
		}
		if _, err := os.Stat(name); err == nil {
			return http.StatusForbidden // a directory without index (autoindex off)
		}
		return http.StatusNotFound
	}
	fi, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	case err != nil:
		return http.StatusInternalServerError
	case fi.IsDir():
		target := req.URI + "/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", target)
		return http.StatusMovedPermanently
	}
	return serveFile(w, r, name, fi, req)
}

func serveFile(w http.ResponseWriter, r *http.Request, name string, fi os.FileInfo, req Request) int {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return http.StatusForbidden
		}
		return http.StatusNotFound
	}
	defer f.Close()
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
	ct := req.Types[ext]
	if ct == "" {
		ct = req.DefaultType
	}
	w.Header().Set("Content-Type", ct)
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return 0
}
