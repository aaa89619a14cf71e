package config

import (
	"strconv"
	"strings"

	"github.com/sluice-proxy/sluice/internal/certs"
)

// upstreamSSLDirectives declares the TLS directives toward upstreams of one module: prefix_ssl_verify and the
// rest, for the scheme named (https:// for proxy_pass, grpcs:// for grpc_pass); field picks the level's
// settings. One table serves proxy_ssl_* and grpc_ssl_*, which nginx defines alike.
func upstreamSSLDirectives(prefix, module, scheme, nameDefault string, field func(*LocConf) *UpstreamSSL) []Spec {
	up := scheme + " upstreams"
	return []Spec{
		{Name: prefix + "_ssl_verify", Module: module, Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Verify the certificate of " + up + ".",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &field(p.conf).Verify) }},
		{Name: prefix + "_ssl_verify_depth", Module: module, Ctx: ctxHSL, Args: "1", Doc: "How many intermediate CA certificates may stand between the certificate of " + up + " and a trusted CA (0: issued by the CA itself), with " + prefix + "_ssl_verify on.",
			Diff: "nginx's default, 1, is enforced only when the directive is set: without it any chain that verifies is accepted, as sluice did before it read this directive (a chain with two intermediates would start failing).",
			Apply: func(p *parser, d *Directive) error {
				n, err := strconv.Atoi(d.Args[0])
				if err != nil || n < 0 {
					return d.errorf("%q directive invalid number", d.Name)
				}
				field(p.conf).VerifyDepth.set(n)
				return nil
			}},
		{Name: prefix + "_ssl_crl", Module: module, Ctx: ctxHSL, Args: "1", Doc: "PEM certificate revocation lists (CRLs) checked with " + prefix + "_ssl_verify on: every certificate of the chain of " + up + " needs a current CRL from its issuer in the file, as ssl_crl for client certificates. Read at start and reload.",
			Apply: func(p *parser, d *Directive) error {
				crls, err := certs.LoadCRLs(p.confPath(d.Args[0]))
				if err != nil {
					return d.errorf("%q directive: %v", d.Name, err)
				}
				field(p.conf).CRL.set(crls)
				return nil
			}},
		{Name: prefix + "_ssl_trusted_certificate", Module: module, Ctx: ctxHSL, Args: "1", Doc: "PEM CA certificates used to verify " + up + ".",
			Apply: func(p *parser, d *Directive) error { field(p.conf).Trusted.set(p.confPath(d.Args[0])); return nil }},
		{Name: prefix + "_ssl_server_name", Module: module, Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Send SNI to " + up + ".",
			Apply: func(p *parser, d *Directive) error { return p.setBool(d, &field(p.conf).ServerName) }},
		{Name: prefix + "_ssl_name", Module: module, Ctx: ctxHSL, Args: "1", Default: nameDefault, Doc: "Name used for SNI and certificate verification of " + up + ".",
			Diff: nameDiff(prefix),
			Apply: func(p *parser, d *Directive) error {
				if prefix == "grpc" && strings.Contains(d.Args[0], "$") {
					// a location's connections to its gRPC servers are kept, and made with one name
					return d.errorf("variables in \"grpc_ssl_name\" are not supported")
				}
				return p.setTemplate(d, &field(p.conf).Name)
			}},
		{Name: prefix + "_ssl_certificate", Module: module, Ctx: ctxHSL, Args: "1", Doc: "Client certificate presented to " + up + ".",
			Apply: func(p *parser, d *Directive) error { field(p.conf).Certificate.set(p.confPath(d.Args[0])); return nil }},
		{Name: prefix + "_ssl_certificate_key", Module: module, Ctx: ctxHSL, Args: "1", Doc: "Key of " + prefix + "_ssl_certificate (encrypted: see " + prefix + "_ssl_password_file).",
			Apply: func(p *parser, d *Directive) error {
				field(p.conf).CertificateKey.set(p.confPath(d.Args[0]))
				return nil
			}},
		{Name: prefix + "_ssl_password_file", Module: module, Ctx: ctxHSL, Args: "1", Doc: "File of passphrases for an encrypted " + prefix + "_ssl_certificate_key, one a line, tried in turn (as ssl_password_file).",
			Apply: func(p *parser, d *Directive) error { return p.passwordFile(d, &field(p.conf).Passwords) }},
		{Name: prefix + "_ssl_ciphers", Module: module, Ctx: ctxHSL, Args: "1", Default: "DEFAULT", Doc: "TLS 1.2 cipher suites toward " + up + ", in OpenSSL's list syntax, mapped onto Go's suites as ssl_ciphers is.",
			Diff: "TLS 1.3 suites are not configurable (Go's choice), as for ssl_ciphers.",
			Apply: func(p *parser, d *Directive) error {
				ids, _, err := certs.CipherSuites(d.Args[0])
				if err != nil {
					return d.errorf("invalid value %q in %q directive: %v", d.Args[0], d.Name, err)
				}
				field(p.conf).Ciphers.set(ids)
				return nil
			}},
		{Name: prefix + "_ssl_protocols", Module: module, Ctx: ctxHSL, Args: "1+", Default: "TLSv1.2 TLSv1.3", Doc: "TLS versions toward " + up + ".",
			Apply: func(p *parser, d *Directive) error { field(p.conf).Protocols.set(d.Args); return nil }},
	}
}

func nameDiff(prefix string) string {
	if prefix == "grpc" {
		return "variables are not supported (refused at load): a location's connections to its gRPC servers are kept and made with one name."
	}
	return ""
}
