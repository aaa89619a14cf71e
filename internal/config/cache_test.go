package config

import (
	"strings"
	"testing"
	"time"
)

// TestCacheDirectives: proxy_cache_path and proxy_cache* are read, inherited, and checked as nginx checks them.
func TestCacheDirectives(t *testing.T) {
	conf := `events {}
http {
    proxy_cache_path /tmp/sluice-cfg-cache levels=1:2 keys_zone=one:10m inactive=2m max_size=1g use_temp_path=off;
    proxy_cache one;
    proxy_cache_valid 5m;
    proxy_cache_valid 404 any 10s;
    server {
        listen 8080;
        location / {
            proxy_pass http://127.0.0.1:9000;
            proxy_cache_bypass $arg_nocache $cookie_x;
            proxy_cache_use_stale error http_503 updating;
            proxy_cache_lock on;
        }
        location /off/ {
            proxy_pass http://127.0.0.1:9000;
            proxy_cache off;
        }
    }
}`
	cfg, err := load(t, conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp := cfg.HTTP.CachePaths[0]
	if cp.Path != "/tmp/sluice-cfg-cache" || cp.Name != "one" || cp.Size != 10<<20 || cp.Inactive != 2*time.Minute || cp.MaxSize != 1<<30 || len(cp.Levels) != 2 {
		t.Errorf("proxy_cache_path: %+v", cp)
	}
	root, off := cfg.HTTP.Servers[0].Locations[0].Conf, cfg.HTTP.Servers[0].Locations[1].Conf
	if root.ProxyCache.Zone.V.Name != "one" || off.ProxyCache.Zone.V.Name != "" {
		t.Errorf("proxy_cache: %q, %q", root.ProxyCache.Zone.V.Name, off.ProxyCache.Zone.V.Name)
	}
	v := root.ProxyCache.Valid.V
	if len(v) != 2 || len(v[0].Codes) != 3 || v[0].Codes[2] != 302 || v[0].D != 5*time.Minute || !v[1].Any {
		t.Errorf("proxy_cache_valid: %+v", v)
	}
	us := root.ProxyCache.UseStale.V
	if !us.Error || !us.Updating || us.Timeout || len(us.Status) != 1 || !root.ProxyCache.Lock.V || len(root.ProxyCache.Bypass.V) != 2 {
		t.Errorf("use_stale %+v lock %v bypass %d", us, root.ProxyCache.Lock.V, len(root.ProxyCache.Bypass.V))
	}
	if k := root.ProxyCache.Key.V; k == nil || k.String() != "$scheme$proxy_host$request_uri" {
		t.Errorf("default proxy_cache_key: %v", k)
	}
}

func TestCacheErrors(t *testing.T) {
	for _, c := range []struct{ conf, want string }{
		{`proxy_cache_path /tmp/a keys_zone=a:1m;
    proxy_cache_path /tmp/a keys_zone=b:1m;`, `the same path name "/tmp/a" is used in ` + "CONF:3 and in CONF:4"},
		{`proxy_cache_path /tmp/a keys_zone=a:1m;
    proxy_cache_path /tmp/b keys_zone=a:1m;`, `duplicate zone "a"`},
		{`proxy_cache_path /tmp/a levels=1;`, `must have "keys_zone" parameter`},
		{`proxy_cache_path /tmp/a keys_zone=a:1m levels=3;`, `invalid "levels"`},
		{`proxy_cache nope;`, `"proxy_cache" zone "nope" is unknown`},
		{`proxy_cache_use_stale off error;`, `"off" cannot be combined`},
		{`proxy_cache_use_stale non_idempotent;`, `invalid value "non_idempotent"`},
		{`proxy_cache_valid 200 soon;`, `invalid time value`},
		// one space of zone names for both modules, each zone of the module that declared it (nginx's wording)
		{`fastcgi_cache_path /tmp/a keys_zone=a:1m;
    proxy_cache_path /tmp/b keys_zone=a:1m;`, `the shared memory zone "a" is already declared for a different use`},
		{`proxy_cache_path /tmp/a keys_zone=a:1m;
    fastcgi_cache a;`, `the shared memory zone "a" is already declared for a different use`},
		{`fastcgi_cache nope;`, `"fastcgi_cache" zone "nope" is unknown`},
		{`fastcgi_cache_use_stale updating off;`, `"off" cannot be combined`},
	} {
		conf := "events {}\nhttp {\n    " + c.conf + "\n    server { listen 8080; location / { proxy_pass http://127.0.0.1:9000; } }\n}"
		_, err := load(t, conf, nil)
		if err == nil {
			t.Errorf("%s: loaded", c.conf)
			continue
		}
		msg := err.Error()
		if i := strings.Index(c.want, "CONF"); i >= 0 {
			// file:line of both lines, as nginx names them
			if !strings.Contains(msg, ":3 and in ") || !strings.Contains(msg, ":4") {
				t.Errorf("%s: %v, want both lines", c.conf, err)
			}
			continue
		}
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s: %v, want %q", c.conf, err, c.want)
		}
	}
}

// TestFastCGICacheKeyWarning: fastcgi_cache without fastcgi_cache_key loads with nginx 1.22's warning, once, at
// the fastcgi_cache line, where a location passes to FastCGI; the location then caches under the empty key.
func TestFastCGICacheKeyWarning(t *testing.T) {
	conf := `events {}
http {
    fastcgi_cache_path /tmp/sluice-cfg-fcache keys_zone=w:1m;
    fastcgi_cache w;
    server {
        listen 8080;
        location /a { fastcgi_pass 127.0.0.1:9000; }
        location /b { fastcgi_pass 127.0.0.1:9000; }
        location /c { fastcgi_pass 127.0.0.1:9000; fastcgi_cache_key $uri; }
        location /d { proxy_pass http://127.0.0.1:9000; }
    }
}`
	cfg, err := load(t, conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].Line != 4 || !strings.Contains(cfg.Warnings[0].Msg, `no "fastcgi_cache_key" for "fastcgi_cache"`) {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	locs := cfg.HTTP.Servers[0].Locations
	if c := locs[0].Conf.FastCGICacheConf; c == nil || c.Zone != "w" || c.Key.Eval(nil) != "" {
		t.Errorf("/a: %+v", c)
	}
	if c := locs[2].Conf.FastCGICacheConf; c == nil || c.Key.String() != "$uri" || c.ConvertHead {
		t.Errorf("/c: %+v", c)
	}
	if locs[3].Conf.ProxyCacheConf != nil {
		t.Errorf("/d: proxy_cache without proxy_cache")
	}
}
