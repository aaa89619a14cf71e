package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"time"
)

// VerifyMode is ssl_verify_client.
type VerifyMode uint8

// The values of ssl_verify_client, in nginx's order.
const (
	VerifyOff          VerifyMode = iota
	VerifyOn                      // a certificate is required and must verify
	VerifyOptional                // asked for; verified when given
	VerifyOptionalNoCA            // asked for; a certificate whose issuer is unknown is accepted all the same
)

// OpenSSL's verification error numbers (X509_V_ERR_*) that client certificate checks report, with the text
// X509_verify_cert_error_string gives them in OpenSSL 3, which nginx puts in $ssl_client_verify ("FAILED:text").
const (
	errUnableToGetIssuerCert       = 2
	errUnableToGetCRL              = 3
	errCRLSignatureFailure         = 8
	errCertNotYetValid             = 9
	errCertHasExpired              = 10
	errCRLNotYetValid              = 11
	errCRLHasExpired               = 12
	errDepthZeroSelfSigned         = 18
	errSelfSignedInChain           = 19
	errUnableToGetIssuerLocally    = 20
	errUnableToVerifyLeafSignature = 21
	errCertRevoked                 = 23
	errInvalidCA                   = 24
	errInvalidPurpose              = 26
	errCertUntrusted               = 27 // never produced here; listed for optional_no_ca's rule
)

var verifyErrorText = map[int]string{
	errUnableToGetIssuerCert:       "unable to get issuer certificate",
	errUnableToGetCRL:              "unable to get certificate CRL",
	errCRLSignatureFailure:         "CRL signature failure",
	errCertNotYetValid:             "certificate is not yet valid",
	errCertHasExpired:              "certificate has expired",
	errCRLNotYetValid:              "CRL is not yet valid",
	errCRLHasExpired:               "CRL has expired",
	errDepthZeroSelfSigned:         "self-signed certificate",
	errSelfSignedInChain:           "self-signed certificate in certificate chain",
	errUnableToGetIssuerLocally:    "unable to get local issuer certificate",
	errUnableToVerifyLeafSignature: "unable to verify the first certificate",
	errCertRevoked:                 "certificate revoked",
	errInvalidCA:                   "invalid CA certificate",
	errInvalidPurpose:              "unsuitable certificate purpose",
}

// ClientResult is the outcome of checking a connection's client certificate, computed once at the handshake.
type ClientResult struct {
	// Verify is $ssl_client_verify: "SUCCESS", "FAILED:reason" or "NONE".
	Verify string
	// Leaf is the client's certificate (nil for none).
	Leaf *x509.Certificate
	code int // the OpenSSL error number of a failure, 0 when it verified
}

// Reject returns the status nginx answers a request with under mode, given the connection's result: 495 for a
// certificate that failed verification (optional_no_ca lets one pass whose only fault is an unknown issuer),
// 496 for no certificate under `on`, 0 to go on. A nil result is a connection that was not asked for one.
func (r *ClientResult) Reject(mode VerifyMode) int {
	switch {
	case mode == VerifyOff:
		return 0
	case r == nil:
		if mode == VerifyOn {
			return 496
		}
		return 0
	case r.code != 0 && (mode != VerifyOptionalNoCA || !optionalError(r.code)):
		return 495
	case mode == VerifyOn && r.Leaf == nil:
		return 496
	}
	return 0
}

// Reason is the failure as nginx logs it ("20:unable to get local issuer certificate"); "" when none.
func (r *ClientResult) Reason() string {
	if r == nil || r.code == 0 {
		return ""
	}
	return VerifyError(r.code).Error()
}

// optionalError is nginx's ngx_ssl_verify_error_optional: the failures optional_no_ca accepts.
func optionalError(code int) bool {
	switch code {
	case errDepthZeroSelfSigned, errSelfSignedInChain, errUnableToGetIssuerCert, errUnableToGetIssuerLocally,
		errCertUntrusted, errUnableToVerifyLeafSignature:
		return true
	}
	return false
}

// ClientAuth is one server's client certificate settings (ssl_verify_client, ssl_client_certificate,
// ssl_trusted_certificate, ssl_verify_depth, ssl_crl), loaded once per configuration and immutable.
type ClientAuth struct {
	Mode VerifyMode
	// Names are the CAs of ssl_client_certificate, sent to the client as the acceptable ones (nil for none).
	Names   *x509.CertPool
	anchors []*x509.Certificate // ssl_client_certificate and ssl_trusted_certificate
	depth   int
	crls    CRLs // nil: no revocation checks
}

// LoadClientAuth reads the files of a server's client certificate settings; "" names no file.
func LoadClientAuth(mode VerifyMode, caFile, trustedFile, crlFile string, depth int) (*ClientAuth, error) {
	a := &ClientAuth{Mode: mode, depth: depth}
	if caFile != "" {
		cas, err := readCerts(caFile)
		if err != nil {
			return nil, err
		}
		a.Names = x509.NewCertPool()
		for _, c := range cas {
			a.Names.AddCert(c)
		}
		a.anchors = cas
	}
	if trustedFile != "" {
		cas, err := readCerts(trustedFile)
		if err != nil {
			return nil, err
		}
		a.anchors = append(a.anchors, cas...)
	}
	if crlFile != "" {
		crls, err := LoadCRLs(crlFile)
		if err != nil {
			return nil, err
		}
		a.crls = crls
	}
	return a, nil
}

// pemBlocks returns the contents of data's PEM blocks of type typ.
func pemBlocks(data []byte, typ string) [][]byte {
	var out [][]byte
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		if b.Type == typ {
			out = append(out, b.Bytes)
		}
	}
}

// readCerts reads every PEM certificate of file.
func readCerts(file string) ([]*x509.Certificate, error) {
	return readPEM(file, "CERTIFICATE", "certificate", x509.ParseCertificate)
}

// readPEM parses the PEM blocks of type typ in file; a file without any is an error naming what was expected.
func readPEM[T any](file, typ, what string, parse func([]byte) (T, error)) ([]T, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []T
	for _, der := range pemBlocks(data, typ) {
		v, err := parse(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no %s found (expected a PEM %q block)", file, what, typ)
	}
	return out, nil
}

// Verify checks the certificates a client sent (leaf first) as OpenSSL 3 does for nginx, whose verify callback
// accepts every failure so the handshake goes on: each check runs and the last failure it reports is the
// result. In OpenSSL's order: the chain is built (trust anchors first, then the certificates the client sent,
// at most depth certificates between the leaf and the anchor), the extensions are checked (CA certificates,
// the client purpose), then the CRLs (with ssl_crl, every certificate of the chain needs one from its issuer),
// and last, from the top of the chain down to the leaf, validity times.
func (a *ClientAuth) Verify(sent []*x509.Certificate, now time.Time) *ClientResult {
	if len(sent) == 0 {
		return &ClientResult{Verify: "NONE"}
	}
	code := 0
	fail := func(c int) { code = c }
	chain := []*x509.Certificate{sent[0]}
	untrusted := sent[1:]
	for {
		cur := chain[len(chain)-1]
		if selfIssued(cur) {
			switch {
			case a.isAnchor(cur):
			case len(chain) == 1:
				fail(errDepthZeroSelfSigned)
			default:
				fail(errSelfSignedInChain)
			}
			break
		}
		if len(chain) >= a.depth+2 {
			fail(errUnableToGetIssuerLocally) // OpenSSL stops building at the depth limit
			break
		}
		if p := issuer(cur, a.anchors); p != nil {
			chain = append(chain, p)
			if selfIssued(p) {
				break
			}
			continue // a trusted intermediate: its own issuer must be found too
		}
		if p := issuer(cur, untrusted); p != nil && !slices.Contains(chain, p) {
			chain = append(chain, p)
			continue
		}
		if a.isAnchor(cur) {
			fail(errUnableToGetIssuerCert) // a trusted intermediate without its issuer
		} else {
			fail(errUnableToGetIssuerLocally) // for the leaf alone, reported again below as its signature
		}
		break
	}
	// extensions: CA certificates above the leaf, and the purpose (sslclient) of every certificate
	for i, c := range chain {
		if i > 0 && (!c.BasicConstraintsValid || !c.IsCA || c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0) {
			fail(errInvalidCA)
		}
		if !clientPurpose(c) {
			fail(errInvalidPurpose)
		}
	}
	if e := a.crls.check(chain, now, true); e != 0 {
		fail(e)
	}
	// signatures (checked while building) and times, from the top down
	top := len(chain) - 1
	if !selfIssued(chain[top]) && top == 0 {
		fail(errUnableToVerifyLeafSignature)
	}
	for i := top; i >= 0; i-- {
		c := chain[i]
		switch {
		case now.Before(c.NotBefore):
			fail(errCertNotYetValid)
		case now.After(c.NotAfter):
			fail(errCertHasExpired)
		}
	}
	r := &ClientResult{Verify: "SUCCESS", Leaf: sent[0], code: code}
	if code != 0 {
		r.Verify = "FAILED:" + verifyErrorText[code]
	}
	return r
}

// isAnchor reports whether c is one of the trusted certificates.
func (a *ClientAuth) isAnchor(c *x509.Certificate) bool {
	for _, t := range a.anchors {
		if bytes.Equal(t.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// selfIssued reports a certificate that names itself as issuer and carries its own signature.
func selfIssued(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && signedBy(c, c)
}

// signedBy checks c's signature with p's key. Unlike x509's CheckSignatureFrom it does not ask p to be a CA: as
// in OpenSSL, that is a check of its own (invalid CA certificate).
func signedBy(c, p *x509.Certificate) bool {
	return p.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// issuer finds c's issuer among cands: the subject names c's issuer and the signature checks.
func issuer(c *x509.Certificate, cands []*x509.Certificate) *x509.Certificate {
	for _, p := range cands {
		if p != c && bytes.Equal(p.RawSubject, c.RawIssuer) && signedBy(c, p) {
			return p
		}
	}
	return nil
}

// clientPurpose is OpenSSL's sslclient purpose as far as the extended key usage goes: none, clientAuth or any.
func clientPurpose(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// CRLs are the certificate revocation lists of an ssl_crl or proxy_ssl_crl file.
type CRLs []*x509.RevocationList

// LoadCRLs reads a file of PEM CRLs; one without any is an error.
func LoadCRLs(file string) (CRLs, error) {
	return readPEM(file, "X509 CRL", "CRL", x509.ParseRevocationList)
}

// Check checks each certificate of a verified chain (leaf first, ending at a trust anchor) against a CRL of
// its issuer, as OpenSSL's X509_V_FLAG_CRL_CHECK_ALL: nil, or the first failure worded as OpenSSL logs it
// ("23:certificate revoked", "3:unable to get certificate CRL").
func (l CRLs) Check(chain []*x509.Certificate, now time.Time) error {
	if e := l.check(chain, now, false); e != 0 {
		return VerifyError(e)
	}
	return nil
}

// check is Check's error number (0: none): the first failure, or with last the last one, as nginx's verify
// callback for client certificates, which accepts each failure so the checks go on, reports it.
func (l CRLs) check(chain []*x509.Certificate, now time.Time, last bool) int {
	if l == nil {
		return 0
	}
	code := 0
	for i, c := range chain {
		iss := c
		if i+1 < len(chain) {
			iss = chain[i+1]
		} else if !selfIssued(c) {
			break
		}
		if e := l.revocation(c, iss, now); e != 0 {
			if code = e; !last {
				break
			}
		}
	}
	return code
}

// VerifyError is an OpenSSL verification error number (X509_V_ERR_*).
type VerifyError int

func (e VerifyError) Error() string { return fmt.Sprintf("%d:%s", int(e), verifyErrorText[int(e)]) }

// ErrChainTooDeep is OpenSSL's failure for a chain longer than the verify depth allows: the issuer beyond the
// limit is not looked for.
const ErrChainTooDeep = VerifyError(errUnableToGetIssuerLocally)

// revocation checks c against the CRLs of its issuer iss (X509_V_FLAG_CRL_CHECK_ALL): 0 when it is not revoked.
// Of several CRLs of the issuer the best is used, as OpenSSL's get_crl_sk picks it: one with a good signature
// that is current (between its thisUpdate and nextUpdate), the newest of those; a CRL that is not current is an
// error only when no current one exists.
func (l CRLs) revocation(c, iss *x509.Certificate, now time.Time) int {
	var best *x509.RevocationList
	fault := errUnableToGetCRL
	for _, crl := range l {
		if !bytes.Equal(crl.RawIssuer, iss.RawSubject) {
			continue
		}
		switch {
		case crl.CheckSignatureFrom(iss) != nil:
			if fault == errUnableToGetCRL {
				fault = errCRLSignatureFailure
			}
		case now.Before(crl.ThisUpdate):
			fault = errCRLNotYetValid
		case !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate):
			fault = errCRLHasExpired
		case best == nil || crl.ThisUpdate.After(best.ThisUpdate):
			best = crl
		}
	}
	if best == nil {
		return fault
	}
	for _, e := range best.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
			return errCertRevoked
		}
	}
	return 0
}
