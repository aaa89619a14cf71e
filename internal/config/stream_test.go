package config

import (
	"testing"
	"time"
)

// TestStreamBlock: a stream block is read into Config.Stream: stream-level values are inherited by its servers,
// proxy_pass names a group of the stream block (a namespace apart from http's) or an address, and hash keys
// compile against the shared variable table.
func TestStreamBlock(t *testing.T) {
	cfg, err := load(t, `events {}
http {
    upstream db { server 127.0.0.1:8080; }
}
stream {
    proxy_timeout 30s;
    log_format basic '$remote_addr $status $session_time';
    upstream db {
        hash $remote_addr consistent;
        server 127.0.0.1:3306 weight=2 max_fails=3 fail_timeout=5s;
        server 127.0.0.1:3307;
    }
    server {
        listen 127.0.0.1:13306 reuseport so_keepalive=on;
        proxy_pass db;
        proxy_connect_timeout 2s;
        proxy_next_upstream off;
        proxy_next_upstream_tries 2;
        deny 10.0.0.0/8;
        access_log logs/stream.log basic;
    }
    server {
        listen 6379;
        proxy_pass 127.0.0.1:6380;
        proxy_timeout 5s;
        proxy_protocol on;
    }
}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Stream
	if st == nil || len(st.Servers) != 2 {
		t.Fatalf("stream block not read: %+v", st)
	}
	if cfg.HTTP.Upstreams["db"].Servers[0].Addr != "127.0.0.1:8080" || st.Upstreams["db"].Servers[0].Addr != "127.0.0.1:3306" {
		t.Error("http and stream upstreams named db should be two groups")
	}
	a, b := st.Servers[0], st.Servers[1]
	if a.Pass.Upstream != st.Upstreams["db"] || a.Pass.Upstream.Policy != "hash" || a.Pass.Upstream.HashKey == nil {
		t.Errorf("proxy_pass db: %+v", a.Pass)
	}
	if c, idle := a.StreamTimeouts(); c != 2*time.Second || idle != 30*time.Second {
		t.Errorf("first server timeouts %v %v, want 2s and the stream block's 30s", c, idle)
	}
	if c, idle := b.StreamTimeouts(); c != 60*time.Second || idle != 5*time.Second {
		t.Errorf("second server timeouts %v %v, want 60s and 5s", c, idle)
	}
	if a.Conf.StreamNext.Get(true) || a.Conf.ProxyNextTries.Get(0) != 2 || len(a.Conf.Access.V) != 1 || len(a.Conf.AccessLogs.V) != 1 {
		t.Errorf("first server's settings: %+v", a.Conf)
	}
	if b.Pass.Addr != "127.0.0.1:6380" || !b.Conf.StreamProxyProtocol.Get(false) || b.Listens[0].Addr != "0.0.0.0:6379" {
		t.Errorf("second server: pass %+v, listen %+v", b.Pass, b.Listens)
	}
	if !a.Listens[0].Reuseport || !a.Listens[0].KeepAlive.Enable {
		t.Errorf("listen parameters lost: %+v", a.Listens[0])
	}
}
