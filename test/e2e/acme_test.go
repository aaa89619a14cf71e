package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// pebble is an in-process Pebble ACME CA (Let's Encrypt's test CA) that validates every challenge.
type pebble struct {
	dirURL string
	rootCA []byte         // PEM file contents for acme_ca_root: the CA of pebble's own HTTPS
	roots  *x509.CertPool // roots of the certificates pebble issues
}

// newPebble starts Pebble issuing certificates valid for validity and validating every challenge without
// looking. The PEBBLE_* variables it reads are set with t.Setenv, so tests using it do not run in parallel.
func newPebble(t *testing.T, validity time.Duration) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	return startPebble(t, validity, 0, 0, "")
}

// startPebble starts Pebble whose validation authority checks HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort,
// resolving names through the DNS server at resolver.
func startPebble(t *testing.T, validity time.Duration, httpPort, tlsPort int, resolver string) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: uint64(validity / time.Second)}}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	validator := va.New(logger, httpPort, tlsPort, false, resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)

	tlsCA := newCA(t)
	certPEM, keyPEM := tlsCA.issue(t, ecdsaP256, "127.0.0.1")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(front.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	rec := httptest.NewRecorder()
	front.ManagementHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, wfe.RootCertPath+"0", nil))
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rec.Body.Bytes()) {
		t.Fatalf("pebble root: %d %q", rec.Code, rec.Body.String())
	}
	return &pebble{
		dirURL: srv.URL + wfe.DirectoryPath,
		rootCA: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsCA.cert.Raw}),
		roots:  roots,
	}
}

// servedCert handshakes with SNI name at target and returns the leaf, verified against roots.
func servedCert(target, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", target, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// waitCert waits until target serves name a certificate pebble issued.
func waitCert(t *testing.T, target, name string, roots *x509.CertPool, timeout time.Duration) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	var err error
	if !eventually(timeout, func() bool {
		leaf, err = servedCert(target, name, roots)
		return err == nil
	}) {
		t.Fatalf("%s never served a certificate for %s issued by the ACME CA: %v", target, name, err)
	}
	return leaf
}

const acmeConf = `events {}
http {
    acme_ca {{CA}};
    acme_ca_root pebble-root.pem;
    acme_email ops@example.test;
    acme_storage {{STORAGE}};
    acme_renew_interval {{RENEW}};
    server {
        listen 127.0.0.1:{{HTTP}};
        listen 127.0.0.1:{{PORT}} ssl;
        http2 on;
        server_name acme.test;
        ssl_certificate acme;
        location / { return 200 "acme site\n"; }
    }
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name files.test;
        ssl_certificate     files.pem;
        ssl_certificate_key files.key.pem;
        location / { return 200 "file site\n"; }
    }
}
`

// TestACME obtains certificates from an in-process Pebble: served once issued, kept with safe permissions, shared
// storage issuing once for two sluice processes, renewed when short-lived, and a CA that is down retried while
// the other sites serve.
func TestACME(t *testing.T) {
	fileCA := newCA(t)
	files := fileCA.certFiles(t, "files", ecdsaP256, "files.test")

	t.Run("obtain, serve, share storage", func(t *testing.T) {
		pb := newPebble(t, 90*24*time.Hour)
		storage := filepath.Join(t.TempDir(), "shared-acme")
		ports := [2]int{freePort(t), freePort(t)}
		for i := range ports {
			conf := fill(t, acmeConf, "CA", pb.dirURL, "STORAGE", storage, "RENEW", "10m", "HTTP", freePort(t), "PORT", ports[i])
			start(t, conf, append(files, withFile("conf/pebble-root.pem", pb.rootCA))...)
		}
		var serials []string
		for _, p := range ports {
			leaf := waitCert(t, addr(p), "acme.test", pb.roots, 30*time.Second)
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "acme.test" {
				t.Errorf("certificate for %v, want acme.test", leaf.DNSNames)
			}
			serials = append(serials, leaf.SerialNumber.String())
			// the site answers over it, and the file-certificate site beside it is unaffected
			r := get(t, httpClient(addr(p), &tls.Config{RootCAs: pb.roots}), "https://acme.test/", nil)
			if r.StatusCode != 200 || r.Body != "acme site\n" {
				t.Errorf("GET https://acme.test/ = %d %q", r.StatusCode, r.Body)
			}
			if _, err := servedCert(addr(p), "files.test", fileCA.Pool()); err != nil {
				t.Errorf("files.test: %v", err)
			}
		}
		if serials[0] != serials[1] {
			t.Errorf("two sluice processes sharing %s serve different certificates (serials %s, %s): issued twice", storage, serials[0], serials[1])
		}
		// storage is private
		fi, err := os.Stat(storage)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, %v; want 0700", storage, fi.Mode().Perm(), err)
		}
		nkeys := 0
		filepath.WalkDir(storage, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".key") {
				nkeys++
				if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v; want 0600", p, fi.Mode().Perm())
				}
			}
			return nil
		})
		if nkeys == 0 {
			t.Errorf("no private key found under %s", storage)
		}
	})

	t.Run("a name added by reload is obtained", func(t *testing.T) {
		pb := newPebble(t, 90*24*time.Hour)
		port := freePort(t)
		conf := fill(t, acmeConf, "CA", pb.dirURL, "STORAGE", filepath.Join(t.TempDir(), "acme"), "RENEW", "10m", "HTTP", freePort(t), "PORT", port)
		s := start(t, conf, append(files, withFile("conf/pebble-root.pem", pb.rootCA))...)
		waitCert(t, addr(port), "acme.test", pb.roots, 30*time.Second)
		if err := os.WriteFile(s.Conf, []byte(strings.Replace(conf, "server_name acme.test;", "server_name acme.test more.test;", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.Signal(syscall.SIGHUP)
		leaf := waitCert(t, addr(port), "more.test", pb.roots, 30*time.Second)
		if err := leaf.VerifyHostname("more.test"); err != nil {
			t.Error(err)
		}
		waitCert(t, addr(port), "acme.test", pb.roots, 5*time.Second)
	})

	t.Run("renewed when short-lived", func(t *testing.T) {
		var pb *pebble
		var port int
		var first *x509.Certificate
		for try := 1; ; try++ {
			pb = newPebble(t, 30*time.Second)
			port = freePort(t)
			conf := fill(t, acmeConf, "CA", pb.dirURL, "STORAGE", filepath.Join(t.TempDir(), "acme"), "RENEW", "1s", "HTTP", freePort(t), "PORT", port)
			s := start(t, conf, append(files, withFile("conf/pebble-root.pem", pb.rootCA))...)
			first = waitCert(t, addr(port), "acme.test", pb.roots, 30*time.Second)
			if !pebbleLosesOrder(first) || try == 3 {
				break
			}
			// Pebble v2.10.1 files a certificate's order under the hex of SerialNumber.Bytes() and looks it up
			// under the hex of the serial's DER content, which has a leading zero byte when the top bit is set:
			// the renewal's "replaces" then fails with "could not find an order" (serverInternal) at every
			// attempt. Let's Encrypt's CA is not affected. About one serial in 250 (a 63-bit random serial
			// below 2^56 with its top bit set); seen on CI on 2026-12-02.
			t.Logf("serial %x: pebble cannot renew it (leading zero in DER); new CA and sluice", first.SerialNumber)
			s.stop()
		}
		var renewed *x509.Certificate
		if !eventually(40*time.Second, func() bool {
			leaf, err := servedCert(addr(port), "acme.test", pb.roots)
			if err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
				renewed = leaf
				return true
			}
			return false
		}) {
			t.Fatalf("certificate valid until %v was not renewed", first.NotAfter)
		}
		// certificates carry whole seconds: a renewal within the first's second has the same NotAfter
		if renewed.NotAfter.Before(first.NotAfter) {
			t.Errorf("renewed certificate expires %v, before the first (%v)", renewed.NotAfter, first.NotAfter)
		}
	})

	t.Run("CA down: retried, other sites serve", func(t *testing.T) {
		dead := freePort(t) // nothing listens there
		port := freePort(t)
		conf := fill(t, acmeConf, "CA", fmt.Sprintf("https://127.0.0.1:%d/dir", dead), "STORAGE", filepath.Join(t.TempDir(), "acme"), "RENEW", "10m", "HTTP", freePort(t), "PORT", port)
		s := start(t, conf, append(files, withFile("conf/pebble-root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fileCA.cert.Raw})))...)
		r := get(t, httpClient(addr(port), fileCA.clientTLS("files.test")), "https://files.test/", nil)
		if r.StatusCode != 200 || r.Body != "file site\n" {
			t.Errorf("files.test while the CA is down: %d %q", r.StatusCode, r.Body)
		}
		if !eventually(20*time.Second, func() bool {
			l := s.Log()
			return strings.Contains(l, "will retry") && strings.Contains(l, "connection refused")
		}) {
			t.Fatalf("no retry with the CA's error logged:\n%s", s.Log())
		}
		if _, err := servedCert(addr(port), "acme.test", nil); err == nil {
			t.Error("a certificate was served for acme.test without a CA")
		}
	})
}

// loopbackDNS answers every A query with 127.0.0.1 (over TCP, as Pebble's validation authority asks), so the
// CA's validation connections for any name reach sluice.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// TestACMEChallenges lets Pebble really validate: HTTP-01 against sluice's plain listener, TLS-ALPN-01 against its
// TLS listener (the only challenge left when the server has no plain listener).
func TestACMEChallenges(t *testing.T) {
	resolver := loopbackDNS(t)
	for _, tc := range []struct {
		name      string
		plain     bool
		challenge string
	}{
		{"tls-alpn-01 on the TLS listener", false, "tls-alpn-01"},
		{"http-01 on the plain listener", true, "http-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, plain := freePort(t), freePort(t)
			httpPort := plain
			if !tc.plain {
				httpPort = freePort(t) // nothing there: only TLS-ALPN-01 can pass
			}
			tlsPort := port
			if tc.plain {
				tlsPort = freePort(t) // nothing there: only HTTP-01 can pass
			}
			pb := startPebble(t, 24*time.Hour, httpPort, tlsPort, resolver)
			plainListen := ""
			if tc.plain {
				plainListen = fmt.Sprintf("listen 127.0.0.1:%d;", plain)
			}
			conf := fill(t, `error_log stderr info;
events {}
http {
    acme_ca {{CA}};
    acme_ca_root pebble-root.pem;
    server {
        {{PLAIN}}
        listen 127.0.0.1:{{PORT}} ssl;
        server_name challenge.test;
        ssl_certificate acme;
        location / { return 200 "ok\n"; }
    }
}
`, "CA", pb.dirURL, "PLAIN", plainListen, "PORT", port)
			s := start(t, conf, withFile("conf/pebble-root.pem", pb.rootCA))
			leaf := waitCert(t, addr(port), "challenge.test", pb.roots, 60*time.Second)
			if leaf.DNSNames[0] != "challenge.test" {
				t.Errorf("certificate for %v", leaf.DNSNames)
			}
			// sluice itself answered the CA's validation (certmagic logs each answer it serves)
			if want := "served key authentication"; !strings.Contains(s.Log(), want) || !strings.Contains(s.Log(), "challenge="+tc.challenge) {
				t.Errorf("log does not show a served %s answer:\n%s", tc.challenge, s.Log())
			}
		})
	}
}

// pebbleLosesOrder reports whether the certificate's serial is one pebble v2.10.1 cannot find the order of
// when a renewal names it (see "renewed when short-lived"): its DER content starts with a zero byte.
func pebbleLosesOrder(c *x509.Certificate) bool {
	b := c.SerialNumber.Bytes()
	return len(b) > 0 && b[0]&0x80 != 0
}
