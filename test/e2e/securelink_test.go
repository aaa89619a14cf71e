package e2e

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSecureLinkAndEmptyGIF: $secure_link (both forms) and empty_gif answer as nginx 1.22 did on the same
// configuration, request for request (the expected strings below were its answers).
func TestSecureLinkAndEmptyGIF(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location = /e.gif { empty_gif; }
        location /s/ {
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri$remote_addr secret";
            return 200 "link=[$secure_link] exp=[$secure_link_expires]";
        }
        location /o/ { secure_link_secret sec; return 200 "old=[$secure_link]"; }
        location /n/ { return 200 "none=[$secure_link] exp=[$secure_link_expires]"; }
    }
}
`, "PORT", port))
	c := httpClient(addr(port), nil)
	b64 := func(s string) string {
		sum := md5.Sum([]byte(s))
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}
	exp := strconv.FormatInt(time.Now().Unix()+3600, 10)
	past := strconv.FormatInt(time.Now().Unix()-10, 10)
	good, old, noexp := b64(exp+"/s/x127.0.0.1 secret"), b64(past+"/s/x127.0.0.1 secret"), b64("/s/x127.0.0.1 secret")
	sum := md5.Sum([]byte("p/f.txtsec"))
	hexSum := hex.EncodeToString(sum[:])
	for _, tc := range []struct{ uri, want string }{
		{"/s/x?md5=" + good + "&expires=" + exp, "link=[1] exp=[" + exp + "]"},
		{"/s/x?md5=" + old + "&expires=" + past, "link=[0] exp=[" + past + "]"},
		{"/s/x?md5=" + noexp, "link=[] exp=[]"}, // the expression always has its comma: an empty time is no time
		{"/s/x?md5=" + good + "=&expires=" + exp, "link=[1] exp=[" + exp + "]"},
		{"/s/x?md5=" + good + "xx&expires=" + exp, "link=[] exp=[" + exp + "]"},
		{"/s/x?md5=" + good + "&expires=abc", "link=[] exp=[]"},
		{"/s/x?md5=" + good + "&expires=0", "link=[] exp=[]"},
		{"/s/x?md5=" + b64("x"), "link=[] exp=[]"},
		{"/o/" + hexSum + "/p/f.txt", "old=[p/f.txt]"},
		{"/o/" + strings.ToUpper(hexSum) + "/p/f.txt", "old=[p/f.txt]"},
		{"/o/" + hexSum + "/p/f.txt?q=1", "old=[]"},
		{"/o/bad/p/f.txt", "old=[]"},
		{"/o/x/" + hexSum + "/p/f.txt", "old=[]"},
		{"/n/x", "none=[] exp=[]"},
	} {
		if r := get(t, c, "http://sl.test"+tc.uri, nil); r.Body != tc.want {
			t.Errorf("%s: %q, want %q", tc.uri, r.Body, tc.want)
		}
	}
	gif := "GIF89a\x01\x00\x01\x00\x80\x01\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x01\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02L\x01\x00;"
	r := get(t, c, "http://sl.test/e.gif", http.Header{"Range": {"bytes=0-1"}})
	if r.StatusCode != 200 || r.Body != gif || r.Header.Get("Content-Type") != "image/gif" || r.Header.Get("Last-Modified") != "Mon, 28 Sep 1970 06:00:00 GMT" {
		t.Errorf("empty_gif: %d %q %v", r.StatusCode, r.Body, r.Header)
	}
	if r := get(t, c, "http://sl.test/e.gif", http.Header{"If-Modified-Since": {"Mon, 28 Sep 1970 06:00:00 GMT"}}); r.StatusCode != 304 {
		t.Errorf("empty_gif If-Modified-Since: %d", r.StatusCode)
	}
	req, _ := http.NewRequest("POST", "http://sl.test/e.gif", nil)
	if r := do(t, c, req); r.StatusCode != 405 {
		t.Errorf("empty_gif POST: %d", r.StatusCode)
	}
}
