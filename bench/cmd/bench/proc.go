package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// usage is the CPU time and resident memory of a process tree.
type usage struct {
	cpu time.Duration // user + system
	rss int64         // bytes
}

// treeUsage sums utime+stime (from /proc/PID/stat) and VmRSS of pid and all its descendants.
func treeUsage(pid int) usage {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := ppidOf(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	var u usage
	var walk func(int)
	walk = func(p int) {
		c, r := procUsage(p)
		u.cpu += c
		u.rss += r
		for _, ch := range children[p] {
			walk(ch)
		}
	}
	walk(pid)
	return u
}

// statFields returns the fields of /proc/PID/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func ppidOf(pid int) (int, bool) {
	f := statFields(pid)
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

// clock ticks per second of /proc/PID/stat; 100 on every Linux architecture we run on.
const hz = 100

func procUsage(pid int) (time.Duration, int64) {
	f := statFields(pid)
	if len(f) < 13 {
		return 0, 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu := time.Duration(ut+st) * time.Second / hz
	var rss int64
	if sf, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		sc := bufio.NewScanner(sf)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				rss = kb << 10
			}
		}
		sf.Close()
	}
	return cpu, rss
}

// freePort returns an unused loopback port below the kernel's ephemeral range (32768 and up), so no client
// connection of the benchmark (nor of other programs) can be holding it when a proxy binds it.
func freePort() int {
	for range 1000 {
		port := 20000 + mrand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	fatalf("no free port between 20000 and 32000")
	return 0
}

// waitProxying polls until a plain GET through the proxy returns the backend's 100-byte body.
func waitProxying(e env) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", e.HTTPort)
	var last error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && len(b) == 100 {
			return nil
		}
		last = fmt.Errorf("status %d, %d bytes", resp.StatusCode, len(b))
	}
	return last
}

// writeCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1/localhost as cert.pem, key.pem and the
// concatenation HAProxy reads (haproxy.pem).
func writeCert(dir string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fatalf("%v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		fatalf("%v", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		fatalf("%v", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	must(os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644))
	must(os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600))
	must(os.WriteFile(filepath.Join(dir, "haproxy.pem"), append(certPEM, keyPEM...), 0o600))
}

func must(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func after(sec int) <-chan time.Time { return time.After(time.Duration(sec) * time.Second) }
