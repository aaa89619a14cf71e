// Command instr counts the user-space instructions sluice and nginx spend per request, under valgrind's
// callgrind, for the same requests on the same nginx-syntax configuration: a proxied keep-alive GET (to
// echoback) and a 1 KiB static file over plain HTTP, the proxied GET over HTTPS (TLS 1.3, the handshakes
// made before counting), and per 64 B message echoed through a wss tunnel (TLS 1.3 to the proxy, plain ws to
// echoback; the upgrades made before counting). Unlike req/s or CPU time on a shared 2-core VM
// (±30% between runs), the count repeats to within a percent, so it shows what a change to the request path
// is worth. Kernel work (the system calls) is not counted; callgrind runs the program on one thread at a
// time, so scheduling differs from a real run.
//
// Usage (from the repository root): go run ./bench/cmd/instr [-n 300] [-c 10]
// Needs valgrind and nginx (apt-get install -y valgrind nginx).
package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	n := flag.Int("n", 300, "requests per connection in the counted phase")
	c := flag.Int("c", 10, "keep-alive connections")
	keep := flag.String("keep", "", "copy each counted callgrind profile into this directory (for callgrind_annotate)")
	nogc := flag.Bool("nogc", false, "run sluice with GOGC=off: no collections, so two builds' counts differ by their code only")
	only := flag.String("only", "", "count only this server (sluice or nginx), for a quicker before/after of one build")
	rows := flag.String("rows", "proxy,static,https,wss", "the requests to count, comma separated")
	cache := flag.Bool("cache", false, "simulate the caches too (callgrind --cache-sim=yes) and print data-cache misses per request")
	flag.Parse()
	for _, tool := range []string{"valgrind", "callgrind_control", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			fatalf("%s not found (apt-get install -y valgrind nginx)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "sluice-instr-")
	must(err)
	defer os.RemoveAll(dir)
	must(os.Chmod(dir, 0o755))
	must(os.MkdirAll(filepath.Join(dir, "www/static"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "www/static/1k.txt"), []byte(strings.Repeat("0123456789abcdef", 64)), 0o644))
	writeCert(dir)
	for _, p := range [][2]string{{"sluice", "./cmd/sluice"}, {"echoback", "./bench/cmd/echoback"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, p[0]), p[1])
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		must(cmd.Run())
	}
	echo := exec.Command(filepath.Join(dir, "echoback"), "-addr", "127.0.0.1:18180")
	echo.SysProcAttr = diesWithUs()
	must(echo.Start())
	defer echo.Process.Kill()

	targets := []struct {
		name string
		port int
		cmd  func(conf string) *exec.Cmd
	}{
		{"sluice", 18191, func(conf string) *exec.Cmd {
			cmd := exec.Command(filepath.Join(dir, "sluice"), "-c", conf, "-p", dir, "-e", filepath.Join(dir, "sluice.err"))
			// callgrind does not survive Go's preemption signals, and valgrind 3.19 does not know RDTSCP (the
			// runtime reads the clock with it while it spins for a contended lock: SIGILL)
			cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off")
			if *nogc {
				cmd.Env = append(cmd.Env, "GOGC=off")
			}
			return cmd
		}},
		{"nginx", 18192, func(conf string) *exec.Cmd {
			return exec.Command("nginx", "-c", conf, "-p", dir, "-g", "daemon off; master_process off;")
		}},
	}
	paths := []work{
		{"proxy", "proxied GET (100 B body)", "/", false, false},
		{"static", "static 1 KiB file", "/static/1k.txt", false, false},
		{"https", "proxied GET over HTTPS", "/", true, false},
		{"wss", "wss echo, per 64 B message", "/wss", true, true},
	}
	want := map[string]bool{}
	for _, r := range strings.Split(*rows, ",") {
		want[strings.TrimSpace(r)] = true
	}
	for i, p := range paths {
		if !want[p.key] {
			paths[i].path = ""
		}
	}
	counts := map[string]map[string]map[string]int64{} // target, row, event
	vgArgs := []string{"--tool=callgrind"}
	if *cache {
		vgArgs = append(vgArgs, "--cache-sim=yes")
	}
	for _, t := range targets {
		if *only != "" && t.name != *only {
			continue
		}
		conf := filepath.Join(dir, t.name+".conf")
		must(os.WriteFile(conf, []byte(config(dir, t.name, t.port)), 0o644))
		counts[t.name] = map[string]map[string]int64{}
		for _, p := range paths {
			if p.path == "" {
				continue
			}
			counts[t.name][p.label] = count(dir, t.name, t.cmd(conf), vgArgs, t.port, p, *c, *n, *keep)
		}
	}
	fmt.Printf("\nuser-space instructions per request or message (callgrind, %d keep-alive connections x %d requests or messages)\n\n", *c, *n)
	fmt.Println("| request | sluice | nginx | sluice/nginx |")
	fmt.Println("|---|---|---|---|")
	for _, p := range paths {
		if p.path == "" {
			continue
		}
		s, g := counts["sluice"][p.label]["Ir"], counts["nginx"][p.label]["Ir"]
		ratio := "-"
		if s > 0 && g > 0 {
			ratio = fmt.Sprintf("%.2f×", float64(s)/float64(g))
		}
		fmt.Printf("| %s | %d | %d | %s |\n", p.label, s, g, ratio)
	}
	if !*cache {
		return
	}
	// D1: first-level data-cache misses (reads and writes); LL: last-level misses of data
	miss := func(ev map[string]int64, a, b string) int64 { return ev[a] + ev[b] }
	fmt.Printf("\nsimulated data-cache misses per request or message (callgrind --cache-sim=yes: D1 first level, LL last level)\n\n")
	fmt.Println("| request | sluice D1 | nginx D1 | sluice LL | nginx LL |")
	fmt.Println("|---|---|---|---|---|")
	for _, p := range paths {
		if p.path == "" {
			continue
		}
		s, g := counts["sluice"][p.label], counts["nginx"][p.label]
		fmt.Printf("| %s | %d | %d | %d | %d |\n", p.label, miss(s, "D1mr", "D1mw"), miss(g, "D1mr", "D1mw"), miss(s, "DLmr", "DLmw"), miss(g, "DLmr", "DLmw"))
	}
}

// config is the one configuration both servers read (worker_processes 1, upstream keep-alive, no logs); the
// HTTPS listener is on port+100.
func config(dir, name string, port int) string {
	return fmt.Sprintf(`worker_processes 1;
pid %[1]s/%[2]s.pid;
error_log %[1]s/%[2]s.error.log error;
events { worker_connections 1024; }
http {
    access_log off;
    upstream be { server 127.0.0.1:18180; keepalive 64; }
    server {
        listen 127.0.0.1:%[3]d;
        listen 127.0.0.1:%[4]d ssl;
        ssl_certificate %[1]s/cert.pem;
        ssl_certificate_key %[1]s/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location /static/ { root %[1]s/www; }
        location /wss {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }
    }
}
`, dir, name, port, port+100)
}

// writeCert writes a self-signed ECDSA P-256 certificate and its key as dir/cert.pem and dir/key.pem.
func writeCert(dir string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	must(err)
	must(os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	must(os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
}

// count starts cmd under callgrind, warms it up, counts the instructions of c*n requests to path (or of c*n
// messages echoed on c WebSockets) and returns the count per request or message. With keep set, the profile is copied there as NAME-PATH.callgrind (NAME-PATH-tls).
// work is one row: what is requested, and how.
type work struct {
	key, label, path string
	tls              bool
	ws               bool // a WebSocket upgrade, then messages echoed
}

func count(dir, name string, cmd *exec.Cmd, vgArgs []string, port int, w work, c, n int, keep string) map[string]int64 {
	path, tls := w.path, w.tls
	out := filepath.Join(dir, name+".callgrind")
	args := append(append(vgArgs[:len(vgArgs):len(vgArgs)], "--callgrind-out-file="+out, cmd.Path), cmd.Args[1:]...)
	vg := exec.Command("valgrind", args...)
	vg.Env = cmd.Env
	vg.SysProcAttr = diesWithUs()
	must(vg.Start())
	defer func() {
		vg.Process.Signal(syscall.SIGKILL)
		vg.Wait()
	}()
	target := "127.0.0.1:" + strconv.Itoa(port)
	if tls {
		target = "127.0.0.1:" + strconv.Itoa(port+100)
	}
	// wait for the listener counted (the TLS one is opened after the plain one: waiting for the plain one
	// alone once had the first TLS dial refused)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if conn, err := net.Dial("tcp", target); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			fatalf("%s did not start under valgrind", name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pid := strconv.Itoa(vg.Process.Pid)
	if w.ws {
		echo(upgrade(dial(target, tls, c), path), 20) // warm-up
		conns := upgrade(dial(target, tls, c), path)  // upgraded before the count starts
		must(exec.Command("callgrind_control", "-z", pid).Run())
		echo(conns, n)
		must(exec.Command("callgrind_control", "-d", pid).Run())
	} else {
		load(dial(target, tls, c), path, 20) // warm-up: pools, buffers, the upstream's keep-alive connections
		conns := dial(target, tls, c)        // connected (and handshaken) before the count starts
		must(exec.Command("callgrind_control", "-z", pid).Run())
		load(conns, path, n)
		must(exec.Command("callgrind_control", "-d", pid).Run())
	}
	files, _ := filepath.Glob(out + "*")
	var newest string
	var when time.Time
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Size() > 0 && fi.ModTime().After(when) {
			newest, when = f, fi.ModTime()
		}
	}
	if newest == "" {
		fatalf("%s: callgrind wrote no profile", name)
	}
	prof, err := os.ReadFile(newest)
	must(err)
	if keep != "" {
		must(os.MkdirAll(keep, 0o755))
		base := name + "-" + strings.Trim(strings.ReplaceAll(path, "/", "_"), "_")
		if tls {
			base += "-tls"
		}
		dst := filepath.Join(keep, base+".callgrind")
		must(os.WriteFile(dst, prof, 0o644))
		fmt.Printf("%s %s: profile kept in %s\n", name, path, dst)
	}
	// the profile names its events ("events: Ir D1mr …") and sums them over the program ("summary: …")
	var events, sums []string
	for _, line := range strings.Split(string(prof), "\n") {
		if f, ok := strings.CutPrefix(line, "events:"); ok {
			events = strings.Fields(f)
		} else if f, ok := strings.CutPrefix(line, "summary:"); ok {
			sums = strings.Fields(f)
		}
	}
	if len(events) == 0 || len(events) != len(sums) {
		fatalf("%s: no events and summary in %s", name, newest)
	}
	per := map[string]int64{}
	for i, e := range events {
		v, err := strconv.ParseInt(sums[i], 10, 64)
		must(err)
		per[e] = v / int64(c*n)
	}
	fmt.Printf("%s %s (tls %v): %s instructions in %d requests\n", name, path, tls, sums[0], c*n)
	return per
}

// dial opens c connections to addr (TLS 1.3 when tls, handshake done), each with its reader.
func dial(addr string, useTLS bool, c int) []net.Conn {
	conns := make([]net.Conn, c)
	for i := range conns {
		conn, err := net.Dial("tcp", addr)
		must(err)
		if useTLS {
			tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
			must(tc.Handshake())
			conn = tc
		}
		conns[i] = conn
	}
	return conns
}

// load sends n keep-alive GETs for path on each connection, checks every answer is a 200 and closes them.
func load(conns []net.Conn, path string, n int) {
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			br := bufio.NewReader(conn)
			req := "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: instr\r\nAccept: */*\r\n\r\n"
			for j := 0; j < n; j++ {
				_, err := io.WriteString(conn, req)
				must(err)
				resp, err := http.ReadResponse(br, nil)
				must(err)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					fatalf("GET %s: status %d", path, resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
}

// upgrade opens a WebSocket on each connection (gorilla's client, as bench/cmd/wsload). The URL is ws: the
// connection is TLS already, and a wss URL would start a second TLS session over it.
func upgrade(conns []net.Conn, path string) []*websocket.Conn {
	ws := make([]*websocket.Conn, len(conns))
	for i, conn := range conns {
		d := websocket.Dialer{NetDial: func(string, string) (net.Conn, error) { return conn, nil }}
		c, resp, err := d.Dial("ws://127.0.0.1"+path, nil)
		must(err)
		resp.Body.Close()
		ws[i] = c
	}
	return ws
}

// echo sends n 64-byte messages on each WebSocket, one at a time, checks every echo and closes them.
func echo(conns []*websocket.Conn, n int) {
	msg := []byte(strings.Repeat("0123456789abcdef", 4))
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for j := 0; j < n; j++ {
				must(c.WriteMessage(websocket.BinaryMessage, msg))
				_, got, err := c.ReadMessage()
				must(err)
				if !bytes.Equal(got, msg) {
					fatalf("wss echo: got %q", got)
				}
			}
		}()
	}
	wg.Wait()
}

// diesWithUs has the kernel kill a child when instr exits, also through fatalf's os.Exit (which runs no
// deferred kill): a server left behind holds its port, and the next count measures it instead.
func diesWithUs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

func must(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "instr: "+format+"\n", args...)
	os.Exit(1)
}
