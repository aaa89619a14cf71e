package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds configuration text to the whole loader (crossplane parsing, the directive tables, merging,
// validation): it must never panic, and every refusal is an *Error naming where and why.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"http { server { listen 8080; location / { return 200 ok; } } }",
		"events {}\nhttp {\n map $http_origin $o { default \"\"; ~^https://a $http_origin; }\n server {\n  listen 8080;\n  location / {\n   if ($request_method = OPTIONS) { add_header X-A 1 always; return 204; }\n   proxy_pass http://127.0.0.1:9;\n  }\n }\n}\n",
		"http {\n limit_req_zone $binary_remote_addr zone=one:1m rate=5r/s;\n limit_conn_zone $binary_remote_addr zone=c:1m;\n server {\n  listen 8080 proxy_protocol;\n  set_real_ip_from 10.0.0.0/8;\n  real_ip_header proxy_protocol;\n  cors_origins https://a.example.org https://*.example.net;\n  cors_credentials on;\n  location /a { limit_req zone=one burst=5 nodelay; limit_conn c 2; allow 10.0.0.0/8; deny all; proxy_pass http://127.0.0.1:9; }\n }\n}\n",
		"http { server { listen 8443 ssl; ssl_certificate self-signed; location ~ ^/(?<x>\\w+)$ { rewrite ^ /$x last; } } }",
		"http { server { location / { auth_basic x; } } }",
		"http { upstream u { server 127.0.0.1:1 weight=2; keepalive 4; } server { location / { proxy_pass http://u; } } }",
		"http { server { server_name ~^(?<sub>.+)\\.example\\.org$; return 301 https://$sub.example.org$request_uri; } }",
		"http { include nosuch/*.conf; }", "}", "http {", "\"", "http { server { listen [::]:80 ipv6only=on; } }",
	} {
		f.Add(s)
	}
	prefix := f.TempDir()
	os.MkdirAll(filepath.Join(prefix, "conf"), 0o755)
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "proxy_pass") && strings.Contains(text, "://") && !strings.Contains(text, "127.0.0.1") {
			// host names in proxy_pass are resolved at load time; keep the fuzzer off the network
			return
		}
		cfg, err := Load("", Options{Prefix: prefix, Text: []byte(text)})
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil configuration without error")
		}
	})
}
