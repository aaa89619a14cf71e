package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

const charsetConf = `events {}
http {
    types { text/html html; text/plain txt; text/css css; }
    charset_map koi8-r utf-8 { C1 D0B0; C2 D0B1; D7 D0B2; 80 E282AC; }
    charset_map windows-1251 utf-8 { C0 D090; C1 D091; 88 E282AC; }
    server {
        listen {{PORT}};
        root html;
        charset utf-8;
        location / { }
        location /off/ { charset off; alias html/; }
        location /types/ { charset_types text/css; alias html/; }
        location /koi/ { source_charset koi8-r; alias html/; }
        location /if/ { charset off; if ($arg_x) { charset koi8-r; } alias html/; }
        location /var/ { charset $arg_cs; alias html/; }
        location /ret { return 200 "text\n"; }
        location /r302 { return 302 /x; }
        location /r307 { return 307 /x; }
        location /p/ { proxy_pass http://127.0.0.1:{{UP}}/; }
        location /pov/ { override_charset on; proxy_pass http://127.0.0.1:{{UP}}/; }
        location /pkoi/ { override_charset on; source_charset koi8-r; proxy_pass http://127.0.0.1:{{UP}}/; }
        location /pign/ { proxy_ignore_headers X-Accel-Charset; proxy_pass http://127.0.0.1:{{UP}}/; }
        location /php/ { root html; fastcgi_pass 127.0.0.1:{{FPM}}; fastcgi_param SCRIPT_FILENAME $document_root/c.php; fastcgi_param QUERY_STRING $query_string; fastcgi_param REQUEST_METHOD $request_method; }
        location /phpov/ { override_charset on; fastcgi_pass 127.0.0.1:{{FPM}}; fastcgi_param SCRIPT_FILENAME $document_root/c.php; fastcgi_param QUERY_STRING $query_string; fastcgi_param REQUEST_METHOD $request_method; }
    }
    server {
        listen {{WIN}};
        root html;
        charset windows-1251; source_charset utf-8;
        location / { }
        location /p/ { proxy_pass http://127.0.0.1:{{UP}}/; }
    }
}
`

// TestCharsetAsNginx checks the charset module on static files, return and built-in pages, proxied and FastCGI
// responses, and its recoding between koi8-r, windows-1251 and utf-8. Every expected answer was observed from
// nginx 1.22 on the same configuration and backends: "; charset=" is added to charset_types types only (text/html
// always), not to 301/302, not to a response that names a charset (unless override_charset, which gives the
// configured name or recodes), and an upstream's X-Accel-Charset names the charset instead; a body recoded to or
// from utf-8 has no Content-Length and a Range gets the whole of it; a byte or code point the map lacks becomes
// "?" or "&#N;", also when a UTF-8 sequence is split across upstream reads.
func TestCharsetAsNginx(t *testing.T) {
	t.Parallel()
	up := piecesBackend(t)
	fpm := startPHPFPM(t)
	port, win := freePort(t), freePort(t)
	start(t, fill(t, charsetConf, "PORT", port, "WIN", win, "UP", up.Port, "FPM", fpm.Port),
		withFile("html/a.html", []byte("<p>hi</p>\n")),
		withFile("html/a.txt", []byte("plain")),
		withFile("html/a.css", []byte("body{}")),
		withFile("html/koi.html", []byte("\xc1\xc2\xd7\xc3 koi\n")),
		withFile("html/utf.html", []byte("\xd0\x90\xd0\x91 \xe2\x82\xac \xd0\x92 \xf0\x9f\x98\x80\n")),
		withFile("html/c.php", []byte(`<?php if (isset($_GET['ct'])) header('Content-Type: '.$_GET['ct']); if (isset($_GET['xa'])) header('X-Accel-Charset: '.$_GET['xa']); echo "php \xc1\n";`)))

	tests := []struct {
		port  int
		path  string
		hdr   []string // request header, name and value pairs
		code  int
		ctype string // "" when none
		body  string // "" when not checked
		whole bool   // no Content-Length, or the body's (recoded)
	}{
		{port, "/a.html", nil, 200, "text/html; charset=utf-8", "<p>hi</p>\n", false},
		{port, "/a.txt", nil, 200, "text/plain; charset=utf-8", "plain", false},
		{port, "/a.css", nil, 200, "text/css", "body{}", false},
		{port, "/off/a.html", nil, 200, "text/html", "", false},
		{port, "/types/a.css", nil, 200, "text/css; charset=utf-8", "", false},
		{port, "/types/a.html", nil, 200, "text/html; charset=utf-8", "", false},
		{port, "/types/a.txt", nil, 200, "text/plain", "", false},
		{port, "/nope", nil, 404, "text/html; charset=utf-8", "", false},
		{port, "/ret", nil, 200, "text/plain; charset=utf-8", "text\n", false},
		{port, "/r302", nil, 302, "text/html", "", false},
		{port, "/r307", nil, 307, "text/html; charset=utf-8", "", false},
		{port, "/if/a.html", nil, 200, "text/html", "", false},
		{port, "/if/a.html?x=1", nil, 200, "text/html; charset=koi8-r", "", false},
		{port, "/var/a.html?cs=koi8-r", nil, 200, "text/html; charset=koi8-r", "", false},
		{port, "/var/a.html?cs=foo", nil, 200, "text/html; charset=foo", "", false},
		{port, "/koi/koi.html", nil, 200, "text/html; charset=utf-8", "\u0430\u0431\u0432? koi\n", true},
		{port, "/koi/koi.html", []string{"Range", "bytes=0-1"}, 200, "text/html; charset=utf-8", "\u0430\u0431\u0432? koi\n", true},

		{port, "/p/?parts=x", nil, 200, "text/html; charset=utf-8", "x", false},
		{port, "/p/?parts=x&type=text/html%3B%20charset=ISO-8859-1", nil, 200, "text/html; charset=ISO-8859-1", "x", false},
		{port, "/p/?parts=x&type=text/html%3B%20foo=bar", nil, 200, "text/html; foo=bar", "x", false},
		{port, "/p/?parts=x&type=text/css", nil, 200, "text/css", "x", false},
		{port, "/p/?parts=x&status=302&type=text/html%3B%20charset=UTF-8", nil, 302, "text/html; charset=UTF-8", "x", false},
		{port, "/pov/?parts=x&type=text/html%3B%20charset=UTF-8", nil, 200, "text/html; charset=utf-8", "x", false},
		{port, "/pov/?parts=x&type=text/html%3B%20charset=%22utf-8%22", nil, 200, "text/html; charset=utf-8", "x", false},
		{port, "/pov/?parts=x&type=text/html%3B%20charset=ISO-8859-1", nil, 200, "text/html; charset=ISO-8859-1", "x", false},
		{port, "/pov/?parts=x&status=302&type=text/html%3B%20charset=UTF-8", nil, 302, "text/html", "x", false},
		{port, "/pov/?parts=%C1|%C2&delay=20&cl=1&type=text/html%3B%20charset=koi8-r", nil, 200, "text/html; charset=utf-8", "\u0430\u0431", true},
		{port, "/pkoi/?parts=%C1%D7&cl=1", nil, 200, "text/html; charset=utf-8", "\u0430\u0432", true},
		{port, "/pkoi/?parts=%C1&ce=gzip", nil, 200, "text/html", "\xc1", false},
		{port, "/p/?parts=x&xa=koi8-r", nil, 200, "text/html; charset=koi8-r", "x", false},
		{port, "/p/?parts=x&xa=foo", nil, 200, "text/html", "x", false},
		{port, "/pign/?parts=x&xa=koi8-r", nil, 200, "text/html; charset=utf-8", "x", false},

		{port, "/php/", nil, 200, "text/html; charset=UTF-8", "php \xc1\n", false},
		{port, "/php/?ct=text/css", nil, 200, "text/css;charset=UTF-8", "php \xc1\n", false},
		{port, "/php/?xa=koi8-r", nil, 200, "text/html; charset=koi8-r", "php ?\n", true},
		{port, "/phpov/", nil, 200, "text/html; charset=utf-8", "php \xc1\n", false},

		{win, "/utf.html", nil, 200, "text/html; charset=windows-1251", "\xc0\xc1 \x88 &#1042; &#128512;\n", true},
		{win, "/p/?parts=%D0|%90%E2%82|%AC%C3A%FF%F0%9F|%98|%80&delay=20", nil, 200, "text/html; charset=windows-1251", "\xc0\x88???", true},
	}
	// redirects are not followed, and a gzip body is not decompressed
	client := &http.Client{Transport: &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr(tc.port)+tc.path, nil)
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			req.Header.Set(tc.hdr[i], tc.hdr[i+1])
		}
		r := do(t, client, req)
		if r.StatusCode != tc.code || r.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%d %s: %d %q, want %d %q", tc.port, tc.path, r.StatusCode, r.Header.Get("Content-Type"), tc.code, tc.ctype)
		}
		if tc.body != "" && r.Body != tc.body {
			t.Errorf("%d %s: body %q, want %q", tc.port, tc.path, r.Body, tc.body)
		}
		if cl := r.Header.Get("Content-Length"); tc.whole && cl != "" && cl != strconv.Itoa(len(r.Body)) {
			t.Errorf("%d %s: Content-Length %s for a body of %d bytes", tc.port, tc.path, cl, len(r.Body))
		}
		if tc.whole && (r.Header.Get("Content-Range") != "" || r.Header.Get("Accept-Ranges") != "") {
			t.Errorf("%d %s: a recoded file offers ranges: %v", tc.port, tc.path, r.Header)
		}
	}
}

// TestCharsetMapRequired checks that recoding between two charsets without a charset_map is refused at load,
// as nginx refuses it, with the place of the directive.
func TestCharsetMapRequired(t *testing.T) {
	t.Parallel()
	prefix, conf, _ := newPrefix(t, "events {}\nhttp {\n server {\n  listen 127.0.0.1:1;\n  charset utf-8;\n  source_charset koi8-r;\n }\n}\n")
	code, out := runSluice(t, "-t", "-p", prefix+"/", "-c", conf)
	if code == 0 || !strings.Contains(out, `no "charset_map" between the charsets "koi8-r" and "utf-8"`) || !strings.Contains(out, "sluice.conf:6") {
		t.Fatalf("exit %d: %s", code, out)
	}
}
