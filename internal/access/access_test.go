package access

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestOrigins(t *testing.T) {
	o, err := ParseOrigins([]string{"https://app.example.org", "https://*.example.net", "http://*.local.test:8080"})
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"https://app.example.org":        true,
		"https://APP.example.org":        true,
		"http://app.example.org":         false,
		"https://app.example.org:8443":   false,
		"https://a.example.net":          true,
		"https://a.b.example.net":        true,
		"https://example.net":            false,
		"https://evilexample.net":        false,
		"https://a.example.net.evil.com": false,
		"http://x.local.test:8080":       true,
		"http://x.local.test":            false,
		"null":                           false,
		"":                               false,
		"https://a.example.net/path":     false,
	} {
		if got := o.Match(origin); got != want {
			t.Errorf("Match(%q) = %v, want %v", origin, got, want)
		}
	}
	for _, bad := range []string{"app.example.org", "https://app.example.org/x", "https://a*.example.org", "https://*.*.example.org", "ftp://x", "https://u@x", "http://0#", "https://x?", "https://x #", "http://%80", "https://b%C3%BCcher.example", "https://bücher.example"} {
		if _, err := ParseOrigins([]string{bad}); err == nil {
			t.Errorf("ParseOrigins(%q) accepted", bad)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{{"http://a.test", "a.test", true}, {"http://a.test", "a.test:80", true}, {"http://a.test:8080", "a.test:8080", true},
		{"https://a.test", "a.test", false}, {"http://b.test", "a.test", false}, {"http://", "", false}} {
		r := &http.Request{Host: tc.host}
		if got := SameOrigin(tc.origin, r); got != tc.want {
			t.Errorf("SameOrigin(%q, host %q) = %v", tc.origin, tc.host, got)
		}
	}
}

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func TestRealIP(t *testing.T) {
	peerTrusted := netip.MustParseAddrPort("10.0.0.1:5000")
	peerOther := netip.MustParseAddrPort("203.0.113.9:5000")
	pp := netip.MustParseAddrPort("198.51.100.7:4444")
	cases := []struct {
		name string
		ri   RealIP
		peer netip.AddrPort
		hdr  http.Header
		want string
	}{
		{"untrusted peer keeps its address", RealIP{From: pfx("10.0.0.0/8"), Header: "X-Forwarded-For"}, peerOther, http.Header{"X-Forwarded-For": {"1.2.3.4"}}, "203.0.113.9:5000"},
		{"X-Real-IP default", RealIP{From: pfx("10.0.0.0/8")}, peerTrusted, http.Header{"X-Real-Ip": {"1.2.3.4"}}, "1.2.3.4:0"},
		{"X-Real-IP garbage", RealIP{From: pfx("10.0.0.0/8")}, peerTrusted, http.Header{"X-Real-Ip": {"1.2.3.4, 5.6.7.8"}}, "10.0.0.1:5000"},
		{"XFF last", RealIP{From: pfx("10.0.0.0/8"), Header: "X-Forwarded-For"}, peerTrusted, http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4, 10.0.0.2"}}, "10.0.0.2:0"},
		{"XFF recursive", RealIP{From: pfx("10.0.0.0/8"), Header: "X-Forwarded-For", Recursive: true}, peerTrusted, http.Header{"X-Forwarded-For": {"6.6.6.6, 1.2.3.4", "10.0.0.2"}}, "1.2.3.4:0"},
		{"XFF recursive all trusted", RealIP{From: pfx("10.0.0.0/8"), Header: "X-Forwarded-For", Recursive: true}, peerTrusted, http.Header{"X-Forwarded-For": {"10.1.1.1, 10.0.0.2"}}, "10.1.1.1:0"},
		{"XFF malformed hop", RealIP{From: pfx("10.0.0.0/8"), Header: "X-Forwarded-For", Recursive: true}, peerTrusted, http.Header{"X-Forwarded-For": {"6.6.6.6, junk, 10.0.0.2"}}, "10.0.0.2:0"},
		{"proxy_protocol", RealIP{From: pfx("10.0.0.0/8"), Header: "proxy_protocol"}, peerTrusted, nil, "198.51.100.7:4444"},
		{"proxy_protocol untrusted", RealIP{From: pfx("10.0.0.0/8"), Header: "proxy_protocol"}, peerOther, nil, "203.0.113.9:5000"},
		{"IPv6 client", RealIP{From: pfx("10.0.0.0/8")}, peerTrusted, http.Header{"X-Real-Ip": {"2001:db8::1"}}, "[2001:db8::1]:0"},
	}
	for _, tc := range cases {
		if got := tc.ri.Client(tc.peer, tc.hdr, pp).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestPermit(t *testing.T) {
	rules := []Rule{{Allow: false, Prefix: netip.MustParsePrefix("192.168.1.1/32")}, {Allow: true, Prefix: netip.MustParsePrefix("192.168.1.0/24")},
		{Allow: true, Prefix: netip.MustParsePrefix("2001:db8::/32")}, {Allow: false, All: true}}
	for a, want := range map[string]bool{"192.168.1.1": false, "192.168.1.2": true, "::ffff:192.168.1.3": true, "2001:db8::5": true, "10.0.0.1": false} {
		if got := Permit(rules, netip.MustParseAddr(a)); got != want {
			t.Errorf("Permit(%s) = %v, want %v", a, got, want)
		}
	}
	if !Permit(nil, netip.MustParseAddr("1.1.1.1")) {
		t.Error("no rules must allow")
	}
}

// TestReqZoneSchedule drives nginx's leaky bucket with a fixed schedule: rate 10r/s (one request per 100ms),
// burst 2; requests at the same instant beyond 1+burst are refused, queued ones wait their turn, and the
// bucket drains with time.
func TestReqZoneSchedule(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		ms      int
		verdict Verdict
		wait    time.Duration
	}
	run := func(t *testing.T, delay int, steps []step) {
		z := NewReqZone("one", 1<<20, 10)
		for i, s := range steps {
			v, w, _ := z.Take("k", at(s.ms), 2, delay)
			if v != s.verdict || w != s.wait {
				t.Errorf("step %d at %dms: verdict %d wait %v, want %d %v", i, s.ms, v, w, s.verdict, s.wait)
			}
		}
	}
	t.Run("delay", func(t *testing.T) {
		run(t, 0, []step{{0, Pass, 0}, {0, Delay, 100 * time.Millisecond}, {0, Delay, 200 * time.Millisecond}, {0, Reject, 0},
			{100, Delay, 200 * time.Millisecond}, {350, Delay, 50 * time.Millisecond}, {1000, Pass, 0}})
	})
	t.Run("nodelay", func(t *testing.T) {
		run(t, 1<<30, []step{{0, Pass, 0}, {0, Pass, 0}, {0, Pass, 0}, {0, Reject, 0}, {50, Reject, 0}, {100, Pass, 0}, {100, Reject, 0}})
	})
	t.Run("keys are separate", func(t *testing.T) {
		z := NewReqZone("one", 1<<20, 1)
		if v, _, _ := z.Take("a", t0, 0, 0); v != Pass {
			t.Fatal("a refused")
		}
		if v, _, _ := z.Take("a", t0, 0, 0); v != Reject {
			t.Fatal("a not refused")
		}
		if v, _, _ := z.Take("b", t0, 0, 0); v != Pass {
			t.Fatal("b refused")
		}
	})
	t.Run("a full zone sweeps drained keys", func(t *testing.T) {
		z := NewReqZone("tiny", 2*reqStateBytes, 1)
		for _, k := range []string{"a", "a", "b", "b"} {
			z.Take(k, t0, 5, 5)
		}
		if v, _, _ := z.Take("c", t0, 0, 0); v != ZoneFull {
			t.Fatalf("verdict %d, want ZoneFull", v)
		}
		if v, _, _ := z.Take("c", t0.Add(2*time.Second), 0, 0); v != Pass {
			t.Fatalf("verdict %d after the others drained, want Pass", v)
		}
	})
}

func TestConnZone(t *testing.T) {
	z := NewConnZone("c", 1<<20)
	r1, ok1 := z.Acquire("k", 2)
	_, ok2 := z.Acquire("k", 2)
	_, ok3 := z.Acquire("k", 2)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire: %v %v %v", ok1, ok2, ok3)
	}
	r1()
	r1() // twice is once
	if n := z.Count("k"); n != 1 {
		t.Fatalf("count %d after one release, want 1", n)
	}
	if _, ok := z.Acquire("k", 2); !ok {
		t.Fatal("slot not freed")
	}
}

func TestZonesSurviveReload(t *testing.T) {
	a := NewZones()
	a.AddReq(nil, "r", 1<<20, 1)
	a.AddConn(nil, "c", 1<<20)
	b := NewZones()
	b.AddReq(a, "r", 1<<20, 5)
	b.AddConn(a, "c", 2<<20)
	if b.Req["r"] != a.Req["r"] {
		t.Error("req zone of the same name and size was not kept")
	}
	if b.Conn["c"] == a.Conn["c"] {
		t.Error("conn zone with a new size was kept")
	}
}

func TestUserFileRefusesDevices(t *testing.T) {
	for _, p := range []string{"/dev/zero", "/dev/null", t.TempDir()} {
		if _, err := OpenUserFile(p); err == nil {
			t.Errorf("OpenUserFile(%q) accepted", p)
		}
	}
}
