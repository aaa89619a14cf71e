package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsServer is a loopback DNS server answering A and AAAA queries for one name with a list the test changes.
type dnsServer struct {
	addr string
	mu   sync.Mutex
	ips  []string
}

func newDNSServer(t *testing.T, name string, ips ...string) *dnsServer {
	t.Helper()
	d := &dnsServer{ips: ips}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if len(q.Question) == 1 && strings.EqualFold(q.Question[0].Name, dns.Fqdn(name)) {
			d.mu.Lock()
			for _, s := range d.ips {
				ip := net.ParseIP(s)
				hdr := dns.RR_Header{Name: q.Question[0].Name, Class: dns.ClassINET, Ttl: 1}
				switch {
				case q.Question[0].Qtype == dns.TypeA && ip.To4() != nil:
					hdr.Rrtype = dns.TypeA
					m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip})
				case q.Question[0].Qtype == dns.TypeAAAA && ip.To4() == nil:
					hdr.Rrtype = dns.TypeAAAA
					m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
				}
			}
			d.mu.Unlock()
		} else if !strings.EqualFold(q.Question[0].Name, dns.Fqdn(name)) {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

func (d *dnsServer) set(ips ...string) {
	d.mu.Lock()
	d.ips = ips
	d.mu.Unlock()
}

// twinBackends starts backends on 127.0.0.1:P and 127.0.0.2:P (one port, two addresses) answering their name.
func twinBackends(t *testing.T) int {
	t.Helper()
	h := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	for range 50 {
		port := freePort(t)
		l1, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
		if err != nil {
			l1.Close()
			continue
		}
		for i, l := range []net.Listener{l1, l2} {
			srv := &http.Server{Handler: h(fmt.Sprintf("ip%d", i+1))}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
		}
		return port
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return 0
}

func TestUpstreamResolve(t *testing.T) {
	t.Parallel()
	bport := twinBackends(t)
	d := newDNSServer(t, "app.test", "127.0.0.1")
	_, port := startPool(t, fmt.Sprintf("resolver %s valid=200ms; server app.test:%d resolve;", d.addr, bport), "")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for range 3 {
		if status, body, _ := fetch(t, http.DefaultClient, "GET", url, nil); status != 200 || body != "ip1" {
			t.Fatalf("got %d %q, want ip1 (app.test -> 127.0.0.1)", status, body)
		}
	}
	// the name moves: requests follow without a reload
	d.set("127.0.0.2")
	if !eventually(5*time.Second, func() bool {
		_, body, _ := fetch(t, http.DefaultClient, "GET", url, nil)
		return body == "ip2"
	}) {
		t.Fatal("requests never followed app.test to 127.0.0.2")
	}
	for range 3 {
		if _, body, _ := fetch(t, http.DefaultClient, "GET", url, nil); body != "ip2" {
			t.Fatalf("after the move got %q", body)
		}
	}
	// two addresses: both serve
	d.set("127.0.0.1", "127.0.0.2")
	seen := map[string]bool{}
	if !eventually(5*time.Second, func() bool {
		_, body, _ := fetch(t, http.DefaultClient, "GET", url, nil)
		seen[body] = true
		return seen["ip1"] && seen["ip2"]
	}) {
		t.Fatalf("with two addresses only %v served", seen)
	}
}

// TestUpstreamResolveIPv6Off: resolver ipv6=off leaves the name's AAAA answer out of the peers. The name also
// resolves to ::1, where nothing listens on the port: without ipv6=off a request tries [::1] (and goes on to
// 127.0.0.1), with it no request ever does.
func TestUpstreamResolveIPv6Off(t *testing.T) {
	t.Parallel()
	bport := twinBackends(t)
	d := newDNSServer(t, "app.test", "127.0.0.1", "::1")
	tried := func(resolver string) map[string]bool {
		_, port := startPool(t, fmt.Sprintf("resolver %s %s; server app.test:%d resolve;", d.addr, resolver, bport), "")
		seen := map[string]bool{}
		for range 6 {
			status, body, h := fetch(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
			if status != 200 || body != "ip1" {
				t.Fatalf("resolver %s: got %d %q, want ip1", resolver, status, body)
			}
			for _, a := range strings.Split(h.Get("X-Upstream-Addr"), ", ") {
				seen[a] = true
			}
		}
		return seen
	}
	if seen := tried("valid=1h"); !seen[fmt.Sprintf("[::1]:%d", bport)] {
		t.Fatalf("without ipv6=off the AAAA peer was never tried (tried %v): the test would prove nothing", seen)
	}
	if seen := tried("valid=1h ipv6=off"); len(seen) != 1 || !seen[fmt.Sprintf("127.0.0.1:%d", bport)] {
		t.Fatalf("with ipv6=off the peers tried were %v, want only 127.0.0.1:%d", seen, bport)
	}
}
