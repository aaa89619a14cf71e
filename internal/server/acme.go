package server

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/acme"
	"github.com/sluice-proxy/sluice/internal/config"
)

// acmeTLSALPN is the ALPN protocol of TLS-ALPN-01 validation handshakes (RFC 8737).
const acmeTLSALPN = "acme-tls/1"

// acmeCertificate is the handshake-time certificate source of servers with ssl_certificate acme.
func (snap *snapshot) acmeCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if snap.acmeMgr == nil {
		return nil, errors.New("acme: certificates are not managed yet")
	}
	return snap.acmeMgr.GetCertificate(hello)
}

// acmeSite describes the ACME certificate of srv, served on the TLS address tlsAddr. The HTTP-01 challenge is
// answered on plain listeners (the server's first one, else any server's on port 80; its address is given to
// certmagic, whose own solver then finds it taken by sluice), TLS-ALPN-01 on tlsAddr.
func acmeSite(srv *config.Server, all []*config.Server, cp config.CertPair, tlsAddr string) (acme.Site, error) {
	ssl := srv.Srv.SSL
	site := acme.Site{CA: ssl.ACMECA.Get(acme.DefaultCA), Email: ssl.ACMEEmail.V, CARoot: ssl.ACMECARoot.V, Stapling: ssl.Stapling.Get(false), TLSAddr: tlsAddr}
	if _, err := acme.LoadRoots(site.CARoot); err != nil {
		return site, &config.Error{File: cp.Pos.File, Line: cp.Pos.Line, Msg: err.Error()}
	}
	site.HTTPAddr = plainAddr(srv.Listens)
	if site.HTTPAddr == "" {
		// the usual `server { listen 80; return 301 https://…; }` beside the TLS server: challenges are answered
		// before routing, so a port-80 listener of any server will do
		for _, other := range all {
			for _, l := range other.Listens {
				if _, port, _ := net.SplitHostPort(l.Addr); port == "80" && !l.SSL && !l.QUIC {
					site.HTTPAddr = l.Addr
				}
			}
		}
	}
	for _, n := range srv.Names {
		switch {
		case n == "" || n == "_" || n[0] == '~' || n == "$hostname" || strings.Contains(n, "*") || n[0] == '.':
			continue // ACME certifies host names; wildcards need DNS-01, which sluice does not do
		case net.ParseIP(n) != nil:
			continue
		}
		site.Names = append(site.Names, n)
	}
	if len(site.Names) == 0 {
		return site, &config.Error{File: cp.Pos.File, Line: cp.Pos.Line, Msg: "ssl_certificate acme needs a server_name with a host name (wildcards and regexes cannot be validated over HTTP)"}
	}
	return site, nil
}

// plainAddr is the first plain (not TLS, not QUIC) listen address, "" for none.
func plainAddr(ls []config.Listen) string {
	for _, l := range ls {
		if !l.SSL && !l.QUIC {
			return l.Addr
		}
	}
	return ""
}

// startACME hands snap's ACME sites to the manager (created on first use), which obtains and renews their
// certificates in the background. s.mu is held.
func (s *Server) startACME(snap *snapshot) {
	if len(snap.acmeSites) == 0 && len(snap.stapled) == 0 {
		if s.acme != nil {
			s.acme.Manage(nil) // stop renewing names no longer configured
		}
		return
	}
	if s.acme == nil {
		ssl := snap.cfg.HTTP.Srv.SSL
		storage := ssl.ACMEStorage.Get(filepath.Join(snap.cfg.Prefix, "acme"))
		m, err := acme.New(storage, ssl.ACMERenew.V, s.log)
		if err != nil {
			s.log.Error("acme: storage " + strconv.Quote(storage) + ": " + err.Error())
			return
		}
		s.acme = m
	}
	snap.acmeMgr = s.acme
	if err := s.acme.Manage(snap.acmeSites); err != nil {
		s.log.Error("acme: " + err.Error())
	}
	if len(snap.stapled) > 0 {
		go s.acme.Staple(snap.stapled) // responders are asked in the background; handshakes staple once answered
	}
}

// stapledFromFile is ssl_stapling_file: copies of a server's certificate files carrying the file's OCSP
// response, which is stapled as it is (no responder is asked).
func stapledFromFile(list []*tls.Certificate, der []byte) []*tls.Certificate {
	out := make([]*tls.Certificate, len(list))
	for i, c := range list {
		cc := *c
		cc.OCSPStaple = der
		out[i] = &cc
	}
	return out
}

// stapling returns the handshake-time source of a server's certificate files with ssl_stapling on: the
// certificate the client supports (as the selector picks), with its current OCSP staple.
func (snap *snapshot) stapling(list []*tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	keys := make([][32]byte, len(list))
	for i, c := range list {
		keys[i] = sha256.Sum256(c.Certificate[0])
	}
	snap.stapled = append(snap.stapled, list...)
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		i := 0
		if len(list) > 1 {
			for j, c := range list {
				if hello.SupportsCertificate(c) == nil {
					i = j
					break
				}
			}
		}
		if snap.acmeMgr == nil {
			return list[i], nil
		}
		return snap.acmeMgr.Stapled(list[i], keys[i]), nil
	}
}
