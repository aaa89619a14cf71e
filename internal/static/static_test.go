package static

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestServe(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dir"), 0o755)
	os.MkdirAll(filepath.Join(root, "empty"), 0o755)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("home"), 0o644)
	os.WriteFile(filepath.Join(root, "dir", "main.html"), []byte("dir main"), 0o644)
	os.WriteFile(filepath.Join(root, "style.css"), []byte("body{}"), 0o644)
	types := map[string]string{"html": "text/html", "css": "text/css"}
	tests := []struct {
		method, uri string
		index       []string
		status      int    // returned status (0: written)
		code        int    // recorded code when written
		body, ctype string // expected when written
		location    string
	}{
		{"GET", "/", []string{"index.html"}, 0, 200, "home", "text/html", ""},
		{"GET", "/dir/", []string{"index.html", "main.html"}, 0, 200, "dir main", "text/html", ""},
		{"GET", "/style.css", nil, 0, 200, "body{}", "text/css", ""},
		{"HEAD", "/style.css", nil, 0, 200, "", "text/css", ""},
		{"GET", "/missing", nil, 404, 0, "", "", ""},
		{"GET", "/empty/", []string{"index.html"}, 403, 0, "", "", ""},
		{"GET", "/nodir/", []string{"index.html"}, 404, 0, "", "", ""},
		{"GET", "/dir", nil, 301, 0, "", "", "/dir/"},
		{"POST", "/style.css", nil, 405, 0, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.uri, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tt.method, tt.uri, nil)
			got := Serve(w, r, Request{Root: root, URI: tt.uri, Index: tt.index, Types: types, DefaultType: "text/plain"})
			if got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
			if tt.location != "" && w.Header().Get("Location") != tt.location {
				t.Errorf("Location %q", w.Header().Get("Location"))
			}
			if got != 0 {
				return
			}
			if w.Code != tt.code || w.Body.String() != tt.body || w.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("got %d %q %q", w.Code, w.Body.String(), w.Header().Get("Content-Type"))
			}
		})
	}
}
