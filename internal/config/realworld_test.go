package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRealWorldConfigs loads configurations in the shapes popular applications publish for nginx
// (testdata/realworld: each reconstructs the directives and parameters of the published one; the file's head
// says which). Every one must load, as it does under `nginx -t` (Debian's nginx 1.22), and a property or two of
// the result is checked where it is cheap.
func TestRealWorldConfigs(t *testing.T) {
	tests := []struct {
		file string
		// pending: the configuration needs a directive another branch brings; while the error names it, the
		// case is skipped.
		pending string
		check   func(t *testing.T, c *Config)
	}{
		{file: "wordpress.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 0, `~ \.php$`, HandlerFastCGI)
			if u := c.HTTP.Upstreams["php"]; u == nil || len(u.Servers) != 2 {
				t.Errorf("upstream php = %+v", u)
			}
		}},
		{file: "wordpress-fastcgi-cache.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 0, `~ \.php$`, HandlerFastCGI)
			if ops := c.HTTP.Servers[0].Ops; len(ops) < 3 || ops[2].Cond == nil || ops[2].Cond.Op != "!=" || ops[2].Cond.Value != "" {
				t.Errorf(`($query_string != "") not read as a comparison with the empty string`)
			}
		}},
		{file: "laravel.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 0, `~ ^/index\.php(/|$)`, HandlerFastCGI)
		}},
		{file: "symfony.conf", check: func(t *testing.T, c *Config) {
			if l := wantHandler(t, c, 0, `~ ^/index\.php(/|$)`, HandlerFastCGI); l != nil && !l.Internal {
				t.Error("the front controller's location is not internal")
			}
		}},
		{file: "drupal.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 0, `~ \.php$|^/update.php`, HandlerFastCGI)
			wantHandler(t, c, 0, "@rewrite", HandlerNone)
		}},
		{file: "nextcloud.conf", check: func(t *testing.T, c *Config) {
			if l := wantHandler(t, c, 1, "^~ /.well-known", HandlerNone); l != nil && len(l.Children) != 4 {
				t.Errorf("/.well-known has %d nested locations, want 4", len(l.Children))
			}
			wantHandler(t, c, 1, `~ \.php(?:$|/)`, HandlerFastCGI)
			if ty := c.HTTP.Servers[1].Loc.MimeTypes(); ty["mjs"] != "text/javascript" || ty["css"] != "text/css" {
				t.Errorf("server types: mjs %q, css %q (the types block adds to the included mime.types)", ty["mjs"], ty["css"])
			}
		}},
		{file: "mastodon.conf", check: func(t *testing.T, c *Config) {
			if l := wantHandler(t, c, 1, "/", HandlerProxy); l != nil && len(l.Children) != 3 {
				t.Errorf("/ has %d nested locations, want 3", len(l.Children))
			}
			wantHandler(t, c, 1, "^~ /api/v1/streaming", HandlerProxy)
		}},
		{file: "synapse.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 0, "~ ^(/_matrix|/_synapse/client)", HandlerProxy)
			found := false
			for _, l := range c.HTTP.Servers[0].Listens {
				found = found || strings.HasSuffix(l.Addr, ":8448") && l.SSL && l.DefaultServer
			}
			if !found {
				t.Error("no default ssl listen on 8448")
			}
		}},
		{file: "gitea.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 1, "~ ^/(gitea|v2)($|/)", HandlerProxy)
		}},
		{file: "jellyfin.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 1, "/socket", HandlerProxy)
			wantHandler(t, c, 1, "= /web/", HandlerProxy)
		}},
		{file: "homeassistant.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 1, "/", HandlerProxy)
		}},
		{file: "grafana-subpath.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 0, "/grafana/api/live/", HandlerProxy)
		}},
		{file: "jupyter.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 1, "/", HandlerProxy)
		}},
		{file: "django-gunicorn.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 1, "@proxy_to_app", HandlerProxy)
			if u := c.HTTP.Upstreams["app_server"]; u == nil || len(u.Servers) != 1 {
				t.Errorf("upstream app_server = %+v", u)
			}
		}},
		{file: "socketio.conf", check: func(t *testing.T, c *Config) {
			if u := c.HTTP.Upstreams["nodes"]; u == nil || u.Policy != "hash" {
				t.Errorf("upstream nodes = %+v", u)
			}
		}},
		{file: "certbot-webroot.conf", check: func(t *testing.T, c *Config) {
			wantHandler(t, c, 0, "^~ /.well-known/acme-challenge/", HandlerNone)
			wantHandler(t, c, 2, "= /.well-known/acme-challenge/", HandlerNone)
		}},
		{file: "mozilla-intermediate.conf"},
		{file: "mozilla-modern.conf"},
		{file: "h5bp.conf", check: func(t *testing.T, c *Config) {
			if f := c.HTTP.Servers[0].Loc.Charset; f == nil || f.Charset.Text != "utf-8" {
				t.Errorf("charset utf-8 not read: %+v", f)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".conf"), func(t *testing.T) {
			dir, _ := filepath.Abs("testdata/realworld")
			c, err := Load(filepath.Join(dir, tt.file), Options{Prefix: t.TempDir()})
			if err != nil && tt.pending != "" && strings.Contains(err.Error(), tt.pending) {
				t.Skipf("needs %s: %v", tt.pending, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// wantHandler finds the location named name (as Location.Name writes it, nested ones too) in the i-th server
// and checks its content handler.
func wantHandler(t *testing.T, c *Config, i int, name string, h Handler) *Location {
	t.Helper()
	var find func(ls []*Location) *Location
	find = func(ls []*Location) *Location {
		for _, l := range ls {
			if l.Name() == name {
				return l
			}
			if f := find(l.Children); f != nil {
				return f
			}
		}
		return nil
	}
	l := find(c.HTTP.Servers[i].Locations)
	if l == nil {
		t.Errorf("server %d has no location %q", i, name)
		return nil
	}
	if l.Conf.Handler != h {
		t.Errorf("location %q: handler %d, want %d", name, l.Conf.Handler, h)
	}
	return l
}
