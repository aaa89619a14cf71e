package config

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/certs"
	"github.com/sluice-proxy/sluice/internal/vars"
	"golang.org/x/crypto/ocsp"
)

// SelfSignedKeyword is the ssl_certificate value that makes sluice generate and keep a self-signed certificate
// under the prefix (used by the built-in default configuration).
const SelfSignedKeyword = "self-signed"

// ACMEKeyword is the ssl_certificate value for a certificate obtained and renewed from an ACME CA.
const ACMEKeyword = "acme"

// InternalKeyword is the ssl_certificate value for a certificate issued by sluice's internal CA (development).
const InternalKeyword = "internal"

// sslDirectives are nginx's ngx_http_ssl_module directives that sluice implements.
var sslDirectives = []Spec{
	{Name: "ssl_certificate", Module: "http_ssl", Ctx: CtxHTTP | CtxServer | ctxStream, Args: "1", Doc: "PEM certificate (chain) of the server; several may be given (e.g. RSA and ECDSA). `self-signed` generates one under the prefix; `internal` has the server's names (its `server_name`s, else localhost and the loopback addresses) certified by a local CA kept under the prefix in certs/ca (`sluice ca-cert` prints its root to trust); `acme` obtains and renews one for the server_names from an ACME CA (see acme_ca); none of them needs ssl_certificate_key.",
		Diff: "the `self-signed`, `internal` and `acme` keywords are sluice only; paths with variables are not supported.",
		Apply: func(p *parser, d *Directive) error {
			ssl := &p.sc.SSL
			if !ssl.certSet {
				ssl.Certificates = nil
				ssl.certSet = true
			}
			c := CertPair{Cert: p.confPath(d.Args[0]), Pos: d.Pos}
			switch d.Args[0] {
			case SelfSignedKeyword:
				c = CertPair{SelfSigned: true, Pos: d.Pos}
			case InternalKeyword:
				c = CertPair{Internal: true, Pos: d.Pos}
			case ACMEKeyword:
				c = CertPair{ACME: true, Pos: d.Pos}
			}
			ssl.Certificates = append(ssl.Certificates, c)
			return nil
		}},
	{Name: "ssl_password_file", Module: "http_ssl", Ctx: CtxHTTP | CtxServer | ctxStream, Args: "1", Doc: "File of passphrases for encrypted ssl_certificate_key files (PEM \"ENCRYPTED PRIVATE KEY\" PKCS#8, or a key with Proc-Type: 4,ENCRYPTED), one a line, tried in turn; read at load and reload. A key none of them opens is a load error.",
		Apply: func(p *parser, d *Directive) error { return p.passwordFile(d, &p.sc.SSL.Passwords) }},
	{Name: "ssl_certificate_key", Module: "http_ssl", Ctx: CtxHTTP | CtxServer | ctxStream, Args: "1", Doc: "PEM private key for the ssl_certificate in the same position.",
		Apply: func(p *parser, d *Directive) error {
			ssl := &p.sc.SSL
			if !ssl.keysSet {
				ssl.keys = nil
				ssl.keysSet = true
			}
			ssl.keys = append(ssl.keys, p.confPath(d.Args[0]))
			return nil
		}},
	{Name: "ssl_protocols", Module: "http_ssl", Ctx: CtxHTTP | CtxServer | ctxStream, Args: "1+", Default: "TLSv1.2 TLSv1.3", Doc: "TLS versions accepted.",
		Diff:  "SSLv2/SSLv3 are refused; TLSv1 and TLSv1.1 are accepted if listed.",
		Apply: func(p *parser, d *Directive) error { p.sc.SSL.Protocols.set(d.Args); return nil }},
	{Name: "ssl_ciphers", Module: "http_ssl", Ctx: CtxHTTP | CtxServer | ctxStream, Args: "1", Default: "HIGH:!aNULL:!MD5", Doc: "OpenSSL cipher list, mapped to Go's TLS 1.2 suites.",
		Diff:  "the default (and any list meaning the same) is ECDHE with AEAD ciphers only (AES-GCM, ChaCha20-Poly1305; no CBC); TLS 1.3 suites are not configurable (Go's choice); unknown or insecure names are skipped with a warning.",
		Apply: func(p *parser, d *Directive) error { p.sc.SSL.Ciphers.set(d.Args[0]); return nil }},
	{Name: "ssl_session_timeout", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "5m", Doc: "Lifetime of a session in ssl_session_cache.", Diff: "sessions resumed with encrypted tickets (ssl_session_tickets on) live as long as Go lets them (at most 7 days).",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.sc.SSL.SessionTimeout) }},
	{Name: "ssl_session_ticket_key", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "A file of 48 or 80 random bytes whose key encrypts (the first such line) or only decrypts (the others) TLS session tickets, so sessions resume across sluice instances sharing the files and across reloads; rotate by adding a new file first. Read from the default server of each address.",
		Diff:  "tickets are Go's format (its key is derived from the file's bytes), so sessions do not resume between sluice and nginx sharing a file.",
		Apply: func(p *parser, d *Directive) error { add(&p.sc.SSL.TicketKeys, p.pathAt(d)); return nil }},
	{Name: "ssl_reject_handshake", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "off", Doc: "Refuses every TLS handshake that selects this server (by SNI, or as the default server for unknown and missing names), so the certificates of other servers are never shown to a client that does not name them. Such a server needs no ssl_certificate.",
		Diff:  "the handshake fails with an internal_error alert (Go's crypto/tls); nginx sends unrecognized_name.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.sc.SSL.Reject) }},
	{Name: "ssl_early_data", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "off", Doc: "Accepted; TLS 1.3 early data (0-RTT) is never accepted, so clients send their first request after the handshake (replay-safe; Go's crypto/tls has no server-side 0-RTT). $ssl_early_data is always empty.",
		Apply: func(p *parser, d *Directive) error { _, err := p.onOff(d); return err }},
	{Name: "ssl_session_tickets", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "on", Doc: "Resume TLS sessions with tickets.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.sc.SSL.SessionTickets) }},
	{Name: "ssl_buffer_size", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "16k", Doc: "Size of the TLS records that carry responses. The default sends full-size (16 KiB) records, one write and one encryption per record; a smaller value is a request for a faster first byte on slow links.",
		Diff: "a value below 16k turns on Go's dynamic record sizing (records of about one TCP segment at the start of a connection, growing to 16 KiB) rather than records of exactly that size; the socket's default server decides, as for ssl_protocols.",
		Apply: func(p *parser, d *Directive) error {
			v, err := p.size(d, d.Args[0])
			p.sc.SSL.BufferSize.set(v)
			return err
		}},
	{Name: "ssl_stapling", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "off", Doc: "Staples OCSP responses to handshakes, for certificate files (whose chain must hold the issuer) and `ssl_certificate acme` ones, when the certificate names an OCSP responder; responses are fetched in the background, cached under acme_storage and refreshed before they expire.",
		Diff:  "ssl_stapling_verify is accepted and ignored, and ssl_trusted_certificate serves only client certificates: the issuer of the server's own certificate is taken from its chain.",
		Apply: func(p *parser, d *Directive) error { return p.setBool(d, &p.sc.SSL.Stapling) }},
	{Name: "ssl_stapling_file", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "With ssl_stapling on, the DER OCSP response in this file is stapled to the handshakes of the server's certificate files as it is, and no responder is asked (as nginx, which does not check the response either). Read at start and reload: keep it fresh yourself (openssl ocsp -respout).",
		Apply: func(p *parser, d *Directive) error {
			der, err := os.ReadFile(p.confPath(d.Args[0]))
			if err != nil {
				return d.errorf("%q directive: %v", d.Name, err)
			}
			var re ocsp.ResponseError
			if _, err := ocsp.ParseResponse(der, nil); err != nil && !errors.As(err, &re) {
				e := d.errorf("%q directive: %s is not a DER OCSP response", d.Name, d.Args[0])
				e.Hint = "write the response in DER form, as openssl ocsp -respout does"
				return e
			}
			p.sc.SSL.StaplingFile.set(der)
			return nil
		}},
	{Name: "ssl_stapling_responder", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "Refused: OCSP staples are fetched from the responder the certificate names.",
		Apply: func(p *parser, d *Directive) error {
			e := d.errorf("\"ssl_stapling_responder\" is not supported")
			e.Hint = "sluice asks the responder named in the certificate (its Authority Information Access); to staple another responder's answer, fetch it with openssl ocsp -respout and name the file with ssl_stapling_file"
			return e
		}},
	{Name: "ssl_ocsp", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "off", Doc: "Only off is accepted: OCSP checks of client certificates are not implemented.",
		Diff: "on and leaf are refused at load; ssl_crl checks client certificates against revocation lists.",
		Apply: func(p *parser, d *Directive) error {
			return offOnly(d, []string{"on", "leaf"}, "OCSP checks of client certificates are not implemented; revoke them with ssl_crl (a CRL from the issuing CA)")
		}},
	{Name: "ssl_ocsp_responder", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted; it acts only with ssl_ocsp on, which is refused."},
	{Name: "ssl_ocsp_cache", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1-2", Ignored: true, Doc: "Accepted; it acts only with ssl_ocsp on, which is refused."},
	{Name: "ssl_verify_client", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "off", Doc: "Client certificates (mutual TLS): `on` asks for one and requires it to verify against ssl_client_certificate (and ssl_trusted_certificate); `optional` asks and verifies one if given; `optional_no_ca` asks and lets a certificate whose issuer is unknown pass (other failures, such as expiry, still do not). The handshake succeeds either way, as in nginx: a request without the required certificate gets 400 \"No required SSL certificate was sent\" (error_page 496), one whose certificate failed gets 400 \"The SSL certificate error\" (error_page 495). The server chosen by SNI decides whether a certificate is asked for and how it is verified; the server chosen by Host decides whether the request needs one, and with a certificate check it must be the server the SNI name chose (else 421). $ssl_client_verify and the other $ssl_client_* variables tell the result, also to upstreams (proxy_set_header).",
		Diff: "verification is Go's x509 parsing with OpenSSL's rules and failure texts (the last failure found is reported, as in nginx); name constraints, path length constraints and policy extensions are not checked.",
		Apply: func(p *parser, d *Directive) error {
			modes := map[string]certs.VerifyMode{"off": certs.VerifyOff, "on": certs.VerifyOn, "optional": certs.VerifyOptional, "optional_no_ca": certs.VerifyOptionalNoCA}
			m, ok := modes[d.Args[0]]
			if !ok {
				return d.errorf("invalid value %q in %q directive, it must be \"on\", \"off\", \"optional\" or \"optional_no_ca\"", d.Args[0], d.Name)
			}
			p.sc.SSL.VerifyClient.set(m)
			p.sc.SSL.VerifyPos = d.Pos
			return nil
		}},
	{Name: "ssl_client_certificate", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "PEM CA certificates that client certificates must chain to (ssl_verify_client); their names are sent to clients as the acceptable CAs. Required with ssl_verify_client on or optional.",
		Apply: func(p *parser, d *Directive) error { p.sc.SSL.ClientCertificate.set(p.pathAt(d)); return nil }},
	{Name: "ssl_trusted_certificate", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "More PEM CA certificates trusted for client certificates, whose names are not sent to clients.",
		Diff:  "not used for OCSP stapling (see ssl_stapling).",
		Apply: func(p *parser, d *Directive) error { p.sc.SSL.TrustedCertificate.set(p.pathAt(d)); return nil }},
	{Name: "ssl_verify_depth", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "1", Doc: "How many intermediate CA certificates may stand between a client certificate and a trusted CA (0: issued by the CA itself).",
		Apply: func(p *parser, d *Directive) error {
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n < 0 {
				return d.errorf("%q directive invalid number", d.Name)
			}
			p.sc.SSL.VerifyDepth.set(n)
			return nil
		}},
	{Name: "ssl_crl", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "PEM certificate revocation lists (CRLs) for client certificates. With it, every certificate of a client's chain needs a current CRL from its issuer in the file: a revoked one fails with \"certificate revoked\", one without \"unable to get certificate CRL\", as nginx's OpenSSL checks (X509_V_FLAG_CRL_CHECK_ALL). Read at start and reload.",
		Apply: func(p *parser, d *Directive) error { p.sc.SSL.CRL.set(p.pathAt(d)); return nil }},
	{Name: "acme_ca", Module: "acme", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "https://acme-v02.api.letsencrypt.org/directory", Doc: "ACME directory URL the `ssl_certificate acme` certificates come from (Let's Encrypt by default; a private CA such as step-ca or Pebble).",
		Diff:  "sluice only (nginx needs certbot or the njs acme module).",
		Apply: func(p *parser, d *Directive) error { p.sc.SSL.ACMECA.set(d.Args[0]); return nil }},
	{Name: "acme_email", Module: "acme", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "Contact address given to the ACME CA for the account (expiry notices).", Diff: "sluice only.",
		Apply: func(p *parser, d *Directive) error { p.sc.SSL.ACMEEmail.set(d.Args[0]); return nil }},
	{Name: "acme_ca_root", Module: "acme", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "PEM file of root certificates to trust for the ACME CA's own HTTPS (a private CA); the system roots otherwise.", Diff: "sluice only.",
		Apply: func(p *parser, d *Directive) error { p.sc.SSL.ACMECARoot.set(p.confPath(d.Args[0])); return nil }},
	{Name: "acme_storage", Module: "acme", Ctx: CtxHTTP, Args: "1", Default: "acme", Doc: "Directory (relative to the prefix) keeping ACME accounts, certificates and keys (0700, files 0600). Several sluice nodes may share it: locks there make one of them obtain each certificate. Read at start; a reload keeps the directory in use.", Diff: "sluice only.",
		Apply: func(p *parser, d *Directive) error { p.sc.SSL.ACMEStorage.set(p.path(d.Args[0])); return nil }},
	{Name: "acme_renew_interval", Module: "acme", Ctx: CtxHTTP, Args: "1", Default: "10m", Doc: "How often ACME certificates are checked; one is renewed when a third of its lifetime is left (failures retried with backoff). Read at start.", Diff: "sluice only.",
		Apply: func(p *parser, d *Directive) error { return p.setDur(d, &p.sc.SSL.ACMERenew) }},
	{Name: "ssl_session_cache", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1-2", Default: "none", Doc: "A server-side cache of TLS sessions: off, none, builtin[:N] (N sessions, default 20480) or shared:NAME:SIZE (about 4000 sessions a megabyte, as in nginx; kept across reloads by name). With ssl_session_tickets off, clients resume their sessions from it for ssl_session_timeout: the ticket a client holds is only the session's random name, so no ticket key can decrypt past sessions. Read from the default server of each address.",
		Diff:  "Go's TLS has no session IDs: the cache resumes sessions through such stateful tickets, which every current client supports; with ssl_session_tickets on (the default) sessions resume with Go's encrypted tickets and the cache is not used. A shared cache is shared by the addresses of one sluice process, not between processes.",
		Apply: (*parser).sslSessionCache},
	{Name: "ssl_prefer_server_ciphers", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted; Go chooses the cipher order."},
	{Name: "ssl_dhparam", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted; Go has no finite-field DHE suites."},
	{Name: "ssl_ecdh_curve", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Default: "auto", Doc: "The key exchange groups offered, in order: auto, or a list such as X25519:prime256v1:secp384r1 (X25519, prime256v1, secp384r1, secp521r1, X25519MLKEM768). Read from the default server of each address.",
		Diff: "auto is Go's list, which puts the post-quantum X25519MLKEM768 first; a name Go does not offer is refused at load.",
		Apply: func(p *parser, d *Directive) error {
			ids, err := certs.Curves(d.Args[0])
			if err != nil {
				return d.errorf("invalid value %q in \"ssl_ecdh_curve\" directive: %v", d.Args[0], err)
			}
			p.sc.SSL.Curves.set(ids)
			return nil
		}},
	{Name: "ssl", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Doc: "Obsolete nginx form of `listen … ssl`; `ssl on` makes every listen of the server TLS.",
		Apply: func(p *parser, d *Directive) error {
			on, err := p.onOff(d)
			if err == nil && on && p.srv != nil {
				p.srv.sslOn = true
			}
			return err
		}},
}

// pathAt is the file d names (relative to the configuration's directory, as nginx's ssl_* files) and where.
func (p *parser) pathAt(d *Directive) PathAt { return PathAt{Path: p.confPath(d.Args[0]), Pos: d.Pos} }

// checkClientVerify refuses ssl_verify_client on or optional without CAs on a TLS server, as nginx does.
func checkClientVerify(s *Server) error {
	ssl := &s.Srv.SSL
	if m := ssl.VerifyClient.V; (m != certs.VerifyOn && m != certs.VerifyOptional) || ssl.ClientCertificate.Set {
		return nil
	}
	for _, l := range s.Listens {
		if l.SSL || l.QUIC {
			e := ssl.VerifyPos.errorf("no ssl_client_certificate for ssl_verify_client")
			e.Hint = "add `ssl_client_certificate FILE;` with the CA certificates the clients' certificates are issued by"
			return e
		}
	}
	return nil
}

// passwordFile reads ssl_password_file or proxy_ssl_password_file into o.
func (p *parser) passwordFile(d *Directive, o *Opt[certs.Passphrases]) error {
	name := p.confPath(d.Args[0])
	b, err := os.ReadFile(name)
	if err != nil {
		return d.errorf("cannot open %q: %v", name, errors.Unwrap(err))
	}
	o.set(certs.Passphrases{File: name, Lines: passwordLines(string(b))})
	return nil
}

// passwordLines splits an ssl_password_file as nginx does: a passphrase a line, a CR before the LF dropped and
// nothing else trimmed (an empty line is the empty passphrase, an empty file one empty passphrase).
func passwordLines(text string) []string {
	text = strings.TrimSuffix(text, "\n")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// sslSessionCache parses ssl_session_cache: off, none, builtin[:N], shared:NAME:SIZE, or builtin and shared
// together (shared is used then).
func (p *parser) sslSessionCache(d *Directive) error {
	sc := SessionCache{}
	bad := func(a string) *Error { return d.errorf("invalid session cache %q", a) }
	for _, a := range d.Args {
		switch {
		case a == "off" || a == "none":
			sc.Off = sc.Name == ""
		case a == "builtin" || strings.HasPrefix(a, "builtin:"):
			n := 20480
			if a != "builtin" {
				var err error
				if n, err = strconv.Atoi(a[len("builtin:"):]); err != nil || n < 0 {
					return bad(a)
				}
			}
			if sc.Name == "" {
				sc.Off, sc.Sessions = n == 0, n
			}
		case strings.HasPrefix(a, "shared:"):
			name, size, ok := strings.Cut(a[len("shared:"):], ":")
			if !ok || name == "" {
				return bad(a)
			}
			n, err := vars.ParseSize(size)
			if err != nil || n < 8<<10 {
				e := d.errorf("session cache %q is too small", a)
				if err != nil {
					e = bad(a)
				}
				return e
			}
			sc.Off, sc.Name, sc.Sessions = false, name, int(max(n/256, 1)) // nginx: about 4000 sessions a megabyte
		default:
			return bad(a)
		}
	}
	p.sc.SSL.SessionCache.set(sc)
	return nil
}
