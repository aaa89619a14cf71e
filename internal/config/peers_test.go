package config

import (
	"slices"
	"testing"
)

func TestPeerAddr(t *testing.T) {
	for _, c := range []struct{ scheme, host, want string }{
		{"http", "127.0.0.1:8080", "127.0.0.1:8080"},
		{"http", "backend", "backend:80"},
		{"https", "backend", "backend:443"},
		{"http", "[::1]", "[::1]:80"},
		{"https", "[::1]:8443", "[::1]:8443"},
	} {
		if got := PeerAddr(c.scheme, c.host); got != c.want {
			t.Errorf("PeerAddr(%q, %q) = %q, want %q", c.scheme, c.host, got, c.want)
		}
	}
}

// TestPassAddrs: the addresses proxy_pass and fastcgi_pass name directly, in nested locations too;
// not upstream groups, not targets with variables.
func TestPassAddrs(t *testing.T) {
	cfg, err := load(t, `events {}
http {
    upstream grp { server 127.0.0.1:9000; }
    server {
        listen 8080;
        location /a { proxy_pass http://127.0.0.1:8001; }
        location /b {
            location /b/c { proxy_pass https://localhost/x/; }
            proxy_pass http://127.0.0.1:8001;
        }
        location /g { proxy_pass http://grp; }
        location /d { proxy_pass http://127.0.0.1:8002; }
        location /v { proxy_pass http://$arg_h; }
        location ~ \.php$ { fastcgi_pass 127.0.0.1:9001; }
        location @named { fastcgi_pass grp; }
    }
}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.PassAddrs()
	slices.Sort(got)
	want := []string{"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:9001", "localhost:443"}
	if !slices.Equal(got, want) {
		t.Errorf("PassAddrs() = %q, want %q", got, want)
	}
}
