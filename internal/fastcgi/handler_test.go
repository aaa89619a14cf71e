package fastcgi

import (
	"bytes"
	"io"
	"regexp"
	"testing"

	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/vars"
)

func TestSetScriptName(t *testing.T) {
	split := regexp.MustCompile(`^(.+\.php)(/.+)$`)
	tests := []struct {
		uri         string
		split       *regexp.Regexp
		index       string
		script, inf string
	}{
		{"/index.php", nil, "index.php", "/index.php", ""},
		{"/blog/", nil, "index.php", "/blog/index.php", ""},
		{"/blog/", nil, "", "/blog/", ""},
		{"/app.php/user/1", split, "", "/app.php", "/user/1"},
		{"/app.php", split, "", "/app.php", ""},
		{"/uploads/evil.jpg/x.php", split, "", "/uploads/evil.jpg/x.php", ""},
	}
	for _, tt := range tests {
		v := &vars.Request{URI: tt.uri}
		c := &config.LocConf{}
		if tt.split != nil {
			c.FastCGISplitPathInfo = config.Opt[*regexp.Regexp]{V: tt.split, Set: true}
		}
		c.FastCGIIndex = config.Opt[string]{V: tt.index, Set: tt.index != ""}
		SetScriptName(v, c)
		if v.FastCGIScriptName != tt.script || v.FastCGIPathInfo != tt.inf {
			t.Errorf("%s: script %q info %q, want %q %q", tt.uri, v.FastCGIScriptName, v.FastCGIPathInfo, tt.script, tt.inf)
		}
	}
}

func TestHeaderParamAndSafeFilename(t *testing.T) {
	for in, want := range map[string]string{"X-Forwarded-For": "HTTP_X_FORWARDED_FOR", "Accept": "HTTP_ACCEPT", "content-type": "HTTP_CONTENT_TYPE"} {
		if got := string(appendHeaderParam(nil, in)); got != want {
			t.Errorf("appendHeaderParam(%q) = %q", in, got)
		}
	}
	for p, ok := range map[string]bool{"/srv/www/index.php": true, "/srv/www/../etc/passwd": false, "/srv/www/a.php\x00.jpg": false, "/srv/www/..": false, "/srv/www/a..b.php": true} {
		if safeFilename([]byte(p)) != ok {
			t.Errorf("safeFilename(%q) = %v", p, !ok)
		}
	}
}

func TestSpool(t *testing.T) {
	for _, size := range []int{0, 100, 1 << 10, 300 << 10} {
		body := bytes.Repeat([]byte{'z'}, size)
		sp, err := spool(bytes.NewReader(body), 1<<10, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if sp.size != int64(size) || (size >= 1<<10) != (sp.file != nil) {
			t.Errorf("%d bytes: size %d, in a file %v", size, sp.size, sp.file != nil)
		}
		for round := 0; round < 2; round++ { // read, rewind, read again (a retry on a new connection)
			got, _ := io.ReadAll(sp)
			if !bytes.Equal(got, body) {
				t.Errorf("%d bytes, round %d: read %d", size, round, len(got))
			}
			sp.rewind()
		}
		sp.Close()
	}
}
