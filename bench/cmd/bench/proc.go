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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// usage is the CPU time and resident memory of a process tree.
type usage struct {
	user, sys time.Duration // utime and stime
	rss       int64         // bytes
}

// treeUsage sums utime, stime (from /proc/PID/stat) and VmRSS of pid and all its descendants.
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
		pu := procUsage(p)
		u.user += pu.user
		u.sys += pu.sys
		u.rss += pu.rss
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

// procUsage reads one process's utime, stime and VmRSS.
func procUsage(pid int) usage {
	f := statFields(pid)
	if len(f) < 13 {
		return usage{}
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u := usage{user: time.Duration(ut) * time.Second / hz, sys: time.Duration(st) * time.Second / hz}
	if sf, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		sc := bufio.NewScanner(sf)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				u.rss = kb << 10
			}
		}
		sf.Close()
	}
	return u
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

// cpuTicks is one CPU's time from its /proc/stat line, in clock ticks: busy is total less idle and iowait.
type cpuTicks struct{ busy, total int64 }

// cpuStat reads the cpuN lines of /proc/stat, by N; nil when it cannot.
func cpuStat() map[int]cpuTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	return parseCPUStat(string(b))
}

// parseCPUStat reads the cpuN lines of a /proc/stat text: user nice system idle iowait irq softirq steal (guest
// time is already counted in user and nice).
func parseCPUStat(text string) map[int]cpuTicks {
	cpus := map[int]cpuTicks{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue // the "cpu" line sums them all
		}
		var t [8]int64
		for i := range t {
			t[i], _ = strconv.ParseInt(f[i+1], 10, 64)
		}
		var c cpuTicks
		for _, v := range t {
			c.total += v
		}
		c.busy = c.total - t[3] - t[4]
		cpus[n] = c
	}
	return cpus
}

// meter is the start of a measured interval: the proxy tree's CPU time and every CPU's ticks.
type meter struct {
	pid  int
	proc usage
	cpus map[int]cpuTicks
}

// startMeter starts measuring the interval that the proxy pid's figures are taken over.
func startMeter(pid int) meter { return meter{pid: pid, proc: treeUsage(pid), cpus: cpuStat()} }

// span is what a measured interval cost: the proxy's user and system time and each CPU's ticks.
type span struct {
	user, sys time.Duration
	cpus      map[int]cpuTicks // spent during the interval
}

// stop ends the interval.
func (m meter) stop() span {
	end, cpus := treeUsage(m.pid), cpuStat()
	sp := span{user: end.user - m.proc.user, sys: end.sys - m.proc.sys, cpus: map[int]cpuTicks{}}
	for n, c := range cpus {
		if b, ok := m.cpus[n]; ok {
			sp.cpus[n] = cpuTicks{busy: c.busy - b.busy, total: c.total - b.total}
		}
	}
	return sp
}

// cpu is the proxy's user and system time together.
func (sp span) cpu() time.Duration { return sp.user + sp.sys }

// busy is the share (0–1) of the time of cpus (nil: every CPU) that was busy during the interval.
func (sp span) busy(cpus []int) (float64, bool) {
	var busy, total int64
	for n, c := range sp.cpus {
		if cpus == nil || slices.Contains(cpus, n) {
			busy += c.busy
			total += c.total
		}
	}
	if total <= 0 {
		return 0, false
	}
	return float64(busy) / float64(total), true
}

// cpuGroup is a set of CPUs whose busy share the bounds table shows.
type cpuGroup struct {
	key, label string
	cpus       []int // nil: every CPU
}

// cpuGroups are the groups of a layout (taskset lists, "" = unpinned): the load generators' and the proxy's CPUs
// when pinned, every CPU together when not.
func cpuGroups(load, proxy string) []cpuGroup {
	if load == "" || proxy == "" {
		return []cpuGroup{{"all", fmt.Sprintf("all %d CPUs busy", runtime.NumCPU()), nil}}
	}
	return []cpuGroup{{"load", "load CPU " + load + " busy", cpuList(load)}, {"proxy", "proxy CPU " + proxy + " busy", cpuList(proxy)}}
}

// cpuList reads a taskset CPU list such as "0", "0,2" or "0-3".
func cpuList(s string) []int {
	var cpus []int
	for _, f := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			fatalf("bad CPU list %q", s)
		}
		b := a
		if ok {
			if b, err = strconv.Atoi(hi); err != nil {
				fatalf("bad CPU list %q", s)
			}
		}
		for n := a; n <= b; n++ {
			cpus = append(cpus, n)
		}
	}
	return cpus
}
