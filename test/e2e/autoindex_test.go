package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAutoindexAsNginx: directory listings in each autoindex_format and with autoindex_exact_size off, byte for
// byte as nginx 1.22 wrote them for the same directory (the expected bodies below are its output, with the
// location's prefix in the HTML title replaced).
func TestAutoindexAsNginx(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	long := strings.Repeat("long-name-", 7) + ".txt"
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        root html;
        autoindex on;
        location /e/ { alias html/d/; autoindex_exact_size off; }
        location /j/ { alias html/d/; autoindex_format json; }
        location /x/ { alias html/d/; autoindex_format xml; }
        location /p/ { alias html/d/; autoindex_format jsonp; }
    }
}
`, "PORT", port),
		withFile("html/d/a file.txt", []byte("hi\n")), withFile("html/d/big.bin", make([]byte, 5000)),
		withFile("html/d/huge.bin", make([]byte, 3000000)), withFile("html/d/"+long, []byte("x\n")),
		withFile("html/d/q\"<&>.txt", []byte("x\n")), withFile("html/d/.hidden", []byte("x\n")),
		withFile("html/d/sub/f", []byte("x")))
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := filepath.Join(s.Prefix, "html", "d")
	for _, n := range []string{"a file.txt", "big.bin", "huge.bin", long, "q\"<&>.txt", ".hidden", "sub"} {
		if err := os.Chtimes(filepath.Join(dir, n), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	c := httpClient(addr(port), nil)
	for _, tc := range []struct{ path, ctype, want string }{
		{"/d/", "text/html", "<html>\r\n<head><title>Index of /d/</title></head>\r\n<body>\r\n<h1>Index of /d/</h1><hr><pre><a href=\"../\">../</a>\r\n<a href=\"sub/\">sub/</a>                                               02-Jan-2024 03:04                   -\r\n<a href=\"a%20file.txt\">a file.txt</a>                                         02-Jan-2024 03:04                   3\r\n<a href=\"big.bin\">big.bin</a>                                            02-Jan-2024 03:04                5000\r\n<a href=\"huge.bin\">huge.bin</a>                                           02-Jan-2024 03:04             3000000\r\n<a href=\"long-name-long-name-long-name-long-name-long-name-long-name-long-name-.txt\">long-name-long-name-long-name-long-name-long-na..&gt;</a> 02-Jan-2024 03:04                   2\r\n<a href=\"q%22%3C%26%3E.txt\">q&quot;&lt;&amp;&gt;.txt</a>                                          02-Jan-2024 03:04                   2\r\n</pre><hr></body>\r\n</html>\r\n"},
		{"/e/", "text/html", "<html>\r\n<head><title>Index of /e/</title></head>\r\n<body>\r\n<h1>Index of /e/</h1><hr><pre><a href=\"../\">../</a>\r\n<a href=\"sub/\">sub/</a>                                               02-Jan-2024 03:04       -\r\n<a href=\"a%20file.txt\">a file.txt</a>                                         02-Jan-2024 03:04       3\r\n<a href=\"big.bin\">big.bin</a>                                            02-Jan-2024 03:04    5000\r\n<a href=\"huge.bin\">huge.bin</a>                                           02-Jan-2024 03:04      3M\r\n<a href=\"long-name-long-name-long-name-long-name-long-name-long-name-long-name-.txt\">long-name-long-name-long-name-long-name-long-na..&gt;</a> 02-Jan-2024 03:04       2\r\n<a href=\"q%22%3C%26%3E.txt\">q&quot;&lt;&amp;&gt;.txt</a>                                          02-Jan-2024 03:04       2\r\n</pre><hr></body>\r\n</html>\r\n"},
		{"/j/", "application/json", "[\r\n{ \"name\":\"sub\", \"type\":\"directory\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\" },\r\n{ \"name\":\"a file.txt\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":3 },\r\n{ \"name\":\"big.bin\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":5000 },\r\n{ \"name\":\"huge.bin\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":3000000 },\r\n{ \"name\":\"long-name-long-name-long-name-long-name-long-name-long-name-long-name-.txt\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":2 },\r\n{ \"name\":\"q\\\"<&>.txt\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":2 }\r\n]"},
		{"/x/", "text/xml; charset=utf-8", "<?xml version=\"1.0\"?>\r\n<list>\r\n<directory mtime=\"2024-01-02T03:04:05Z\">sub</directory>\r\n<file mtime=\"2024-01-02T03:04:05Z\" size=\"3\">a file.txt</file>\r\n<file mtime=\"2024-01-02T03:04:05Z\" size=\"5000\">big.bin</file>\r\n<file mtime=\"2024-01-02T03:04:05Z\" size=\"3000000\">huge.bin</file>\r\n<file mtime=\"2024-01-02T03:04:05Z\" size=\"2\">long-name-long-name-long-name-long-name-long-name-long-name-long-name-.txt</file>\r\n<file mtime=\"2024-01-02T03:04:05Z\" size=\"2\">q&quot;&lt;&amp;&gt;.txt</file>\r\n</list>\r\n"},
		{"/p/?callback=cb", "application/javascript", "/* callback */\r\ncb([\r\n{ \"name\":\"sub\", \"type\":\"directory\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\" },\r\n{ \"name\":\"a file.txt\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":3 },\r\n{ \"name\":\"big.bin\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":5000 },\r\n{ \"name\":\"huge.bin\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":3000000 },\r\n{ \"name\":\"long-name-long-name-long-name-long-name-long-name-long-name-long-name-.txt\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":2 },\r\n{ \"name\":\"q\\\"<&>.txt\", \"type\":\"file\", \"mtime\":\"Tue, 02 Jan 2024 03:04:05 GMT\", \"size\":2 }\r\n]);"},
	} {
		r := get(t, c, "http://ai.test"+tc.path, nil)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != tc.ctype || r.Body != tc.want {
			t.Errorf("%s: %d %q\n%s\nwant\n%s", tc.path, r.StatusCode, r.Header.Get("Content-Type"), r.Body, tc.want)
		}
	}
	// a callback name nginx refuses
	if r := get(t, c, "http://ai.test/p/?callback=a-b", nil); r.StatusCode != 400 {
		t.Errorf("jsonp with callback a-b: %d, want 400", r.StatusCode)
	}
}
