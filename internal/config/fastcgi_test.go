package config

import (
	"strings"
	"testing"
)

func TestFastCGIDirectives(t *testing.T) {
	conf := `events {}
http {
    fastcgi_param OUTER 1;
    fastcgi_read_timeout 5s;
    server {
        listen 8080;
        location ~ \.php$ {
            fastcgi_pass 127.0.0.1:9000;
            fastcgi_index index.php;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            include fastcgi_params;
        }
        location /sock/ {
            fastcgi_pass unix:/run/php/fpm.sock;
            fastcgi_split_path_info ^(.+\.php)(/.*)$;
        }
    }
}`
	cfg, err := load(t, conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	locs := cfg.HTTP.Servers[0].Locations
	php, sock := locs[0].Conf, locs[1].Conf
	if php.Handler != HandlerFastCGI || php.FastCGI.Network != "tcp" || php.FastCGI.Addr != "127.0.0.1:9000" {
		t.Errorf("php location: handler %v pass %+v", php.Handler, php.FastCGI)
	}
	// an array directive set at an inner level replaces the outer list (nginx's inheritance)
	var names []string
	for _, p := range php.FastCGIParams.V {
		names = append(names, p.Name)
	}
	if names[0] != "SCRIPT_FILENAME" || strings.Contains(strings.Join(names, " "), "OUTER") || len(names) != 21 {
		t.Errorf("params %v", names)
	}
	for _, p := range php.FastCGIParams.V {
		if p.Name == "HTTPS" && !p.IfNotEmpty {
			t.Error("HTTPS from fastcgi_params lost if_not_empty")
		}
	}
	if len(sock.FastCGIParams.V) != 1 || sock.FastCGIParams.V[0].Name != "OUTER" {
		t.Errorf("a location without fastcgi_param inherits the outer list: %v", sock.FastCGIParams.V)
	}
	if sock.FastCGI.Network != "unix" || sock.FastCGI.Addr != "/run/php/fpm.sock" || sock.FastCGISplitPathInfo.V == nil {
		t.Errorf("sock location: %+v", sock.FastCGI)
	}
	if sock.FastCGIReadTimeout.V.Seconds() != 5 {
		t.Errorf("fastcgi_read_timeout not inherited: %v", sock.FastCGIReadTimeout)
	}
}

func TestFastCGIAndStaticErrors(t *testing.T) {
	tests := []struct{ conf, want string }{
		{`location / { fastcgi_pass 127.0.0.1; }`, "no port in upstream"},
		{`location / { fastcgi_pass http://127.0.0.1:9000; }`, "no URL scheme"},
		{`location / { fastcgi_pass 127.0.0.1:9000; proxy_pass http://a:1; }`, "duplicate"},
		{`location / { fastcgi_split_path_info ^(.+)$; }`, "two captures"},
		{`location / { fastcgi_param A b c; }`, "invalid parameter"},
		{`location / { try_files $uri =abc; }`, "invalid code"},
		{`location / { root /a; alias /b/; }`, "\"root\" directive was specified earlier"},
		{`location @x { alias /b/; }`, "named location"},
		{`location / { expires sometimes; }`, "invalid value"},
		{`location / { disable_symlinks maybe; }`, "invalid value"},
	}
	for _, tt := range tests {
		_, err := load(t, "events {}\nhttp { server { listen 8080; "+tt.conf+" } }", nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.conf, err, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "sluice.conf:2") {
			t.Errorf("%s: error without file:line: %v", tt.conf, err)
		}
	}
}

func TestAliasOffBySlashWarning(t *testing.T) {
	cfg, err := load(t, "events {}\nhttp { server { listen 8080;\nlocation /img { alias /data/images/; }\nlocation /ok/ { alias /data/ok/; } } }", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), "sluice.conf:3") || !strings.Contains(cfg.Warnings[0].Error(), "/img../") {
		t.Errorf("warnings %v", cfg.Warnings)
	}
}

func TestExpiresValues(t *testing.T) {
	for _, tt := range []struct {
		arg  string
		want Expires
	}{
		{"off", Expires{Off: true}},
		{"epoch", Expires{Epoch: true}},
		{"max", Expires{Max: true}},
		{"1h", Expires{D: 3600e9}},
		{"-1", Expires{D: -1e9}},
		{"modified 30d", Expires{Modified: true, D: 30 * 24 * 3600e9}},
		{"@10h30m", Expires{Daily: true, D: 10*3600e9 + 30*60e9}},
	} {
		cfg, err := load(t, "events {}\nhttp { server { listen 8080; location / { expires "+tt.arg+"; } } }", nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.arg, err)
		}
		if got := cfg.HTTP.Servers[0].Locations[0].Conf.Expires.V; got != tt.want {
			t.Errorf("expires %s = %+v, want %+v", tt.arg, got, tt.want)
		}
	}
}

// TestHealthCheckProtocol: a health_check probes in the protocol its group is proxied with: TLS for https://, and
// a group used by fastcgi_pass, whose HTTP probes would fail against every peer, is refused.
func TestHealthCheckProtocol(t *testing.T) {
	const ups = "events {}\nhttp { upstream php { server 127.0.0.1:9000; health_check; }\nupstream web { server 127.0.0.1:8443; health_check; }\nserver { listen 8080;\n"
	_, err := load(t, ups+"location ~ \\.php$ { fastcgi_pass php; } } }", nil)
	if err == nil || !strings.Contains(err.Error(), "sluice.conf:5") || !strings.Contains(err.Error(), "health_check") {
		t.Errorf("fastcgi_pass to a group with a health_check: error %v, want one at sluice.conf:5 naming health_check", err)
	}
	cfg, err := load(t, ups+"location / { proxy_pass https://web; } location /plain { proxy_pass http://php; } } }", nil)
	if err != nil {
		t.Fatal(err)
	}
	if hc := cfg.HTTP.Upstreams["web"].HealthCheck; !hc.TLS {
		t.Error("a group proxied with https:// is probed without TLS")
	}
	if hc := cfg.HTTP.Upstreams["php"].HealthCheck; hc.TLS {
		t.Error("a group proxied with http:// is probed with TLS")
	}
	// scheme= decides, whatever proxy_pass says
	cfg, err = load(t, "events {}\nhttp { upstream web { server 127.0.0.1:8443; health_check port=8080 scheme=http; }\nserver { listen 8080;\nlocation / { proxy_pass https://web; } } }", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Upstreams["web"].HealthCheck.TLS {
		t.Error("scheme=http probes with TLS")
	}
	if _, err := load(t, "events {}\nhttp { upstream web { server 127.0.0.1:8443; health_check scheme=ftp; } }", nil); err == nil || !strings.Contains(err.Error(), "scheme=ftp") {
		t.Errorf("scheme=ftp: error %v", err)
	}
}

// TestExpiresVariable: `expires $expires` (h5bp, from a map on $sent_http_content_type) is read per response.
func TestExpiresVariable(t *testing.T) {
	cfg, err := load(t, "events {}\nhttp { map $sent_http_content_type $e { default 1M; } server { listen 8080; location / { expires modified $e; } } }", nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.HTTP.Servers[0].Locations[0].Conf.Expires.V; e.Value == nil || e.Value.String() != "$e" || !e.Modified {
		t.Errorf("expires = %+v", e)
	}
	for _, bad := range []string{"modified @1h", "@24h", "1x"} {
		if _, err := load(t, "events {}\nhttp { server { listen 8080; location / { expires "+bad+"; } } }", nil); err == nil || !strings.Contains(err.Error(), "sluice.conf:2") {
			t.Errorf("expires %s: %v", bad, err)
		}
	}
}
