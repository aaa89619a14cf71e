package e2e

// End-to-end checks of the variable-defining modules nginx files use: geo, split_clients and
// valid_referers. Every expected value was observed from Debian's nginx 1.22 on the same configuration.

import (
	"testing"
)

// TestGeo: geo by the client address after realip (longest prefix per family, an include file, delete, a
// duplicate replacing the earlier line, IPv6, an IPv4-mapped network nginx never reaches), by another
// variable (a value that is not an address looks up 255.255.255.255), ranges, and proxy with
// X-Forwarded-For.
func TestGeo(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    geo $g {
        default def;
        10.0.0.0/8 ten;
        10.1.0.0/16 ten1;
        10.1.2.3 host;
        10.1.2.3/32 host2;
        0.0.0.0/1 half;
        2001:db8::/32 doc6;
        2001:db8:1::/48 doc6a;
        ::1 lo6;
        ::ffff:10.5.0.0/112 mapped;
        include geo.inc;
        10.3.0.0/16 del;
        delete 10.3.0.0/16;
    }
    geo $http_x_ip $ga {
        default none;
        10.0.0.0/8 ten;
        255.255.255.255 bad;
        ::/0 v6;
    }
    geo $http_x_ip $gr {
        ranges;
        default rdef;
        10.0.0.0-10.0.0.255 r1;
        10.0.0.50-10.0.0.60 r3;
        10.0.6.0-10.0.6.255 r6;
        delete 10.0.6.0-10.0.6.255;
        10.0.7.0-10.0.7.255 r7;
        10.0.7.0-10.0.7.255 r7b;
    }
    geo $gp {
        proxy 127.0.0.0/8;
        proxy 10.0.0.0/8;
        proxy_recursive;
        default d;
        10.0.0.0/8 ten;
        127.0.0.1 lo;
        192.0.2.1 tst;
    }
    server {
        listen {{PORT}};
        set_real_ip_from 127.0.0.1;
        location / { return 200 "g=$g ga=$ga gr=$gr"; }
        location /p { return 200 "gp=$gp"; }
    }
}
`, []option{withFile("conf/geo.inc", []byte("10.9.0.0/16 inc;\n10.9.9.0/24 inc24;\n"))})
	// X-IP feeds $ga and $gr; /p reads X-Forwarded-For through geo's proxy lines
	for _, tc := range []struct{ path, realIP, name, value, want string }{
		{"/", "10.1.2.3", "", "", "g=host2 ga=bad gr=rdef"},
		{"/", "10.1.9.9", "X-IP", "10.1.1.1", "g=ten1 ga=ten gr=rdef"},
		{"/", "10.9.9.1", "X-IP", "junk", "g=inc24 ga=bad gr=rdef"},
		{"/", "10.9.8.1", "X-IP", "::1", "g=inc ga=v6 gr=rdef"},
		{"/", "10.3.1.1", "X-IP", "::ffff:10.0.0.1", "g=ten ga=ten gr=r1"},
		{"/", "1.1.1.1", "X-IP", "10.0.0.55", "g=half ga=ten gr=r3"},
		{"/", "200.1.1.1", "X-IP", "010.0.0.5", "g=def ga=ten gr=r1"},
		{"/", "10.5.0.1", "X-IP", "10.0.6.1", "g=ten ga=ten gr=rdef"},
		{"/", "::1", "X-IP", "10.0.7.1", "g=lo6 ga=ten gr=r7b"},
		{"/", "2001:db8::5", "X-IP", "255.255.255.254", "g=doc6 ga=none gr=rdef"},
		{"/", "2001:db8:1::5", "X-IP", "10.1", "g=doc6a ga=bad gr=rdef"},
		{"/", "2001:db9::1", "X-IP", "1.2.3.4:80", "g=def ga=bad gr=rdef"},
		{"/", "::ffff:10.1.2.3", "X-IP", "2001:db8::1%eth0", "g=host2 ga=bad gr=rdef"},
		{"/p", "", "", "", "gp=lo"},
		{"/p", "10.0.0.7", "", "", "gp=ten"},
		{"/p", "", "X-Forwarded-For", "192.0.2.1, 10.1.1.1", "gp=tst"},
		{"/p", "10.0.0.7", "X-Forwarded-For", "192.0.2.1", "gp=tst"},
		{"/p", "", "X-Forwarded-For", "10.2.2.2, 10.1.1.1", "gp=ten"},
		{"/p", "", "X-Forwarded-For", "192.0.2.1, junk", "gp=lo"},
		{"/p", "", "X-Forwarded-For", "203.0.113.1, 192.0.2.1, 127.0.0.5", "gp=tst"},
	} {
		var hdr []string
		if tc.realIP != "" {
			hdr = append(hdr, "X-Real-IP", tc.realIP)
		}
		if tc.name != "" {
			hdr = append(hdr, tc.name, tc.value)
		}
		if r := semGet(t, port, tc.path, "", hdr...); r.Body != tc.want {
			t.Errorf("%s from %q, %s %q: %q, want %q", tc.path, tc.realIP, tc.name, tc.value, r.Body, tc.want)
		}
	}
}

// TestSplitClients: the same keys get the same parts as in nginx (MurmurHash2 of the evaluated string,
// percentages cut as nginx cuts them), the client address after realip as a key, and a block whose parts
// leave some hashes without a value.
func TestSplitClients(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    split_clients "$http_x_k" $s { 0.5% a; 2% b; 10% c; 33.33% d; * e; }
    split_clients "${http_x_k}salt" $t { 50% x; 50% y; }
    split_clients "$http_x_k" $u { 10% p; .5% r; 5.% s; }
    split_clients "$remote_addr" $v { 30% one; * two; }
    server {
        listen {{PORT}};
        set_real_ip_from 127.0.0.1;
        location / { return 200 "s=$s t=$t u=[$u] v=$v"; }
    }
}
`, nil)
	for _, tc := range []struct{ key, client, want string }{
		{"", "10.0.0.1", "s=a t=y u=[p] v=two"},
		{"a", "10.0.0.3", "s=e t=x u=[] v=one"},
		{"ab", "192.0.2.7", "s=c t=y u=[r] v=two"},
		{"abcd", "2001:db8::1", "s=d t=x u=[s] v=two"},
		{"abcde", "10.0.0.4", "s=d t=x u=[] v=two"},
		{"user31", "10.0.0.2", "s=b t=y u=[p] v=two"},
		{"user82", "10.0.0.3", "s=a t=x u=[p] v=one"},
		{",}S/T+}561$4l/t3om]uM", "10.0.0.1", "s=c t=y u=[s] v=two"},
		{"Joanb:yDZbe^a@zcBh:Z2V0SYI*v", "10.0.0.1", "s=d t=y u=[s] v=two"},
		{"4St'*e-Ok(a<%,XV)?,g", "10.0.0.1", "s=e t=y u=[] v=two"},
	} {
		if r := semGet(t, port, "/", "", "X-K", tc.key, "X-Real-IP", tc.client); r.Body != tc.want {
			t.Errorf("key %q from %s: %q, want %q", tc.key, tc.client, r.Body, tc.want)
		}
	}
}

// TestValidReferers: $invalid_referer by valid_referers (none, blocked, server_names with a regex name,
// wildcards, a path prefix, ~regex, ports ignored), inherited from the server or replaced by a location's
// lines (which add up), and read once per request: a server-level `if ($invalid_referer)` decides for every
// location, whatever their own valid_referers say.
func TestValidReferers(t *testing.T) {
	t.Parallel()
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        server_name main.test ~^re(?<n>\d+)\.test$;
        valid_referers none good.test;
        location /a { return 200 "a[$invalid_referer]"; }
        location /b { valid_referers other.test; valid_referers third.test; return 200 "b[$invalid_referer]"; }
        location /c { valid_referers blocked server_names; if ($invalid_referer) { return 403 "c"; } return 200 "c ok"; }
        location /w {
            valid_referers *.example.com example.* .dot.org exact.net/path/ ~\.google\.;
            return 200 "w[$invalid_referer]";
        }
    }
    server {
        listen {{PORT}};
        server_name srv.test;
        valid_referers none good.test;
        if ($invalid_referer) { return 403 "srv"; }
        location /b { valid_referers other.test; return 200 "b[$invalid_referer]"; }
    }
}
`, nil)
	for _, tc := range []struct{ host, path, referer, want string }{
		{"main.test", "/a", "", "a[]"},
		{"main.test", "/a", "http://good.test/", "a[]"},
		{"main.test", "/a", "http://other.test/", "a[1]"},
		{"main.test", "/b", "", "b[1]"},
		{"main.test", "/b", "http://third.test/", "b[]"},
		{"main.test", "/b", "http://good.test/", "b[1]"},
		{"main.test", "/c", "http://main.test:8080/x", "c ok"},
		{"main.test", "/c", "HTTPS://RE42.TEST/", "c ok"},
		{"main.test", "/c", "bad.test", "c ok"},
		{"main.test", "/c", "http://re.test/", "c"},
		{"main.test", "/c", "", "c"},
		{"main.test", "/w", "http://a.b.example.com/", "w[]"},
		{"main.test", "/w", "http://example.com/", "w[]"},
		{"main.test", "/w", "http://evil.com/", "w[1]"},
		{"main.test", "/w", "http://example.co.uk/", "w[]"},
		{"main.test", "/w", "http://dot.org", "w[]"},
		{"main.test", "/w", "http://exact.net:8080/path/x", "w[]"},
		{"main.test", "/w", "http://exact.net/Path/", "w[1]"},
		{"main.test", "/w", "http://evil.com/?www.google.com", "w[]"},
		{"main.test", "/w", "http://main.test@evil.com/", "w[1]"},
		{"srv.test", "/b", "", "b[]"},
		{"srv.test", "/b", "http://other.test/", "srv"},
	} {
		var hdr []string
		if tc.referer != "" {
			hdr = []string{"Referer", tc.referer}
		}
		if r := semGet(t, port, tc.path, tc.host, hdr...); r.Body != tc.want {
			t.Errorf("%s%s Referer %q: %q, want %q", tc.host, tc.path, tc.referer, r.Body, tc.want)
		}
	}
}
