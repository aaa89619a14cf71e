package access

import (
	"net/http"
	"net/netip"
	"strings"
)

// RealIP is the realip module's settings: which peers are trusted to report the client's address, and where.
type RealIP struct {
	From      []netip.Prefix // set_real_ip_from
	Header    string         // real_ip_header: "X-Real-IP" (default), "X-Forwarded-For", "proxy_protocol" or any header
	Recursive bool           // real_ip_recursive
}

// Trusted reports whether a is one of the configured proxies.
func (ri *RealIP) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ri.From {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client address for a request from peer: the address the trusted proxy reported, or peer
// itself when peer is not trusted or reported nothing usable. proxied is the address from the connection's
// PROXY protocol header (zero when there was none). Nothing a client sends changes the address unless its
// peer is trusted.
func (ri *RealIP) Client(peer netip.AddrPort, h http.Header, proxied netip.AddrPort) netip.AddrPort {
	if ri == nil || len(ri.From) == 0 || !ri.Trusted(peer.Addr()) {
		return peer
	}
	switch {
	case strings.EqualFold(ri.Header, "proxy_protocol"):
		if proxied.IsValid() {
			return netip.AddrPortFrom(proxied.Addr().Unmap(), proxied.Port())
		}
		return peer
	case strings.EqualFold(ri.Header, "X-Forwarded-For"):
		return ri.forwarded(peer, h.Values("X-Forwarded-For"))
	}
	name := ri.Header
	if name == "" {
		name = "X-Real-IP"
	}
	v := strings.TrimSpace(h.Get(name))
	if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 0)
	}
	return peer
}

// forwarded walks X-Forwarded-For from the right as nginx does: without recursion the last address is the
// client; with it, trusted addresses are skipped and the first untrusted one (or the leftmost) is the client.
func (ri *RealIP) forwarded(peer netip.AddrPort, values []string) netip.AddrPort {
	var list []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			list = append(list, strings.TrimSpace(part))
		}
	}
	found := peer
	for i := len(list) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(list[i])
		if err != nil || a.Zone() != "" {
			return found // a malformed hop ends the walk: what is left of it is not trustworthy
		}
		found = netip.AddrPortFrom(a.Unmap(), 0)
		if !ri.Recursive || !ri.Trusted(a) {
			return found
		}
	}
	return found
}
