package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/h1"
)

// write creates files under a temporary prefix and returns the path of conf/sluice.conf.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "conf", "sluice.conf")
}

func load(t *testing.T, conf string, extra map[string]string) (*Config, error) {
	t.Helper()
	files := map[string]string{"conf/sluice.conf": conf}
	for k, v := range extra {
		files[k] = v
	}
	path := write(t, files)
	return Load(path, Options{Prefix: filepath.Dir(filepath.Dir(path))})
}

const tutorial = `events {}
http {
    include mime.types;
    upstream tomcat { server 127.0.0.1:8080; }
    server {
        listen 443 ssl;
        server_name abc.com;
        ssl_certificate     cert.pem;
        ssl_certificate_key key.pem;
        root html;
        location /wss
        {
             proxy_pass http://127.0.0.1:8888;
             proxy_http_version 1.1;
             proxy_set_header Upgrade $http_upgrade;
             proxy_set_header Connection "upgrade";
            proxy_set_header X-Real-IP $remote_addr;
        }
        location /Tomcat
        {
             proxy_pass http://tomcat;
             proxy_http_version 1.1;
            proxy_set_header X-Real-IP $remote_addr;
        }

        location ~ \.php$ {
            root html;
            fastcgi_pass 127.0.0.1:9000;
            fastcgi_index index.php;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            include fastcgi_params;
        }
    }
}
`

func TestTutorialLoads(t *testing.T) {
	cfg, err := load(t, tutorial, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.HTTP.Servers[0]
	if s.Listens[0].Addr != "0.0.0.0:443" || !s.Listens[0].SSL {
		t.Errorf("listen = %+v", s.Listens[0])
	}
	if got := s.Srv.SSL.Certificates[0]; !strings.HasSuffix(got.Cert, "conf/cert.pem") || !strings.HasSuffix(got.Key, "conf/key.pem") {
		t.Errorf("certificate paths resolve against the config directory: %+v", got)
	}
	m, ok := s.Matcher.Match("/Tomcat/x")
	if !ok || m.Loc.Value.Conf.Proxy.Upstream == nil || m.Loc.Value.Conf.Proxy.Upstream.Name != "tomcat" {
		t.Fatalf("/Tomcat/x did not reach the tomcat upstream")
	}
	if m, ok := s.Matcher.Match("/index.php"); !ok || m.Loc.Value.Conf.Handler != HandlerFastCGI || m.Loc.Value.Conf.FastCGI.Addr != "127.0.0.1:9000" {
		t.Errorf("/index.php did not reach fastcgi_pass: %v %+v", ok, m.Loc)
	}
	if types := cfg.HTTP.Loc.Types.V; types["html"] != "text/html" {
		t.Errorf("built-in mime.types not used: html -> %q", types["html"])
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, conf string
		want       []string // substrings of the error
	}{
		{"misspelt directive", "http {\n server {\n  location / {\n   proxy_set_heder X 1;\n  }\n }\n}\n",
			[]string{`unknown directive "proxy_set_heder"`, "conf/sluice.conf:4", `did you mean "proxy_set_header"?`}},
		{"wrong context", "http {\n proxy_pass http://x;\n}\n", []string{`"proxy_pass" directive is not allowed here`, "sluice.conf:2", "location"}},
		{"argument count", "http {\n server {\n  listen;\n }\n}\n", []string{`invalid number of arguments in "listen" directive`, "sluice.conf:3"}},
		{"unknown variable", "http {\n server {\n  location / { return 200 $nosuch; }\n }\n}\n", []string{`unknown "nosuch" variable`, "sluice.conf:3"}},
		{"bad listen", "http {\n server {\n  listen 99999;\n }\n}\n", []string{"invalid port", "sluice.conf:3"}},
		{"ssl without certificate", "http {\n server {\n  listen 8443 ssl;\n }\n}\n", []string{`no "ssl_certificate" is defined`, "sluice.conf:3"}},
		{"unbalanced braces", "http {\n server {\n}\n", []string{"sluice.conf"}},
		{"duplicate location", "http {\n server {\n  location /a {}\n  location /a {}\n }\n}\n", []string{"duplicate location", "sluice.conf:4"}},
		{"uri in regex location", "http {\n server {\n  location ~ x { proxy_pass http://127.0.0.1:1/y; }\n }\n}\n", []string{"cannot have URI part", "sluice.conf:3"}},
		{"bad on/off", "http {\n proxy_buffering maybe;\n}\n", []string{`it must be "on" or "off"`, "sluice.conf:2"}},
		{"bad time", "http {\n proxy_read_timeout 5x;\n}\n", []string{"invalid value", "sluice.conf:2"}},
		{"resolve without resolver", "http {\n upstream u {\n  server app.test:80 resolve;\n }\n}\n", []string{"no resolver defined to resolve app.test:80", "sluice.conf:3"}},
		{"resolver ipv6=maybe", "http {\n resolver 127.0.0.1 ipv6=maybe;\n}\n", []string{`invalid parameter "ipv6=maybe"`, "sluice.conf:2"}},
		{"resolver with both families off", "http {\n resolver 127.0.0.1 ipv4=off ipv6=off;\n}\n", []string{`"ipv4" and "ipv6" cannot both be "off"`, "sluice.conf:2"}},
		{"backup with hash", "http {\n upstream u {\n  hash $uri;\n  server 127.0.0.1:1 backup;\n }\n}\n", []string{"backup", "sluice.conf:4"}},
		{"bad health_check", "http {\n upstream u {\n  server 127.0.0.1:1;\n  health_check interval=0;\n }\n}\n", []string{"invalid parameter \"interval=0\"", "sluice.conf:4"}},
		{"bad next_upstream", "http {\n server {\n  proxy_next_upstream error http_418;\n }\n}\n", []string{"http_418", "sluice.conf:3"}},
		{"unknown upstream host", "http {\n server {\n  location / { proxy_pass http://no-such-host.invalid; }\n }\n}\n", []string{"host not found", "sluice.conf:3"}},
		{"unknown log format", "http {\n access_log logs/a.log nosuch;\n server { }\n}\n", []string{`unknown log format "nosuch"`}},
		{"bad cors origin", "http {\n server {\n  cors_origins app.example.org;\n }\n}\n", []string{"invalid origin", "scheme://host", "sluice.conf:3"}},
		{"empty sub_filter search", "http {\n sub_filter \"\" x;\n}\n", []string{"empty search pattern", "sluice.conf:2"}},
		{"sub_filter in if", "http {\n server {\n  if ($uri) { sub_filter a b; }\n }\n}\n", []string{`"sub_filter" directive is not allowed here`, "sluice.conf:3"}},
		{"misplaced cors wildcard", "http {\n server {\n  cors_origins https://a*.example.org;\n }\n}\n", []string{"wildcard", "sluice.conf:3"}},
		{"bad allow", "http {\n server {\n  allow 10.0.0.300;\n }\n}\n", []string{`invalid parameter "10.0.0.300"`, "sluice.conf:3"}},
		{"realip in location", "http {\n server {\n  location / { set_real_ip_from 10.0.0.0/8; }\n }\n}\n", []string{"not allowed here", "sluice.conf:3"}},
		{"auth_basic without file", "http {\n server {\n  location / { auth_basic x; }\n }\n}\n", []string{"auth_basic without auth_basic_user_file", "sluice.conf:3"}},
		{"fastcgi_store", "http {\n server {\n  location / { fastcgi_store on; }\n }\n}\n", []string{"fastcgi_store is not supported", "fastcgi_cache", "sluice.conf:3"}},
		{"uwsgi_store_access", "http {\n uwsgi_store_access user:rw;\n}\n", []string{"uwsgi_store is not supported", "sluice.conf:2"}},
		{"uwsgi_bind transparent", "http {\n uwsgi_bind 127.0.0.2 transparent;\n}\n", []string{`"uwsgi_bind ... transparent" is not supported`, "sluice.conf:2"}},
		{"bad fastcgi_bind", "http {\n fastcgi_bind localhost;\n}\n", []string{`invalid address "localhost"`, "sluice.conf:2"}},
		{"bad fastcgi_limit_rate", "http {\n fastcgi_limit_rate 1q;\n}\n", []string{`"fastcgi_limit_rate" directive invalid value "1q"`, "sluice.conf:2"}},
		{"missing proxy_ssl_crl", "http {\n proxy_ssl_crl /nonexistent/x.crl;\n}\n", []string{`"proxy_ssl_crl" directive`, "x.crl", "sluice.conf:2"}},
		{"bad grpc_ssl_verify_depth", "http {\n grpc_ssl_verify_depth -1;\n}\n", []string{`"grpc_ssl_verify_depth" directive invalid number`, "sluice.conf:2"}},
		{"ssl_stapling_responder", "http {\n server {\n  ssl_stapling_responder http://ocsp.test/;\n }\n}\n", []string{`"ssl_stapling_responder" is not supported`, "ssl_stapling_file", "sluice.conf:3"}},
		{"ssl_ocsp on", "http {\n ssl_ocsp on;\n}\n", []string{`"ssl_ocsp on" is not supported`, "ssl_crl", "sluice.conf:2"}},
		{"bad ssl_ocsp", "http {\n ssl_ocsp maybe;\n}\n", []string{`invalid value "maybe"`, "sluice.conf:2"}},
		{"client_body_in_file_only clean", "http {\n client_body_in_file_only clean;\n}\n", []string{`"client_body_in_file_only clean" is not supported`, "$request_body_file", "sluice.conf:2"}},
		{"missing ssl_stapling_file", "http {\n ssl_stapling_file /nonexistent/r.der;\n}\n", []string{`"ssl_stapling_file" directive`, "r.der", "sluice.conf:2"}},
		{"bad uwsgi_next_upstream_tries", "http {\n uwsgi_next_upstream_tries x;\n}\n", []string{"uwsgi_next_upstream_tries", "sluice.conf:2"}},
		{"proxy_bind transparent", "http {\n proxy_bind 127.0.0.2 transparent;\n}\n", []string{`transparent" is not supported`, "CAP_NET_ADMIN", "sluice.conf:2"}},
		{"proxy_bind host name", "http {\n proxy_bind localhost;\n}\n", []string{`invalid address "localhost"`, "sluice.conf:2"}},
		{"proxy_cookie_flags without flags", "http {\n proxy_cookie_flags one;\n}\n", []string{`invalid parameter "one"`, "sluice.conf:2"}},
		{"proxy_cookie_flags unknown flag", "http {\n proxy_cookie_flags one secure bogus;\n}\n", []string{`invalid parameter "bogus"`, "sluice.conf:2"}},
		{"proxy_cookie_flags after off", "http {\n proxy_cookie_flags off;\n proxy_cookie_flags a secure;\n}\n", []string{"is duplicate", "sluice.conf:3"}},
		{"proxy_cookie_flags too many", "http {\n proxy_cookie_flags a secure httponly samesite=lax nosecure;\n}\n", []string{"invalid number of arguments", "sluice.conf:2"}},
		{"proxy_limit_rate", "http {\n proxy_limit_rate 1.5k;\n}\n", []string{"invalid value", "sluice.conf:2"}},
		{"temp path not makeable", "http {\n proxy_temp_path /proc/sluice-no/tmp;\n}\n", []string{`mkdir() "/proc/sluice-no/tmp" failed`, "sluice.conf:2"}},
		{"one proxy_buffer", "http {\n proxy_buffers 1 4k;\n}\n", []string{`there must be at least 2 "proxy_buffers"`, "sluice.conf:2"}},
		{"bad fastcgi_buffers", "http {\n fastcgi_buffers 4 0;\n}\n", []string{`"fastcgi_buffers" directive invalid value`, "sluice.conf:2"}},
		{"bad max_temp_file_size", "http {\n uwsgi_max_temp_file_size abc;\n}\n", []string{`"uwsgi_max_temp_file_size" directive invalid value`, "sluice.conf:2"}},
		{"proxy_method with a space", "http {\n proxy_method \"GET X\";\n}\n", []string{`invalid method "GET X"`, "sluice.conf:2"}},
		{"ignore_invalid_headers off", "http {\n ignore_invalid_headers off;\n}\n", []string{"not supported", "sluice.conf:2"}},
		{"missing map include", "http {\n map $uri $m {\n  default a;\n  include nosuch-map.conf;\n }\n}\n", []string{"nosuch-map.conf", "sluice.conf:4"}},
		{"missing htpasswd", "http {\n server {\n  auth_basic_user_file nosuch.htpasswd;\n }\n}\n", []string{"nosuch.htpasswd", "sluice.conf:3"}},
		{"unknown limit zone", "http {\n server {\n  location / { limit_req zone=nope; }\n }\n}\n", []string{`unknown zone "nope"`, "sluice.conf:3"}},
		{"limit_req_zone without rate", "http {\n limit_req_zone $binary_remote_addr zone=one:1m;\n}\n", []string{"invalid number of arguments", "sluice.conf:2"}},
		{"bad rate", "http {\n limit_req_zone $binary_remote_addr zone=one:1m rate=5/s;\n}\n", []string{"invalid rate", "sluice.conf:2"}},
		{"worker_processes 0", "worker_processes 0;\n", []string{`invalid value "0" in "worker_processes" directive`, "sluice.conf:1"}},
		{"worker_processes word", "worker_processes many;\n", []string{`invalid value "many"`, "at least 1, or auto", "sluice.conf:1"}},
		{"duplicate zone", "http {\n limit_conn_zone $binary_remote_addr zone=a:1m;\n limit_conn_zone $binary_remote_addr zone=a:1m;\n}\n", []string{`duplicate zone "a"`, "sluice.conf:3"}},
		// limit_except: nginx 1.22 refuses these too ("not allowed here", "invalid method", "is duplicate")
		{"limit_except unknown method", "http {\n server {\n  location / { limit_except GET TRACE { deny all; } }\n }\n}\n", []string{`invalid method "TRACE"`, "sluice.conf:3"}},
		{"limit_except twice", "http {\n server {\n  location / {\n   limit_except GET { deny all; }\n   limit_except POST { deny all; }\n  }\n }\n}\n", []string{`"limit_except" directive is duplicate`, "sluice.conf:5"}},
		{"limit_except in server", "http {\n server {\n  limit_except GET { deny all; }\n }\n}\n", []string{`"limit_except" directive is not allowed here`, "sluice.conf:3"}},
		{"return in limit_except", "http {\n server {\n  location / {\n   limit_except GET {\n    return 403;\n   }\n  }\n }\n}\n", []string{`"return" directive is not allowed here`, "sluice.conf:5"}},
		{"satisfy in limit_except", "http {\n server {\n  location / { limit_except GET {\n   satisfy any;\n  } }\n }\n}\n", []string{`"satisfy" directive is not allowed here`, "sluice.conf:4"}},
		// nginx takes these in limit_except; sluice refuses them rather than ignore them
		{"proxy_pass in limit_except", "http {\n server {\n  location / { limit_except GET {\n   proxy_pass http://127.0.0.1:1;\n  } }\n }\n}\n", []string{`"proxy_pass" inside "limit_except" is not supported`, "sluice.conf:4"}},
		{"access_log in limit_except", "http {\n server {\n  location / { limit_except GET {\n   access_log off;\n  } }\n }\n}\n", []string{`"access_log" inside "limit_except" is not supported`, "sluice.conf:4"}},
		{"limit_except auth_basic without file", "http {\n server {\n  location / { limit_except GET { auth_basic x; } }\n }\n}\n", []string{"auth_basic without auth_basic_user_file", "sluice.conf:3"}},
		// stream: mistakes are refused with file:line, with nginx's messages where nginx has one
		{"udp ssl", "stream {\n server {\n  listen 53 udp ssl;\n  proxy_pass 127.0.0.1:5353;\n }\n}\n", []string{`"listen" directive "ssl" parameter is incompatible with "udp"`, "sluice.conf:3"}},
		{"udp proxy_protocol", "stream {\n server {\n  listen 53 udp proxy_protocol;\n  proxy_pass 127.0.0.1:5353;\n }\n}\n", []string{`"listen" directive "proxy_protocol" parameter is incompatible with "udp"`, "sluice.conf:3"}},
		{"udp backlog", "stream {\n server {\n  listen 53 udp backlog=10;\n  proxy_pass 127.0.0.1:5353;\n }\n}\n", []string{`"backlog" parameter is incompatible with "udp"`, "sluice.conf:3"}},
		{"udp so_keepalive", "stream {\n server {\n  listen 53 udp so_keepalive=off;\n  proxy_pass 127.0.0.1:5353;\n }\n}\n", []string{`"so_keepalive" parameter is incompatible with "udp"`, "sluice.conf:3"}},
		{"udp ssl_preread", "stream {\n ssl_preread on;\n server {\n  listen 53 udp;\n  proxy_pass 127.0.0.1:5353;\n }\n}\n", []string{`"ssl_preread" is not supported with "listen … udp"`, "sluice.conf:4"}},
		{"udp in http", "http {\n server {\n  listen 53 udp;\n }\n}\n", []string{`invalid parameter "udp"`, "sluice.conf:3"}},
		{"stream limit_conn unknown zone", "stream {\n server {\n  listen 53;\n  limit_conn a 1;\n  proxy_pass 127.0.0.1:5353;\n }\n}\n", []string{`limit_conn: unknown zone "a"`, "sluice.conf:2"}},
		{"stream zone named as http's", "http {\n limit_conn_zone $binary_remote_addr zone=a:1m;\n}\nstream {\n limit_conn_zone $binary_remote_addr zone=a:1m;\n}\n", []string{`duplicate zone "a"`, "sluice.conf:5"}},
		{"http2 in stream", "stream {\n server {\n  listen 53 http2;\n  proxy_pass 127.0.0.1:5353;\n }\n}\n", []string{`invalid parameter "http2"`, "sluice.conf:3"}},
		{"no port in upstream", "stream {\n upstream u {\n  server 127.0.0.1;\n }\n}\n", []string{`no port in upstream "127.0.0.1"`, "sluice.conf:3"}},
		{"no port in proxy_pass", "stream {\n server {\n  listen 1234;\n  proxy_pass 127.0.0.1;\n }\n}\n", []string{`no port in upstream "127.0.0.1"`, "sluice.conf:4"}},
		{"url in proxy_pass", "stream {\n server {\n  listen 1234;\n  proxy_pass http://127.0.0.1:80;\n }\n}\n", []string{`invalid URL prefix`, "sluice.conf:4"}},
		{"no proxy_pass", "stream {\n server {\n  listen 1234;\n }\n}\n", []string{`no "proxy_pass" is defined for server`, "sluice.conf:2"}},
		{"no format", "stream {\n server {\n  listen 1234;\n  proxy_pass 127.0.0.1:1;\n  access_log logs/s.log;\n }\n}\n", []string{"log format is not specified", "sluice.conf:5"}},
		{"unknown format", "stream {\n server {\n  listen 1234;\n  proxy_pass 127.0.0.1:1;\n  access_log logs/s.log combined;\n }\n}\n", []string{`unknown log format "combined"`, "sluice.conf:2"}},
		{"session cache without size", "http {\n ssl_session_cache shared:SSL;\n}\n", []string{`invalid session cache "shared:SSL"`, "sluice.conf:2"}},
		{"session cache too small", "http {\n ssl_session_cache builtin shared:SSL:1k;\n}\n", []string{`session cache "shared:SSL:1k" is too small`, "sluice.conf:2"}},
		{"grpc_ssl_name with a variable", "http {\n server {\n  location / {\n   grpc_pass grpcs://127.0.0.1:1;\n   grpc_ssl_name $host;\n  }\n }\n}\n", []string{`variables in "grpc_ssl_name" are not supported`, "sluice.conf:5"}},
		{"http directive in stream", "stream {\n server {\n  listen 1234;\n  proxy_pass 127.0.0.1:1;\n  proxy_set_header X y;\n }\n}\n", []string{`"proxy_set_header" directive is not allowed here`, "sluice.conf:5"}},
		{"stream directive in http", "http {\n proxy_timeout 5s;\n}\n", []string{`"proxy_timeout" directive is not allowed here`, "sluice.conf:2", "stream"}},
		{"next_upstream values", "stream {\n proxy_next_upstream error timeout;\n}\n", []string{`invalid number of arguments in "proxy_next_upstream"`, "sluice.conf:2"}},
		{"ssl without certificate", "stream {\n server {\n  listen 1234 ssl;\n  proxy_pass 127.0.0.1:1;\n }\n}\n", []string{`no "ssl_certificate" is defined`, "sluice.conf:3"}},
		{"ip_hash", "stream {\n upstream u {\n  ip_hash;\n  server 127.0.0.1:1;\n }\n}\n", []string{`"ip_hash" directive is not allowed here`, "sluice.conf:3"}},
		{"uwsgi_ssl_certificate", "http {\n server {\n  location / { uwsgi_ssl_certificate /x.pem; }\n }\n}\n", []string{`unknown directive "uwsgi_ssl_certificate" (ngx_http_uwsgi_module)`, "sluice.conf:3", "suwsgi"}},
		{"uwsgi_pass suwsgi", "http {\n server {\n  location / { uwsgi_pass suwsgi://127.0.0.1:3031; }\n }\n}\n", []string{`suwsgi:// in "uwsgi_pass" is not supported`, "sluice.conf:3", "unix:/path.sock"}},
		{"uwsgi_pass http", "http {\n server {\n  location / { uwsgi_pass http://127.0.0.1:3031; }\n }\n}\n", []string{`invalid host in upstream "http://127.0.0.1:3031"`, "sluice.conf:3", "uwsgi://host:port"}},
		{"scgi_pass scgi scheme", "http {\n server {\n  location / { scgi_pass scgi://127.0.0.1:5000; }\n }\n}\n", []string{`invalid host in upstream "scgi://127.0.0.1:5000"`, "sluice.conf:3", "without a scheme"}},
		{"scgi_pass no port", "http {\n server {\n  location / { scgi_pass 127.0.0.1; }\n }\n}\n", []string{`no port in upstream "127.0.0.1"`, "sluice.conf:3"}},
		{"scgi_pass and uwsgi_pass", "http {\n server {\n  location / { uwsgi_pass 127.0.0.1:3031; scgi_pass 127.0.0.1:5000; }\n }\n}\n", []string{`"scgi_pass" directive is duplicate`, "sluice.conf:3"}},
		{"scgi_store", "http {\n scgi_store on;\n}\n", []string{"scgi_store is not supported", "sluice.conf:2"}},
		{"uwsgi_modifier1 range", "http {\n server {\n  location / { uwsgi_modifier1 256; }\n }\n}\n", []string{`value must be between 0 and 255 in "uwsgi_modifier1" directive`, "sluice.conf:3"}},
		{"uwsgi_pass and fastcgi_pass", "http {\n server {\n  location / { fastcgi_pass 127.0.0.1:9000; uwsgi_pass 127.0.0.1:3031; }\n }\n}\n", []string{`"uwsgi_pass" directive is duplicate`, "sluice.conf:3"}},
		{"ssi is not a typo of ssl", "http {\n ssi on;\n}\n", []string{`unknown directive "ssi" (ngx_http_ssi_module)`, "sluice.conf:2", "server-side includes are not supported"}},
		{"headers-more", "http {\n more_clear_headers Server;\n}\n", []string{`"more_clear_headers" (headers-more)`, "sluice.conf:2", "add_header"}},
		{"lua", "http {\n server {\n  location / { content_by_lua_block { ngx.say(1) } }\n }\n}\n", []string{`"content_by_lua_block" (OpenResty Lua)`, "sluice.conf:3"}},
		{"lookahead in rewrite", "http {\n server {\n  location ~ \\.php { rewrite ^/(?!index|remote) /index.php$request_uri; }\n }\n}\n", []string{"negative lookahead `(?!` is not supported", "location ^~ /.well-known/ { } before", "sluice.conf:3"}},
		{"lookahead in location", "http {\n server {\n  location ~ /\\.(?!well-known).* { deny all; }\n }\n}\n", []string{"negative lookahead `(?!` is not supported", "or as a map", "sluice.conf:3"}},
		{"lookahead in if", "http {\n server {\n  if ($uri ~* ^/(?!a)) { return 404; }\n }\n}\n", []string{"negative lookahead `(?!` is not supported", "sluice.conf:3"}},
		{"empty if", "http {\n server {\n  if () { return 204; }\n }\n}\n", []string{`invalid condition ")"`, "sluice.conf:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.conf, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestUnsupportedNamesNotDeclared: a name the unsupported-module table lists exactly must not be a directive
// sluice declares (its hint would never show, and the table would misdescribe sluice).
func TestUnsupportedNamesNotDeclared(t *testing.T) {
	r := NewRegistry()
	for _, m := range unsupportedModules {
		for _, n := range m.names {
			if _, ok := r.Lookup(n); ok {
				t.Errorf("%s lists %q, which sluice declares", m.module, n)
			}
		}
	}
	if _, hint, _ := unsupportedHint("proxy_set_heder"); hint != "" {
		t.Errorf("a typo got a module hint: %q", hint)
	}
}

// TestEmptyIfInInclude: `if ()` made the parser library panic, which on a reload stopped the running server.
func TestEmptyIfInInclude(t *testing.T) {
	_, err := load(t, "http {\n include x.conf;\n}\n", map[string]string{"conf/x.conf": "server {\n if () { return 204; }\n}\n"})
	if err == nil || !strings.Contains(err.Error(), `invalid condition ")" in `) || !strings.Contains(err.Error(), "x.conf:2") {
		t.Fatalf("err = %v", err)
	}
}

// TestIfEmptyString: ($query_string != "") compares with the empty string (WordPress cache recipes); the empty
// argument was taken for the space before the closing parenthesis and dropped.
func TestIfEmptyString(t *testing.T) {
	cfg, err := load(t, "http {\n server {\n  if ($query_string != \"\") { return 204; }\n  if ( $args = '' ) { return 204; }\n }\n}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	ops := cfg.HTTP.Servers[0].Ops
	if len(ops) != 2 || ops[0].Cond.Op != "!=" || ops[0].Cond.Value != "" || ops[1].Cond.Op != "=" || ops[1].Cond.Value != "" {
		t.Fatalf("conditions = %+v %+v", ops[0].Cond, ops[1].Cond)
	}
}

func TestErrorInIncludedFile(t *testing.T) {
	_, err := load(t, "http {\n include sites/*.conf;\n}\n", map[string]string{
		"conf/sites/a.conf": "server {\n  listen 8080;\n  location / {\n    proxy_bufering off;\n  }\n}\n",
	})
	if err == nil || !strings.Contains(err.Error(), "sites/a.conf:4") || !strings.Contains(err.Error(), `"proxy_buffering"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestIgnoredDirectivesAccepted(t *testing.T) {
	_, err := load(t, "user www-data;\nworker_processes auto;\nevents { worker_connections 1024; }\nhttp {\n sendfile on;\n server { listen 8080; }\n}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	// tuning that one process makes moot, and HTTP/2 directives nginx 1.22 still accepts as obsolete
	_, err = load(t, "lock_file logs/nginx.lock;\ntimer_resolution 100ms;\nevents { accept_mutex_delay 500ms; worker_aio_requests 32; }\nhttp {\n http2_max_requests 1000;\n http2_recv_timeout 30s;\n http2_max_concurrent_pushes 10;\n proxy_send_lowat 0;\n server { listen 8080; referer_hash_bucket_size 64; referer_hash_max_size 2048; }\n}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
}

// TestWorkerProcesses: the directive gives the number of cores; auto and its absence mean every core (0).
func TestWorkerProcesses(t *testing.T) {
	tests := []struct {
		conf string
		want int
	}{
		{"", 0},
		{"worker_processes auto;\n", 0},
		{"worker_processes 1;\n", 1},
		{"worker_processes 3;\n", 3},
	}
	for _, tt := range tests {
		cfg, err := load(t, tt.conf+"http { server { listen 8080; } }\n", nil)
		if err != nil {
			t.Fatalf("%q: %v", tt.conf, err)
		}
		if cfg.WorkerProcesses != tt.want {
			t.Errorf("%q: WorkerProcesses = %d, want %d", tt.conf, cfg.WorkerProcesses, tt.want)
		}
	}
}

func TestInheritance(t *testing.T) {
	cfg, err := load(t, `http {
    proxy_set_header X-A a;
    proxy_set_header X-B b;
    proxy_read_timeout 5s;
    add_header X-Top 1;
    server {
        listen 8080;
        location /inherit { proxy_pass http://127.0.0.1:1; }
        location /replace {
            proxy_pass http://127.0.0.1:1;
            proxy_set_header X-C c;
            proxy_read_timeout 7s;
            location /replace/nested { proxy_pass http://127.0.0.1:1; }
        }
    }
}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.HTTP.Servers[0]
	names := func(path string) (out []string, read time.Duration) {
		m, ok := s.Matcher.Match(path)
		if !ok {
			t.Fatalf("%s: no location", path)
		}
		for _, h := range m.Loc.Value.Conf.ProxySetHeaders.V {
			out = append(out, h.Name)
		}
		return out, m.Loc.Value.Conf.ProxyReadTimeout.Get(0)
	}
	if got, rt := names("/inherit"); strings.Join(got, ",") != "X-A,X-B" || rt != 5*time.Second {
		t.Errorf("/inherit: headers %v, read timeout %v", got, rt)
	}
	if got, rt := names("/replace"); strings.Join(got, ",") != "X-C" || rt != 7*time.Second {
		t.Errorf("/replace: a level with proxy_set_header replaces the list: %v, %v", got, rt)
	}
	if got, rt := names("/replace/nested"); strings.Join(got, ",") != "X-C" || rt != 7*time.Second {
		t.Errorf("/replace/nested inherits from its parent location: %v, %v", got, rt)
	}
}

// TestLingering: lingering_close, lingering_time and lingering_timeout inherit from http to server to location
// (and into if blocks) and make one value per level; no setting anywhere leaves it nil (nginx's defaults).
func TestLingering(t *testing.T) {
	cfg, err := load(t, `http {
    lingering_time 10s;
    server {
        listen 8080;
        lingering_close always;
        location /a { lingering_timeout 1s; if ($arg_x) { return 200; } }
        location /b { lingering_close off; }
    }
    server { listen 8081; location / { } }
}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.HTTP.Servers[0]
	location := func(path string) *Location {
		m, ok := s.Matcher.Match(path)
		if !ok {
			t.Fatalf("%s: no location", path)
		}
		return m.Loc.Value
	}
	loc := func(path string) *LocConf { return location(path).Conf }
	for _, tc := range []struct {
		name string
		got  *h1.Linger
		want h1.Linger
	}{
		{"server", s.Loc.Linger, h1.Linger{Mode: h1.LingerAlways, Time: 10 * time.Second, Timeout: 5 * time.Second}},
		{"/a", loc("/a").Linger, h1.Linger{Mode: h1.LingerAlways, Time: 10 * time.Second, Timeout: time.Second}},
		{"/a's if", location("/a").Ops[0].IfConf.Linger, h1.Linger{Mode: h1.LingerAlways, Time: 10 * time.Second, Timeout: time.Second}},
		{"/b", loc("/b").Linger, h1.Linger{Mode: h1.LingerOff, Time: 10 * time.Second, Timeout: 5 * time.Second}},
	} {
		if tc.got == nil || *tc.got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
	if _, err := load(t, "http { server { listen 8080; lingering_close sometimes; } }", nil); err == nil ||
		!strings.Contains(err.Error(), `invalid value "sometimes"`) {
		t.Errorf("lingering_close sometimes: %v", err)
	}
	cfg, err = load(t, "http { server { listen 8080; location / { } } }", nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.HTTP.Servers[0].Loc.Linger; l != nil {
		t.Errorf("nothing set: %+v, want nil (the defaults)", l)
	}
}

func TestCommandLineDirectives(t *testing.T) {
	path := write(t, map[string]string{"conf/sluice.conf": "http { server { listen 8080; } }\n"})
	cfg, err := Load(path, Options{Prefix: filepath.Dir(filepath.Dir(path)), Directives: "pid /tmp/x.pid;"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pid != "/tmp/x.pid" {
		t.Errorf("pid = %q", cfg.Pid)
	}
}

func TestDefaultConfig(t *testing.T) {
	text, ok := Builtin("default.conf")
	if !ok {
		t.Fatal("no built-in default.conf")
	}
	dir := t.TempDir()
	cfg, err := Load("", Options{Prefix: dir, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.HTTP.Servers) != 2 {
		t.Fatalf("servers = %d", len(cfg.HTTP.Servers))
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "500ms": 500 * time.Millisecond, "1h 30m": 90 * time.Minute, "1h30m": 90 * time.Minute, "2d": 48 * time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "5x", "-1"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`a\nb`: "a\nb", `\t`: "\t", `a\\b`: `a\b`, `\.php$`: `\.php$`, `plain`: "plain"} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolverAllows(t *testing.T) {
	for _, tc := range []struct {
		r    Resolver
		addr string
		want bool
	}{
		{Resolver{}, "10.0.0.1:80", true},
		{Resolver{}, "[::1]:80", true},
		{Resolver{NoIPv6: true}, "10.0.0.1:80", true},
		{Resolver{NoIPv6: true}, "[2001:db8::1]:80", false},
		{Resolver{NoIPv6: true}, "[::ffff:10.0.0.1]:80", true},
		{Resolver{NoIPv4: true}, "10.0.0.1:80", false},
		{Resolver{NoIPv4: true}, "[::1]:80", true},
	} {
		if got := tc.r.Allows(tc.addr); got != tc.want {
			t.Errorf("%+v Allows(%s) = %v, want %v", tc.r, tc.addr, got, tc.want)
		}
	}
	for _, tc := range []struct {
		r    Resolver
		want string
	}{{Resolver{}, "ip"}, {Resolver{NoIPv6: true}, "ip4"}, {Resolver{NoIPv4: true}, "ip6"}} {
		if got := tc.r.Network(); got != tc.want {
			t.Errorf("%+v Network() = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// TestProxyDirectives: what proxy_method, proxy_bind, proxy_cookie_flags, proxy_limit_rate and the on/off
// proxy directives compile to, and how a location inherits them.
func TestProxyDirectives(t *testing.T) {
	cfg, err := load(t, `http {
    proxy_cookie_flags one httponly samesite=LAX;
    proxy_cookie_flags ~^t $arg_f nosecure;
    proxy_limit_rate 20k;
    server {
        listen 8080;
        location /a { proxy_method POST; proxy_bind 127.0.0.2; proxy_pass http://127.0.0.1:1; }
        location /b { proxy_method $arg_m; proxy_bind [::1]:5000; proxy_cookie_flags off; proxy_pass http://127.0.0.1:1; }
        location /c { proxy_bind $arg_b; proxy_ignore_client_abort on; proxy_socket_keepalive on; proxy_ssl_session_reuse off; proxy_limit_rate 0; proxy_pass http://127.0.0.1:1; }
        location /d { proxy_bind off; proxy_pass http://127.0.0.1:1; }
    }
}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	locs := map[string]*LocConf{}
	for _, l := range cfg.HTTP.Servers[0].Locations {
		locs[l.Pattern] = l.Conf
	}
	a, b, c, d := locs["/a"], locs["/b"], locs["/c"], locs["/d"]
	if m := a.ProxyMethod.V; m == nil || !m.IsConst() || m.String() != "POST" {
		t.Errorf("/a proxy_method = %v", m)
	}
	if m := b.ProxyMethod.V; m == nil || m.IsConst() {
		t.Errorf("/b proxy_method = %v, want a template with variables", m)
	}
	if c.ProxyMethod.V != nil {
		t.Errorf("/c proxy_method set without the directive")
	}
	for _, tc := range []struct {
		name string
		b    *Bind
		want string // Addr's String(); "$" a template; "" none
	}{{"/a", a.ProxyBind.V, "127.0.0.2:0"}, {"/b", b.ProxyBind.V, "[::1]:5000"}, {"/c", c.ProxyBind.V, "$"}, {"/d", d.ProxyBind.V, ""}} {
		got := ""
		switch {
		case tc.b == nil:
		case tc.b.Template != nil:
			got = "$"
		default:
			got = tc.b.Addr.String()
		}
		if got != tc.want {
			t.Errorf("%s proxy_bind = %q, want %q", tc.name, got, tc.want)
		}
	}
	if fl := a.ProxyCookieFlags.V; len(fl) != 2 || fl[0].Cookie.From != "one" || fl[0].Flags != CookieHTTPOnly|CookieSameSiteLax ||
		fl[1].Cookie.FromRe == nil || !fl[1].Cookie.FromRe.MatchString("Tx") || fl[1].Flags != CookieNoSecure || len(fl[1].Vars) != 1 {
		t.Errorf("inherited proxy_cookie_flags = %+v", fl)
	}
	if !b.ProxyCookieFlags.Set || len(b.ProxyCookieFlags.V) != 0 {
		t.Errorf("proxy_cookie_flags off = %+v", b.ProxyCookieFlags)
	}
	if a.ProxyLimitRate.V != 20<<10 || c.ProxyLimitRate.V != 0 {
		t.Errorf("proxy_limit_rate = %d, %d", a.ProxyLimitRate.V, c.ProxyLimitRate.V)
	}
	if a.ProxyIgnoreClientAbort.Get(false) || !c.ProxyIgnoreClientAbort.Get(false) || !c.ProxySocketKeepalive.Get(false) ||
		!a.ProxySSLSessionReuse.Get(true) || c.ProxySSLSessionReuse.Get(true) {
		t.Errorf("on/off directives: /a %+v %+v; /c %+v %+v %+v", a.ProxyIgnoreClientAbort, a.ProxySSLSessionReuse,
			c.ProxyIgnoreClientAbort, c.ProxySocketKeepalive, c.ProxySSLSessionReuse)
	}
}

// TestLimitExcept: the block's configuration inherits the location's (access rules, satisfy, the content
// handler) except try_files, its own access rules replace the location's, GET brings HEAD, and nested
// locations do not inherit the block (nginx 1.22).
func TestLimitExcept(t *testing.T) {
	cfg, err := load(t, `http {
    server {
        listen 8080;
        location /a {
            satisfy any;
            deny 10.0.0.1;
            try_files $uri /x;
            proxy_pass http://127.0.0.1:1;
            limit_except get post { allow 10.0.0.0/8; deny all; }
            location /a/b { }
        }
        location /h { limit_except HEAD { } }
    }
}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.HTTP.Servers[0]
	loc := func(path string) *Location {
		m, ok := s.Matcher.Match(path)
		if !ok {
			t.Fatalf("%s: no location", path)
		}
		return m.Loc.Value
	}
	a := loc("/a")
	le := a.Conf.LimitExcept
	if le == nil {
		t.Fatal("/a: no limit_except")
	}
	c := le.Conf
	if len(c.Access.V) != 2 || !c.Access.V[0].Allow || !c.SatisfyAny.V || c.TryFiles.Set || c.Proxy != a.Conf.Proxy || c.Handler != HandlerProxy {
		t.Errorf("limit_except conf: access %v satisfy any %v try_files %v proxy %v handler %v", c.Access.V, c.SatisfyAny.V, c.TryFiles.Set, c.Proxy, c.Handler)
	}
	if len(a.Conf.Access.V) != 1 || !a.Conf.TryFiles.Set {
		t.Errorf("the location's own settings changed: %v %v", a.Conf.Access.V, a.Conf.TryFiles.Set)
	}
	if loc("/a/b").Conf.LimitExcept != nil {
		t.Error("a nested location inherited limit_except")
	}
	for _, tc := range []struct {
		le         *LimitExcept
		method     string
		restricted bool
	}{
		{le, "GET", false}, {le, "HEAD", false}, {le, "POST", false}, {le, "PUT", true}, {le, "get", true}, {le, "FOO", true},
		{loc("/h").Conf.LimitExcept, "HEAD", false}, {loc("/h").Conf.LimitExcept, "GET", true},
	} {
		if got := tc.le.Restricts(tc.method); got != tc.restricted {
			t.Errorf("%v restricts %s: %v, want %v", tc.le.Methods, tc.method, got, tc.restricted)
		}
	}
}
