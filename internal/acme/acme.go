// Package acme obtains and renews certificates from an ACME CA (Let's Encrypt, a private CA) for servers with
// `ssl_certificate acme;`. github.com/caddyserver/certmagic does the protocol, storage and renewal work: it is
// the well-kept library made for exactly this (used by Caddy), with file storage whose locks let several
// sluice nodes share one directory without issuing twice.
//
// A Manager outlives configuration snapshots: a reload hands it the new set of sites, it starts managing the new
// names in the background (startup never waits for a CA) and stops renewing names no longer configured.
package acme

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// DefaultCA is Let's Encrypt's production directory, the CA used without acme_ca.
const DefaultCA = "https://acme-v02.api.letsencrypt.org/directory"

// Site is one set of names to keep certificates for, with the ACME settings of its server block.
type Site struct {
	Names    []string
	CA       string // directory URL
	Email    string
	CARoot   string // PEM file of roots to trust for the CA's own HTTPS (acme_ca_root), "" = system roots
	Stapling bool   // ssl_stapling: staple OCSP responses
	// HTTPAddr and TLSAddr are sluice's plain and TLS listening addresses of the server: certmagic's own
	// challenge listeners find them in use and leave the answering to sluice (HandleHTTPChallenge,
	// GetCertificate); "" disables that challenge type.
	HTTPAddr, TLSAddr string
}

// key identifies sites that can share one certmagic configuration.
func (s Site) key() string {
	return fmt.Sprintf("%s|%s|%s|%t|%s|%s", s.CA, s.Email, s.CARoot, s.Stapling, s.HTTPAddr, s.TLSAddr)
}

// Manager keeps ACME certificates for the configured sites.
type Manager struct {
	log   *slog.Logger
	cache *certmagic.Cache

	mu      sync.RWMutex
	storage string
	configs map[string]*certmagic.Config       // by Site.key
	byName  map[string]*certmagic.Config       // lower-case name -> its configuration
	issuers map[string]*certmagic.ACMEIssuer   // lower-case name -> its issuer (HTTP-01 answers)
	managed map[string]certmagic.SubjectIssuer // names under management

	stapleCfg *certmagic.Config        // for certificate files with ssl_stapling on
	stapled   map[[32]byte]stapledCert // by SHA-256 of the leaf
}

// stapledCert locates a certificate file's entry in certmagic's cache, where maintenance refreshes its staple.
type stapledCert struct {
	hash, name string
}

// New returns a Manager storing certificates and account keys in storage (created 0700; certmagic writes its
// files 0600), checking for renewal every renewInterval (0 = certmagic's default, 10 minutes).
func New(storage string, renewInterval time.Duration, log *slog.Logger) (*Manager, error) {
	if err := os.MkdirAll(storage, 0o700); err != nil {
		return nil, err
	}
	m := &Manager{
		log:     log,
		storage: storage,
		configs: map[string]*certmagic.Config{},
		byName:  map[string]*certmagic.Config{},
		issuers: map[string]*certmagic.ACMEIssuer{},
		managed: map[string]certmagic.SubjectIssuer{},
		stapled: map[[32]byte]stapledCert{},
	}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(c certmagic.Certificate) (*certmagic.Config, error) {
			m.mu.RLock()
			defer m.mu.RUnlock()
			for _, n := range c.Names {
				if cfg := m.byName[strings.ToLower(n)]; cfg != nil {
					return cfg, nil
				}
			}
			return m.stapleCfg, nil // a certificate file kept for its OCSP staple
		},
		RenewCheckInterval: renewInterval,
		Logger:             zapLogger(log),
	})
	m.stapleCfg = certmagic.New(m.cache, certmagic.Config{Storage: &certmagic.FileStorage{Path: storage}, Logger: zapLogger(log)})
	return m, nil
}

// Staple starts keeping OCSP staples for certificate files (ssl_stapling on): each is fetched from the responder
// the certificate names (its chain must hold the issuer) and refreshed by certmagic's maintenance. It may block
// on the responders; call it off the serving path. Stapled returns the stapled copy once there is one.
func (m *Manager) Staple(certs []*tls.Certificate) {
	for _, c := range certs {
		key := sha256.Sum256(c.Certificate[0])
		m.mu.RLock()
		_, ok := m.stapled[key]
		m.mu.RUnlock()
		if ok || c.Leaf == nil || len(c.Leaf.OCSPServer) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		hash, err := m.stapleCfg.CacheUnmanagedTLSCertificate(ctx, *c, nil)
		cancel()
		if err != nil {
			m.log.Warn("ssl_stapling: " + err.Error())
			continue
		}
		name := c.Leaf.Subject.CommonName
		if len(c.Leaf.DNSNames) > 0 {
			name = c.Leaf.DNSNames[0]
		}
		m.mu.Lock()
		m.stapled[key] = stapledCert{hash: hash, name: name}
		m.mu.Unlock()
	}
}

// Stapled returns c with its current OCSP staple, or c itself while there is none.
func (m *Manager) Stapled(c *tls.Certificate, key [32]byte) *tls.Certificate {
	m.mu.RLock()
	sc, ok := m.stapled[key]
	m.mu.RUnlock()
	if !ok {
		return c
	}
	for _, cc := range m.cache.AllMatchingCertificates(sc.name) {
		if cc.Hash() == sc.hash && len(cc.Certificate.OCSPStaple) > 0 {
			return &cc.Certificate
		}
	}
	return c
}

// Storage is the directory the Manager keeps its state in.
func (m *Manager) Storage() string { return m.storage }

// Manage starts keeping certificates for sites (in the background) and stops renewing names no longer among them.
// Errors are configuration errors (an unreadable acme_ca_root); CA failures are logged and retried.
func (m *Manager) Manage(sites []Site) error {
	m.mu.Lock()
	want := map[string]bool{}
	type job struct {
		cfg   *certmagic.Config
		names []string
	}
	var jobs []job
	// every site's configuration first: an error leaves the managed names as they were
	cfgs := make([]*certmagic.Config, len(sites))
	issuers := make([]*certmagic.ACMEIssuer, len(sites))
	for i, s := range sites {
		var err error
		if cfgs[i], issuers[i], err = m.configFor(s); err != nil {
			m.mu.Unlock()
			return err
		}
	}
	for i, s := range sites {
		cfg, issuer := cfgs[i], issuers[i]
		var names []string
		for _, n := range s.Names {
			n = strings.ToLower(n)
			want[n] = true
			m.byName[n] = cfg
			m.issuers[n] = issuer
			names = append(names, n)
			m.managed[n] = certmagic.SubjectIssuer{Subject: n, IssuerKey: issuer.IssuerKey()}
		}
		jobs = append(jobs, job{cfg, names})
	}
	var drop []certmagic.SubjectIssuer
	for n, si := range m.managed {
		if !want[n] {
			drop = append(drop, si)
			delete(m.managed, n)
			delete(m.byName, n)
			delete(m.issuers, n)
		}
	}
	m.mu.Unlock()
	if len(drop) > 0 {
		m.cache.RemoveManaged(drop)
	}
	for _, j := range jobs {
		// ManageAsync loads what storage has and obtains or renews the rest in the background, retrying failures
		// with backoff; it returns at once.
		if err := j.cfg.ManageAsync(context.Background(), j.names); err != nil {
			m.log.Error("acme: managing " + strings.Join(j.names, ", ") + ": " + err.Error())
		}
	}
	return nil
}

// configFor returns the shared configuration for a site's settings. m.mu is held.
func (m *Manager) configFor(s Site) (*certmagic.Config, *certmagic.ACMEIssuer, error) {
	if cfg := m.configs[s.key()]; cfg != nil {
		return cfg, cfg.Issuers[0].(*certmagic.ACMEIssuer), nil
	}
	roots, err := LoadRoots(s.CARoot)
	if err != nil {
		return nil, nil, err
	}
	zl := zapLogger(m.log)
	cfg := certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: m.storage},
		OCSP:    certmagic.OCSPConfig{DisableStapling: !s.Stapling},
		Logger:  zl,
	})
	ca := s.CA
	if ca == "" {
		ca = DefaultCA
	}
	host, httpPort := splitAddr(s.HTTPAddr)
	tlsHost, tlsPort := splitAddr(s.TLSAddr)
	if host == "" {
		host = tlsHost
	}
	issuer := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                      ca,
		Email:                   s.Email,
		Agreed:                  true,
		TrustedRoots:            roots,
		DisableHTTPChallenge:    httpPort == 0,
		DisableTLSALPNChallenge: tlsPort == 0,
		ListenHost:              host,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          tlsPort,
		Logger:                  zl,
	})
	cfg.Issuers = []certmagic.Issuer{issuer}
	m.configs[s.key()] = cfg
	return cfg, issuer, nil
}

// LoadRoots reads the acme_ca_root file (nil for ""), so a configuration naming an unusable one is refused.
func LoadRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("acme_ca_root: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("acme_ca_root %s: no PEM certificate found", file)
	}
	return roots, nil
}

// splitAddr splits "host:port" ("0.0.0.0" and "::" give host ""); port 0 when addr is "".
func splitAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	p, _ := strconv.Atoi(port)
	if host == "0.0.0.0" || host == "::" {
		host = ""
	}
	return host, p
}

// GetCertificate returns the certificate for the handshake's name, or the TLS-ALPN-01 challenge certificate when
// the CA is validating (ALPN acme-tls/1). It fails while a certificate is still being obtained.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.RLock()
	cfg := m.byName[strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))]
	if cfg == nil {
		for _, c := range m.configs {
			cfg = c // a challenge for a name being dropped, or no SNI: any configuration shares the cache
			break
		}
	}
	m.mu.RUnlock()
	if cfg == nil {
		return nil, errors.New("acme: no certificate managed")
	}
	return cfg.GetCertificate(hello)
}

// HandleHTTPChallenge answers an HTTP-01 validation request (/.well-known/acme-challenge/…) for a managed name
// and reports whether it did.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		return false
	}
	host := r.Host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	m.mu.RLock()
	issuer := m.issuers[strings.ToLower(host)]
	m.mu.RUnlock()
	return issuer != nil && issuer.HandleHTTPChallenge(w, r)
}

// Names returns the names under management, sorted.
func (m *Manager) Names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.managed))
	for n := range m.managed {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Stop ends background maintenance.
func (m *Manager) Stop() { m.cache.Stop() }

// zapLogger routes certmagic's zap logging to the error log.
func zapLogger(log *slog.Logger) *zap.Logger { return zap.New(&slogCore{log: log}) }
