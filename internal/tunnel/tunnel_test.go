package tunnel

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpPair returns the two ends of a fresh loopback TCP connection.
func tcpPair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { d.Close(); r.c.Close() })
	return d.(*net.TCPConn), r.c.(*net.TCPConn)
}

// wrapped hides the concrete connection type, forcing Run onto its generic
// (non-raw) read path, while still offering CloseWrite.
type wrapped struct{ net.Conn }

func (w wrapped) CloseWrite() error { return w.Conn.(interface{ CloseWrite() error }).CloseWrite() }

// bare hides the concrete type and offers no CloseWrite.
type bare struct{ net.Conn }

// fixture is a tunnel under test: userConn talks to the client side of Run,
// backendConn is the upstream server.
type fixture struct {
	user, backend net.Conn
	stats         chan Stats
}

type fixtureOpts struct {
	opt                  Options
	ctx                  context.Context
	clientBuf, upBuf     []byte
	wrapClient, wrapUp   func(net.Conn) net.Conn
	clientConn, userConn net.Conn // preset client side (TLS test)
	unixUpstream         bool     // upstream over a unix stream socket
	async                bool     // use Start instead of Run
}

// unixPair returns the two ends of a unix stream socket connection.
func unixPair(t testing.TB) (a, b *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "up.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	d, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c := <-ch
	if c == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); c.Close() })
	return d.(*net.UnixConn), c.(*net.UnixConn)
}

func start(t testing.TB, fo fixtureOpts) *fixture {
	t.Helper()
	user, client := fo.userConn, fo.clientConn
	if client == nil {
		u, c := tcpPair(t)
		user, client = u, c
	}
	var upstream, backend net.Conn
	if fo.unixUpstream {
		upstream, backend = unixPair(t)
	} else {
		upstream, backend = tcpPair(t)
	}
	if fo.wrapClient != nil {
		client = fo.wrapClient(client)
	}
	if fo.wrapUp != nil {
		upstream = fo.wrapUp(upstream)
	}
	ctx := fo.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	f := &fixture{user: user, backend: backend, stats: make(chan Stats, 1)}
	if fo.async {
		Start(ctx, client, upstream, fo.clientBuf, fo.upBuf, fo.opt, func(s Stats) { f.stats <- s })
		return f
	}
	go func() { f.stats <- Run(ctx, client, upstream, fo.clientBuf, fo.upBuf, fo.opt) }()
	return f
}

func (f *fixture) wait(t testing.TB) Stats {
	t.Helper()
	select {
	case s := <-f.stats:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return Stats{}
	}
}

func closeWrite(t testing.TB, c net.Conn) {
	t.Helper()
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

// stream writes n pseudo-random bytes (seeded) to w and returns their SHA-256.
func stream(w io.Writer, n int64, seed uint64) ([32]byte, error) {
	h := sha256.New()
	r := mrand.NewChaCha8([32]byte{byte(seed)})
	buf := make([]byte, 32<<10)
	for n > 0 {
		chunk := buf[:min(int64(len(buf)), n)]
		r.Read(chunk)
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			return [32]byte{}, err
		}
		n -= int64(len(chunk))
	}
	return [32]byte(h.Sum(nil)), nil
}

// drain reads r to EOF and returns the count and SHA-256 of what it read.
func drain(r io.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, [32]byte(h.Sum(nil)), err
}

func TestRunBothWaysIntact(t *testing.T) {
	pool := NewBufferPool(0)
	tests := []struct {
		name string
		size int64
		fo   fixtureOpts
	}{
		{"raw sockets, pool, idle timeout, 64MiB", 64 << 20, fixtureOpts{opt: Options{Pool: pool, IdleTimeout: 5 * time.Second}}},
		{"unix socket upstream, pool", 8 << 20, fixtureOpts{opt: Options{Pool: pool}, unixUpstream: true}},
		{"raw sockets, no pool", 8 << 20, fixtureOpts{opt: Options{BufferSize: 4 << 10}}},
		{"wrapped conns, pool", 8 << 20, fixtureOpts{opt: Options{Pool: pool}, wrapClient: func(c net.Conn) net.Conn { return wrapped{c} }, wrapUp: func(c net.Conn) net.Conn { return wrapped{c} }}},
		{"wrapped conns, no pool, idle timeout", 8 << 20, fixtureOpts{opt: Options{IdleTimeout: 5 * time.Second}, wrapClient: func(c net.Conn) net.Conn { return wrapped{c} }, wrapUp: func(c net.Conn) net.Conn { return wrapped{c} }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, tt.fo)
			type result struct {
				n   int64
				sum [32]byte
				err error
			}
			toUp, toClient := make(chan result, 1), make(chan result, 1)
			go func() { n, s, err := drain(f.backend); toUp <- result{n, s, err} }()
			go func() { n, s, err := drain(f.user); toClient <- result{n, s, err} }()

			var wg sync.WaitGroup
			var sentUp, sentDown [32]byte
			var errUp, errDown error
			wg.Add(2)
			go func() {
				defer wg.Done()
				if sentUp, errUp = stream(f.user, tt.size, 1); errUp == nil {
					errUp = f.user.(*net.TCPConn).CloseWrite()
				}
			}()
			go func() {
				defer wg.Done()
				if sentDown, errDown = stream(f.backend, tt.size, 2); errDown == nil {
					errDown = f.backend.(interface{ CloseWrite() error }).CloseWrite()
				}
			}()
			wg.Wait()
			if errUp != nil || errDown != nil {
				t.Fatalf("sending: %v, %v", errUp, errDown)
			}
			up, down := <-toUp, <-toClient
			if up.err != nil || down.err != nil {
				t.Fatalf("receiving: %v, %v", up.err, down.err)
			}
			if up.n != tt.size || up.sum != sentUp {
				t.Errorf("upstream got %d bytes (hash match %v), want %d", up.n, up.sum == sentUp, tt.size)
			}
			if down.n != tt.size || down.sum != sentDown {
				t.Errorf("client got %d bytes (hash match %v), want %d", down.n, down.sum == sentDown, tt.size)
			}
			st := f.wait(t)
			if st.ClientToUpstream != tt.size || st.UpstreamToClient != tt.size {
				t.Errorf("stats = %d/%d bytes, want %d both ways", st.ClientToUpstream, st.UpstreamToClient, tt.size)
			}
			if st.Reason != ReasonClientClosed && st.Reason != ReasonUpstreamClosed {
				t.Errorf("reason = %q, want an EOF reason", st.Reason)
			}
		})
	}
}

func TestRunBufferedBytesFirst(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		name := "raw"
		fo := fixtureOpts{clientBuf: []byte("PIPELINED|"), upBuf: []byte("EARLY|"), opt: Options{Pool: NewBufferPool(0)}}
		if wrap {
			name = "wrapped"
			fo.wrapClient = func(c net.Conn) net.Conn { return wrapped{c} }
			fo.wrapUp = func(c net.Conn) net.Conn { return wrapped{c} }
		}
		t.Run(name, func(t *testing.T) {
			f := start(t, fo)
			if _, err := f.user.Write([]byte("after")); err != nil {
				t.Fatal(err)
			}
			closeWrite(t, f.user)
			if _, err := f.backend.Write([]byte("frames")); err != nil {
				t.Fatal(err)
			}
			closeWrite(t, f.backend)
			gotUp, err := io.ReadAll(f.backend)
			if err != nil {
				t.Fatal(err)
			}
			gotDown, err := io.ReadAll(f.user)
			if err != nil {
				t.Fatal(err)
			}
			if string(gotUp) != "PIPELINED|after" {
				t.Errorf("upstream got %q, want %q", gotUp, "PIPELINED|after")
			}
			if string(gotDown) != "EARLY|frames" {
				t.Errorf("client got %q, want %q", gotDown, "EARLY|frames")
			}
			st := f.wait(t)
			if st.ClientToUpstream != int64(len("PIPELINED|after")) || st.UpstreamToClient != int64(len("EARLY|frames")) {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// readFull reads exactly n bytes or fails the test.
func readFull(t testing.TB, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return string(b)
}

// expectEOF asserts the next read on c reports EOF (or a closed/reset connection when closedOK).
func expectEOF(t testing.TB, c net.Conn, closedOK bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	n, err := c.Read(make([]byte, 16))
	if err == io.EOF && n == 0 {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open: read timed out")
	}
	if !closedOK || err == nil {
		t.Fatalf("read = %d, %v; want EOF", n, err)
	}
}

func TestRunHalfClose(t *testing.T) {
	f := start(t, fixtureOpts{opt: Options{Pool: NewBufferPool(0), IdleTimeout: 10 * time.Second}})
	if _, err := f.user.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	closeWrite(t, f.user)
	if got := readFull(t, f.backend, 7); got != "request" {
		t.Fatalf("upstream got %q", got)
	}
	expectEOF(t, f.backend, false)

	// The upstream can still answer after the client's half-close.
	for _, part := range []string{"late ", "reply"} {
		if _, err := f.backend.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
		if got := readFull(t, f.user, len(part)); got != part {
			t.Fatalf("client got %q, want %q", got, part)
		}
	}
	select {
	case st := <-f.stats:
		t.Fatalf("Run returned while the upstream direction was open: %+v", st)
	default:
	}
	f.backend.Close()
	expectEOF(t, f.user, false)
	st := f.wait(t)
	if st.Reason != ReasonClientClosed || st.ClientToUpstream != 7 || st.UpstreamToClient != 10 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestRunUpstreamClose(t *testing.T) {
	tests := []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"half-close capable", nil},
		{"client without CloseWrite", func(c net.Conn) net.Conn { return bare{c} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, fixtureOpts{wrapClient: tt.wrap})
			if _, err := f.backend.Write([]byte("bye")); err != nil {
				t.Fatal(err)
			}
			f.backend.Close()
			if got := readFull(t, f.user, 3); got != "bye" {
				t.Fatalf("client got %q", got)
			}
			expectEOF(t, f.user, false)
			if tt.wrap == nil {
				f.user.Close()
			}
			// Without CloseWrite the client side is closed fully: Run returns
			// on its own.
			st := f.wait(t)
			if st.Reason != ReasonUpstreamClosed {
				t.Fatalf("reason = %q, want %q", st.Reason, ReasonUpstreamClosed)
			}
		})
	}
}

func TestRunIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	tests := []struct {
		name string
		fo   fixtureOpts
	}{
		{"raw", fixtureOpts{opt: Options{IdleTimeout: idle, Pool: NewBufferPool(0)}}},
		{"wrapped", fixtureOpts{opt: Options{IdleTimeout: idle}, wrapClient: func(c net.Conn) net.Conn { return wrapped{c} }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, tt.fo)
			if _, err := f.user.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			readFull(t, f.backend, 1)
			st := f.wait(t)
			if st.Reason != ReasonIdleTimeout {
				t.Fatalf("reason = %q, want %q", st.Reason, ReasonIdleTimeout)
			}
			if st.Duration < idle {
				t.Fatalf("closed after %v, before the idle timeout %v", st.Duration, idle)
			}
			expectEOF(t, f.user, true)
			expectEOF(t, f.backend, true)
		})
	}
}

func TestRunOneWayTrafficIsNotIdle(t *testing.T) {
	const idle = 400 * time.Millisecond
	for _, dir := range []string{"client to upstream", "upstream to client"} {
		t.Run(dir, func(t *testing.T) {
			f := start(t, fixtureOpts{opt: Options{IdleTimeout: idle, Pool: NewBufferPool(0)}})
			from, to := f.user, f.backend
			if dir == "upstream to client" {
				from, to = f.backend, f.user
			}
			const beats = 40 // 40 x 50ms = 5 idle periods
			got := make(chan int, 1)
			go func() {
				n, _ := io.Copy(io.Discard, to)
				got <- int(n)
			}()
			for range beats {
				if _, err := from.Write([]byte("!")); err != nil {
					t.Fatalf("tunnel closed during one-way traffic: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			select {
			case st := <-f.stats:
				t.Fatalf("tunnel ended during one-way traffic: %+v", st)
			default:
			}
			st := f.wait(t) // traffic stopped: now it idles out
			if st.Reason != ReasonIdleTimeout {
				t.Fatalf("reason = %q, want idle timeout", st.Reason)
			}
			if n := <-got; n != beats {
				t.Fatalf("receiver got %d bytes, want %d", n, beats)
			}
			if st.Duration < beats*50*time.Millisecond {
				t.Fatalf("tunnel lasted %v, less than the traffic", st.Duration)
			}
		})
	}
}

// A peer that stops reading while the other side keeps sending moves no bytes:
// the tunnel must end after the idle timeout, also when only the blocked
// direction is left (client half-closed) and no read deadline can fire.
func TestRunStalledReaderIdlesOut(t *testing.T) {
	const idle = 300 * time.Millisecond
	tests := []struct {
		name       string
		halfClosed bool
		tls        bool
		poller     bool // the proxy's setup: plain sockets are copied inside their RawConn.Read
		toUpstream bool // the client sends and the upstream stops reading
	}{
		{"both directions open", false, false, false, false},
		{"client half-closed", true, false, false, false},
		{"TLS client, both directions open", false, true, false, false},
		{"TLS client half-closed", true, true, false, false},
		{"poller, both directions open", false, false, true, false},
		{"poller, TLS client half-closed", true, true, true, false},
		{"poller, stalled upstream", false, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fo := fixtureOpts{opt: Options{IdleTimeout: idle, Pool: NewBufferPool(0)}}
			if tt.poller {
				p := NewPoller() // nil where the platform has none
				t.Cleanup(p.Close)
				fo.async, fo.opt.Poller = true, p
			}
			if tt.tls {
				fo.userConn, fo.clientConn = tlsPair(t)
			}
			f := start(t, fo)
			if tt.halfClosed {
				closeWrite(t, f.user)
				expectEOF(t, f.backend, false)
			}
			sendErr := make(chan error, 1)
			sender := f.backend
			if tt.toUpstream {
				sender = f.user
			}
			go func() {
				_, err := stream(sender, 1<<30, 3) // far more than socket buffers
				sendErr <- err
			}()
			st := f.wait(t)
			if st.Reason != ReasonIdleTimeout {
				t.Fatalf("reason = %q, want idle timeout", st.Reason)
			}
			if st.UpstreamToClient+st.ClientToUpstream == 0 {
				t.Fatal("nothing was copied before the stall")
			}
			if st.Duration < idle {
				t.Fatalf("ended after %v, before the idle timeout", st.Duration)
			}
			select {
			case err := <-sendErr:
				if err == nil {
					t.Fatal("1 GiB went into a stalled tunnel")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("upstream writer still blocked after the tunnel closed")
			}
		})
	}
}

// A TLS client that stops reading ends the tunnel after the idle timeout even
// while it keeps sending: a TLS connection cannot be written to again after a
// write timeout, so a write to it blocked for the idle timeout is the end.
func TestRunStalledTLSReaderWhileSending(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, tt := range []struct {
		name   string
		poller bool // writes watched by the idle timer instead of per-write deadlines
	}{{"write deadlines", false}, {"poller", true}} {
		t.Run(tt.name, func(t *testing.T) {
			fo := fixtureOpts{opt: Options{IdleTimeout: idle, Pool: NewBufferPool(0)}}
			if tt.poller {
				p := NewPoller() // nil where the platform has none
				t.Cleanup(p.Close)
				fo.async, fo.opt.Poller = true, p
			}
			fo.userConn, fo.clientConn = tlsPair(t)
			f := start(t, fo)
			go io.Copy(io.Discard, f.backend)
			go stream(f.backend, 1<<30, 3) // far more than socket buffers
			stop := make(chan struct{})
			defer close(stop)
			go func() { // the client keeps sending and never reads
				tick := time.NewTicker(idle / 10)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := f.user.Write([]byte("ping")); err != nil {
							return
						}
					}
				}
			}()
			st := f.wait(t)
			if st.Reason != ReasonIdleTimeout {
				t.Fatalf("reason = %q, want idle timeout", st.Reason)
			}
			if st.ClientToUpstream == 0 || st.UpstreamToClient == 0 {
				t.Fatalf("stats = %+v, want bytes both ways before the stall", st)
			}
		})
	}
}

func TestRunContextCancelClosesBoth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := start(t, fixtureOpts{ctx: ctx, opt: Options{Pool: NewBufferPool(0)}})
	if _, err := f.user.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	readFull(t, f.backend, 2)
	cancel()
	st := f.wait(t)
	if st.Reason != ReasonShutdown {
		t.Fatalf("reason = %q, want %q", st.Reason, ReasonShutdown)
	}
	expectEOF(t, f.user, true)
	expectEOF(t, f.backend, true)
}

func TestRunCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := start(t, fixtureOpts{ctx: ctx})
	if st := f.wait(t); st.Reason != ReasonShutdown {
		t.Fatalf("reason = %q, want %q", st.Reason, ReasonShutdown)
	}
}

// Deadlines left on hijacked connections must not end a tunnel.
func TestRunClearsCallerDeadlines(t *testing.T) {
	u, c := tcpPair(t)
	c.SetDeadline(time.Now().Add(50 * time.Millisecond))
	f := start(t, fixtureOpts{userConn: u, clientConn: c})
	time.Sleep(200 * time.Millisecond)
	if _, err := f.user.Write([]byte("still")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, f.backend, 5); got != "still" {
		t.Fatalf("upstream got %q", got)
	}
	f.user.Close()
	f.backend.Close()
	f.wait(t)
}

func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sluice test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// tlsPair returns a handshaken TLS client (the user) and server (the proxy's
// client side) over loopback TCP.
func tlsPair(t testing.TB) (user, server *tls.Conn) {
	t.Helper()
	return tlsPairOver(t, nil)
}

// tlsPairOver is tlsPair with the user's TCP connection wrapped by wrapUser (nil: not wrapped).
func tlsPairOver(t testing.TB, wrapUser func(*net.TCPConn) net.Conn) (user, server *tls.Conn) {
	t.Helper()
	cert, roots := testCert(t)
	a, b := tcpPair(t)
	var ua net.Conn = a
	if wrapUser != nil {
		ua = wrapUser(a)
	}
	server = tls.Server(NewTLSTransport(b), &tls.Config{Certificates: []tls.Certificate{cert}})
	user = tls.Client(ua, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := user.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return user, server
}

// TestRunTLSClient: a TLS client side carries big streams both ways and half-closes, read by goroutines and,
// with a Poller, inside the socket's RawConn.Read (tlsCopy, where the platform has TCP_INQ).
func TestRunTLSClient(t *testing.T) {
	for _, withPoller := range []bool{false, true} {
		t.Run(fmt.Sprintf("poller=%v", withPoller), func(t *testing.T) {
			opt := Options{Pool: NewBufferPool(0), IdleTimeout: 10 * time.Second}
			if withPoller {
				if opt.Poller = NewPoller(); opt.Poller == nil {
					t.Skip("no poller on this platform")
				}
				defer opt.Poller.Close()
			}
			testRunTLSClient(t, opt)
		})
	}
}

func testRunTLSClient(t *testing.T, opt Options) {
	user, server := tlsPair(t)
	f := start(t, fixtureOpts{userConn: user, clientConn: server, opt: opt})
	const size = 8 << 20

	// Both ways at once, then the client half-closes first.
	upDone := make(chan error, 1)
	var upSum [32]byte
	go func() {
		var err error
		upSum, err = stream(f.user, size, 4)
		if err == nil {
			err = user.CloseWrite()
		}
		upDone <- err
	}()
	downDone := make(chan error, 1)
	var downSum [32]byte
	go func() {
		var err error
		downSum, err = stream(f.backend, size, 5)
		downDone <- err
	}()
	n, sum, err := drain(f.backend) // ends at the client's half-close
	if err != nil || n != size {
		t.Fatalf("upstream read %d bytes, %v", n, err)
	}
	if err := <-upDone; err != nil {
		t.Fatal(err)
	}
	if sum != upSum {
		t.Fatal("client->upstream bytes corrupted")
	}
	// The upstream is still sending after the client's half-close.
	h := sha256.New()
	if _, err := io.CopyN(h, f.user, size); err != nil {
		t.Fatal(err)
	}
	if err := <-downDone; err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != downSum {
		t.Fatal("upstream->client bytes corrupted")
	}
	if _, err := f.backend.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, f.user, 4); got != "tail" {
		t.Fatalf("client got %q", got)
	}
	f.backend.Close()
	expectEOF(t, f.user, false) // close_notify from the proxy
	st := f.wait(t)
	if st.Reason != ReasonClientClosed || st.ClientToUpstream != size || st.UpstreamToClient != size+4 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestRunStatsErrorReason(t *testing.T) {
	f := start(t, fixtureOpts{})
	// An abortive close (RST) of the upstream is an error, not an EOF.
	f.backend.(*net.TCPConn).SetLinger(0)
	f.backend.Close()
	st := f.wait(t)
	if !strings.HasPrefix(st.Reason, "error: upstream: ") {
		t.Fatalf("reason = %q, want an upstream error", st.Reason)
	}
	expectEOF(t, f.user, true)
}

func BenchmarkRunThroughput(b *testing.B) {
	pool := NewBufferPool(0)
	f := start(b, fixtureOpts{opt: Options{Pool: pool, IdleTimeout: time.Minute}})
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, f.user)
		done <- n
	}()
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.backend.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	closeWrite(b, f.backend)
	<-done
	f.user.Close()
	f.wait(b)
}
