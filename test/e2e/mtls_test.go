package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/certs"
)

// The expected values in this file are what Debian's nginx 1.22.1 (OpenSSL 3) answered for the same
// configurations and the same kinds of certificates, run side by side with sluice and asked with curl
// --cert/--key and openssl s_client:
//   - a missing required certificate: 400 with the "No required SSL certificate was sent" page, Connection: close;
//     a certificate that failed: 400 with "The SSL certificate error" page; the handshake succeeds either way;
//   - $ssl_client_verify: SUCCESS, NONE, or FAILED: and OpenSSL's text ("certificate has expired", "unable to
//     verify the first certificate" for a leaf of an unknown CA, "self-signed certificate", "certificate revoked",
//     "unable to get local issuer certificate" past ssl_verify_depth, whose default 1 allows one intermediate);
//   - optional_no_ca lets an unknown issuer pass (FAILED:… in the variable) but answers 495 to an expired one;
//   - $ssl_client_s_dn in RFC 2253 order, last attribute first, UTF-8 bytes as \XX, "," "+" and '"' escaped:
//     emailAddress=zoe@example.com,CN=Zo\C3\AB\, \"Client\",OU=Dev,O=Acme\+Co,L=K\C3\B6ln,C=DE;
//     $ssl_client_i_dn "CN=Test Root,O=Test"; $ssl_client_serial "0ABCDEF012" (upper case, whole bytes);
//     $ssl_client_fingerprint lower-case SHA-1 hex; $ssl_client_v_start "Jan  5 03:04:05 2024 GMT";
//     $ssl_client_v_remain whole days ("10" for 10 days and an hour);
//   - $ssl_client_escaped_cert: the PEM with " " as %20, line breaks as %0A, "/" %2F, "+" %2B, "=" %3D;
//     $ssl_client_cert: the PEM without its last line break, every other one followed by a tab;
//   - with SNI, the server the SNI name chose asks for the certificate (and names only its ssl_client_certificate
//     CAs, not ssl_trusted_certificate's); a Host naming another server with ssl_verify_client gets 421
//     (Connection: close); without SNI, the Host's server decides and, not having asked, answers 496;
//   - error_page 495 496 = @named answers those requests with the named location's status.

// clientPKI is a client CA (with an intermediate) and certificates it issued.
type clientPKI struct {
	root, inter *issuer
	rootPEM     []byte
}

type issuer = certs.TestIssuer

func mintCert(t *testing.T, parent *issuer, tmpl *x509.Certificate) *issuer {
	t.Helper()
	c, err := certs.MintTestCert(parent, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// makeCRL is a PEM CRL of iss, current for a day, revoking the serial numbers given.
func makeCRL(t *testing.T, iss *issuer, revoked ...int64) []byte {
	t.Helper()
	now := time.Now()
	l := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour)}
	for _, n := range revoked {
		l.RevokedCertificateEntries = append(l.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(n), RevocationTime: now})
	}
	der, err := x509.CreateRevocationList(rand.Reader, l, iss.Cert, iss.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func caCert(cn string) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true}
}

func newClientPKI(t *testing.T, rootCN string) *clientPKI {
	p := &clientPKI{root: mintCert(t, nil, caCert(rootCN))}
	p.inter = mintCert(t, p.root, caCert(rootCN+" Inter"))
	p.rootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.root.Cert.Raw})
	return p
}

// client issues a client certificate from parent (with the chain above it up to, not including, the root).
func (p *clientPKI) client(t *testing.T, parent *issuer, tmpl *x509.Certificate) tls.Certificate {
	c := mintCert(t, parent, tmpl)
	tc := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	if parent == p.inter {
		tc.Certificate = append(tc.Certificate, p.inter.Cert.Raw)
	}
	return tc
}

func clientTmpl(cn string, serial int64, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}

// certClient is a TLS client config that sends cert (none when it is empty) whenever asked, whatever CAs the
// server names, and records the certificate requests.
type certClient struct {
	mu       sync.Mutex
	asked    int
	caNames  [][]byte
	tlsConf  *tls.Config
	sentCert tls.Certificate
}

func newCertClient(ca *testCA, sni string, cert tls.Certificate) *certClient {
	c := &certClient{sentCert: cert}
	c.tlsConf = &tls.Config{RootCAs: ca.Pool(), ServerName: sni, GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c.mu.Lock()
		c.asked++
		c.caNames = cri.AcceptableCAs
		c.mu.Unlock()
		return &c.sentCert, nil
	}}
	return c
}

func (c *certClient) requests() (int, [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked, c.caNames
}

// escapedPEM is $ssl_client_escaped_cert as nginx 1.22 gives it.
func escapedPEM(der []byte) string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return strings.NewReplacer(" ", "%20", "\n", "%0A", "/", "%2F", "+", "%2B", "=", "%3D").Replace(string(p))
}

const (
	page495 = "<title>400 The SSL certificate error</title>"
	page496 = "<title>400 No required SSL certificate was sent</title>"
)

// TestClientCertVerify checks ssl_verify_client on, optional and optional_no_ca, the $ssl_client_* variables
// (returned and passed upstream with proxy_set_header), ssl_verify_depth, ssl_crl and error_page 495/496.
func TestClientCertVerify(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	pki := newClientPKI(t, "Test Root")
	stranger := newClientPKI(t, "Other Root")
	echo := newHTTPEcho(t)
	now := time.Now()

	goodTmpl := clientTmpl("", 0, time.Date(2024, 1, 5, 3, 4, 5, 0, time.UTC), now.Add(10*24*time.Hour+time.Hour))
	goodTmpl.SerialNumber = new(big.Int).SetBytes([]byte{0x0a, 0xbc, 0xde, 0xf0, 0x12})
	goodTmpl.Subject = pkix.Name{CommonName: `Zoë, "Client"`, Organization: []string{"Acme+Co"}, OrganizationalUnit: []string{"Dev"},
		Country: []string{"DE"}, Locality: []string{"Köln"},
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "zoe@example.com"}}}
	good := pki.client(t, pki.root, goodTmpl)
	viaInter := pki.client(t, pki.inter, clientTmpl("via-inter", 0x80, now.Add(-time.Hour), now.Add(48*time.Hour)))
	expired := pki.client(t, pki.root, clientTmpl("expired", 8, now.Add(-48*time.Hour), now.Add(-time.Hour)))
	unknown := stranger.client(t, stranger.root, clientTmpl("stranger", 10, now.Add(-time.Hour), now.Add(48*time.Hour)))
	revoked := pki.client(t, pki.root, clientTmpl("revoked", 15, now.Add(-time.Hour), now.Add(48*time.Hour)))
	crlPEM := append(makeCRL(t, pki.root, 15), makeCRL(t, pki.inter)...)

	on, optional, noCA, withCRL, pages, depth0 := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	conf := fill(t, `error_log stderr info;
events {}
http {
    ssl_certificate     srv.pem;
    ssl_certificate_key srv.key.pem;
    server {
        listen 127.0.0.1:{{ON}} ssl;
        ssl_verify_client on;
        ssl_client_certificate clients.pem;
        location / {
            return 200 "verify=$ssl_client_verify|s_dn=$ssl_client_s_dn|i_dn=$ssl_client_i_dn|serial=$ssl_client_serial|fp=$ssl_client_fingerprint|start=$ssl_client_v_start|end=$ssl_client_v_end|remain=$ssl_client_v_remain";
        }
        location /cert { return 200 "$ssl_client_cert"; }
        location /up/ {
            proxy_pass http://127.0.0.1:{{ECHO}};
            proxy_set_header X-SSL-Client-Verify $ssl_client_verify;
            proxy_set_header X-SSL-Client-S-DN $ssl_client_s_dn;
            proxy_set_header X-SSL-Client-Serial $ssl_client_serial;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
        }
    }
    server {
        listen 127.0.0.1:{{OPTIONAL}} ssl;
        ssl_verify_client optional;
        ssl_client_certificate clients.pem;
        location / { return 200 "verify=$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{NOCA}} ssl;
        ssl_verify_client optional_no_ca;
        location / { return 200 "verify=$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{CRL}} ssl;
        ssl_verify_client on;
        ssl_client_certificate clients.pem;
        ssl_crl clients.crl;
        location / { return 200 "verify=$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PAGES}} ssl;
        ssl_verify_client on;
        ssl_client_certificate clients.pem;
        error_page 495 496 = @bad;
        location @bad { return 403 "bad:$ssl_client_verify"; }
        location / { return 200 "verify=$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{DEPTH0}} ssl;
        ssl_verify_client on;
        ssl_client_certificate clients.pem;
        ssl_verify_depth 0;
        location / { return 200 "verify=$ssl_client_verify"; }
    }
}
`, "ON", on, "OPTIONAL", optional, "NOCA", noCA, "CRL", withCRL, "PAGES", pages, "DEPTH0", depth0, "ECHO", echo.Port)
	opts := append(ca.certFiles(t, "srv", ecdsaP256, "localhost"), withFile("conf/clients.pem", pki.rootPEM), withFile("conf/clients.crl", crlPEM))
	s := start(t, conf, opts...)

	fetch := func(t *testing.T, port int, cert tls.Certificate, path string) response {
		t.Helper()
		c := newCertClient(ca, "localhost", cert)
		return get(t, httpClient(addr(port), c.tlsConf), fmt.Sprintf("https://localhost:%d%s", port, path), nil)
	}
	none := tls.Certificate{}

	t.Run("variables", func(t *testing.T) {
		r := fetch(t, on, good, "/")
		sum := sha1.Sum(good.Leaf.Raw)
		want := `verify=SUCCESS|s_dn=emailAddress=zoe@example.com,CN=Zo\C3\AB\, \"Client\",OU=Dev,O=Acme\+Co,L=K\C3\B6ln,C=DE` +
			`|i_dn=CN=Test Root,O=Test|serial=0ABCDEF012|fp=` + hex.EncodeToString(sum[:]) + `|start=Jan  5 03:04:05 2024 GMT` +
			`|end=` + good.Leaf.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT") + `|remain=10`
		if r.StatusCode != 200 || r.Body != want {
			t.Errorf("got %d\n%s\nnginx:\n%s", r.StatusCode, r.Body, want)
		}
		r = fetch(t, on, viaInter, "/")
		if !strings.Contains(r.Body, "verify=SUCCESS|s_dn=CN=via-inter|i_dn=CN=Test Root Inter,O=Test|serial=80|") {
			t.Errorf("through an intermediate: %d %s", r.StatusCode, r.Body)
		}
		r = fetch(t, on, good, "/cert")
		p := strings.TrimSuffix(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Leaf.Raw})), "\n")
		if want := strings.ReplaceAll(p, "\n", "\n\t"); r.Body != want {
			t.Errorf("$ssl_client_cert = %q, nginx's form %q", r.Body, want)
		}
	})

	t.Run("passed upstream", func(t *testing.T) {
		r := fetch(t, on, good, "/up/x")
		seen := decodeSeen(t, r.Body)
		h := seen.Header
		if h.Get("X-Ssl-Client-Verify") != "SUCCESS" || h.Get("X-Ssl-Client-Serial") != "0ABCDEF012" ||
			h.Get("X-Ssl-Client-S-Dn") != `emailAddress=zoe@example.com,CN=Zo\C3\AB\, \"Client\",OU=Dev,O=Acme\+Co,L=K\C3\B6ln,C=DE` {
			t.Errorf("upstream saw %v", h)
		}
		if got, want := h.Get("X-Ssl-Client-Cert"), escapedPEM(good.Leaf.Raw); got != want {
			t.Errorf("X-SSL-Client-Cert = %q\nnginx's escaping: %q", got, want)
		}
	})

	type expect struct {
		status int
		body   string // the body, or a part of the page
	}
	cases := []struct {
		name string
		port int
		cert tls.Certificate
		want expect
	}{
		{"on, none", on, none, expect{400, page496}},
		{"on, expired", on, expired, expect{400, page495}},
		{"on, unknown CA", on, unknown, expect{400, page495}},
		{"optional, none", optional, none, expect{200, "verify=NONE"}},
		{"optional, good", optional, good, expect{200, "verify=SUCCESS"}},
		{"optional, unknown CA", optional, unknown, expect{400, page495}},
		{"optional_no_ca, unknown CA", noCA, unknown, expect{200, "verify=FAILED:unable to verify the first certificate"}},
		{"optional_no_ca, no CA configured", noCA, good, expect{200, "verify=FAILED:unable to verify the first certificate"}},
		{"optional_no_ca, expired", noCA, expired, expect{400, page495}},
		{"optional_no_ca, none", noCA, none, expect{200, "verify=NONE"}},
		{"crl, good", withCRL, good, expect{200, "verify=SUCCESS"}},
		{"crl, revoked", withCRL, revoked, expect{400, page495}},
		{"crl, intermediate", withCRL, viaInter, expect{200, "verify=SUCCESS"}},
		{"error_page, none", pages, none, expect{403, "bad:NONE"}},
		{"error_page, expired", pages, expired, expect{403, "bad:FAILED:certificate has expired"}},
		{"depth 0, direct", depth0, good, expect{200, "verify=SUCCESS"}},
		{"depth 0, intermediate", depth0, viaInter, expect{400, page495}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := fetch(t, tc.port, tc.cert, "/")
			if r.StatusCode != tc.want.status || !strings.Contains(r.Body, tc.want.body) {
				t.Errorf("got %d %q; nginx: %d %q", r.StatusCode, r.Body, tc.want.status, tc.want.body)
			}
			if tc.want.status == 400 && !r.Close {
				t.Errorf("the connection stays open; nginx closes it (Connection: close)")
			}
		})
	}
	if !eventually(5*time.Second, func() bool {
		return strings.Contains(s.Log(), "client SSL certificate verify error: (10:certificate has expired)") &&
			strings.Contains(s.Log(), "client sent no required SSL certificate")
	}) {
		t.Errorf("error log lacks nginx's messages:\n%s", s.Log())
	}
}

// TestClientCertSNI checks that the server the SNI name chose decides whether a certificate is asked for and
// which CAs are named, that the Host's server decides whether one is required, over HTTP/1.1 and HTTP/2.
func TestClientCertSNI(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	pki := newClientPKI(t, "Test Root")
	other := newClientPKI(t, "Other Root")
	now := time.Now()
	good := pki.client(t, pki.root, clientTmpl("good", 5, now.Add(-time.Hour), now.Add(48*time.Hour)))
	port := freePort(t)
	conf := fill(t, `events {}
http {
    ssl_certificate     srv.pem;
    ssl_certificate_key srv.key.pem;
    server {
        listen 127.0.0.1:{{PORT}} ssl default_server;
        http2 on;
        server_name plain.test;
        location / { return 200 "plain verify=$ssl_client_verify"; }
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name mtls.test;
        ssl_verify_client on;
        ssl_client_certificate clients.pem;
        ssl_trusted_certificate other.pem;
        location / { return 200 "mtls verify=$ssl_client_verify"; }
    }
}
`, "PORT", port)
	opts := append(ca.certFiles(t, "srv", ecdsaP256, "plain.test", "mtls.test"), withFile("conf/clients.pem", pki.rootPEM),
		withFile("conf/other.pem", other.rootPEM))
	start(t, conf, opts...)
	target := addr(port)

	for _, h2 := range []bool{false, true} {
		proto := "HTTP/1.1"
		if h2 {
			proto = "HTTP/2"
		}
		t.Run(proto, func(t *testing.T) {
			get := func(sni, host string, cert tls.Certificate) (response, *certClient) {
				t.Helper()
				c := newCertClient(ca, sni, cert)
				hc := httpClient(target, c.tlsConf)
				hc.Transport.(*http.Transport).ForceAttemptHTTP2 = h2
				r := getURL(t, hc, "https://"+host+"/")
				if h2 && r.ProtoMajor != 2 {
					t.Fatalf("not HTTP/2: %s", r.Proto)
				}
				return r, c
			}
			r, c := get("plain.test", "plain.test", good)
			if asked, _ := c.requests(); r.StatusCode != 200 || r.Body != "plain verify=NONE" || asked != 0 {
				t.Errorf("SNI plain.test: %d %q, asked for a certificate %d times; nginx: 200, not asked", r.StatusCode, r.Body, asked)
			}
			r, c = get("mtls.test", "mtls.test", good)
			asked, names := c.requests()
			if r.StatusCode != 200 || r.Body != "mtls verify=SUCCESS" || asked != 1 {
				t.Errorf("SNI mtls.test: %d %q, asked %d times", r.StatusCode, r.Body, asked)
			}
			if len(names) != 1 || !bytes.Equal(names[0], pki.root.Cert.RawSubject) {
				t.Errorf("acceptable CAs %q; nginx names the ssl_client_certificate CA only", names)
			}
			r, _ = get("mtls.test", "mtls.test", tls.Certificate{})
			if r.StatusCode != 400 || !strings.Contains(r.Body, page496) {
				t.Errorf("SNI mtls.test without a certificate: %d %q", r.StatusCode, r.Body)
			}
			r, _ = get("mtls.test", "plain.test", good)
			if r.StatusCode != 200 || r.Body != "plain verify=SUCCESS" {
				t.Errorf("SNI mtls.test, Host plain.test: %d %q; nginx: 200 plain verify=SUCCESS", r.StatusCode, r.Body)
			}
			r, _ = get("plain.test", "mtls.test", good)
			if r.StatusCode != 421 {
				t.Errorf("SNI plain.test, Host mtls.test: %d %q; nginx: 421", r.StatusCode, r.Body)
			}
			if !h2 && !r.Close {
				t.Errorf("421: the connection stays open; nginx closes it (Connection: close)")
			}
		})
	}
	t.Run("no SNI", func(t *testing.T) {
		c := newCertClient(ca, "", good)
		c.tlsConf.InsecureSkipVerify = true // no SNI: Go then checks no name
		r := getURL(t, httpClient(target, c.tlsConf), "https://127.0.0.1/", http.Header{"Host": {"mtls.test"}})
		if asked, _ := c.requests(); r.StatusCode != 400 || !strings.Contains(r.Body, page496) || asked != 0 {
			t.Errorf("no SNI, Host mtls.test: %d %q (asked %d); nginx: 400 No required SSL certificate was sent", r.StatusCode, r.Body, asked)
		}
	})
}

// getURL is get with a Host header that may differ from the URL's.
func getURL(t *testing.T, c *http.Client, url string, hdr ...http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		if v := h.Get("Host"); v != "" {
			req.Host = v
		}
	}
	return do(t, c, req)
}

// TestClientCertHTTP3 checks ssl_verify_client on a quic listener: the certificate is asked for and checked as
// over TCP (nginx 1.22 has no HTTP/3; its HTTP/1.1 answers are the reference).
func TestClientCertHTTP3(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	pki := newClientPKI(t, "Test Root")
	now := time.Now()
	good := pki.client(t, pki.root, clientTmpl("good", 5, now.Add(-time.Hour), now.Add(48*time.Hour)))
	expired := pki.client(t, pki.root, clientTmpl("expired", 8, now.Add(-48*time.Hour), now.Add(-time.Hour)))
	port := freePort(t)
	conf := fill(t, `events {}
http {
    server {
        listen 127.0.0.1:{{PORT}} quic reuseport;
        http3 on;
        server_name h3.test;
        ssl_certificate     srv.pem;
        ssl_certificate_key srv.key.pem;
        ssl_verify_client on;
        ssl_client_certificate clients.pem;
        location / { return 200 "verify=$ssl_client_verify s_dn=$ssl_client_s_dn"; }
    }
}
`, "PORT", port)
	start(t, conf, append(ca.certFiles(t, "srv", ecdsaP256, "h3.test"), withFile("conf/clients.pem", pki.rootPEM))...)
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		status int
		body   string
	}{
		{"good", good, 200, "verify=SUCCESS s_dn=CN=good"},
		{"none", tls.Certificate{}, 400, page496},
		{"expired", expired, 400, page495},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCertClient(ca, "h3.test", tc.cert)
			tr := h3Transport(addr(port), c.tlsConf)
			defer tr.Close()
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://h3.test:%d/", port), nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("GET over HTTP/3: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.body) {
				t.Errorf("got %d %q; want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
		})
	}
}

// TestClientCertConfigErrors checks what nginx 1.22 refuses at load: ssl_verify_client on (or optional) without
// ssl_client_certificate ("no ssl_client_certificate for ssl_verify_client"; ssl_trusted_certificate alone is not
// enough), an unknown value, a depth that is no number, CA and CRL files that cannot be read.
func TestClientCertConfigErrors(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	for _, tc := range []struct{ directives, want string }{
		{"ssl_verify_client on;", "no ssl_client_certificate for ssl_verify_client"},
		{"ssl_verify_client optional; ssl_trusted_certificate srv.pem;", "no ssl_client_certificate for ssl_verify_client"},
		{"ssl_verify_client maybe;", `invalid value "maybe"`},
		{"ssl_verify_depth x;", `"ssl_verify_depth" directive invalid number`},
		{"ssl_verify_client on; ssl_client_certificate missing.pem;", "missing.pem"},
		{"ssl_verify_client on; ssl_client_certificate srv.pem; ssl_crl srv.key.pem;", "no CRL found"},
	} {
		conf := "events {}\nhttp { server { listen 127.0.0.1:1 ssl; ssl_certificate srv.pem; ssl_certificate_key srv.key.pem; " + tc.directives + " } }\n"
		prefix, confPath, _ := newPrefix(t, conf, ca.certFiles(t, "srv", ecdsaP256, "localhost")...)
		code, out := runSluice(t, "-p", prefix+"/", "-c", confPath, "-t")
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, %q; want an error with %q", tc.directives, code, out, tc.want)
		}
	}
	conf := "events {}\nhttp { server { listen 127.0.0.1:1 ssl; ssl_certificate srv.pem; ssl_certificate_key srv.key.pem; ssl_verify_client optional_no_ca; } }\n"
	prefix, confPath, _ := newPrefix(t, conf, ca.certFiles(t, "srv", ecdsaP256, "localhost")...)
	if code, out := runSluice(t, "-p", prefix+"/", "-c", confPath, "-t"); code != 0 {
		t.Errorf("optional_no_ca without CAs (nginx accepts it): exit %d %s", code, out)
	}
}
