package stream

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/vars"
)

// TestPrereadClientHello: the ClientHello a real TLS client sends, split over reads, yields its server name and
// ALPN list, and every byte read is kept for the upstream.
func TestPrereadClientHello(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	sent := make(chan []byte, 1)
	rec := &recorder{Conn: client, out: sent}
	go func() {
		tc := tls.Client(rec, &tls.Config{ServerName: "DB.Example.org", NextProtos: []string{"h2", "postgresql"}, InsecureSkipVerify: true})
		tc.Handshake() // fails once the pipe closes; the hello has been written by then
	}()
	s := &session{client: server, v: &vars.Request{Stream: &vars.StreamVars{}}}
	got, err := s.preread()
	if err != nil {
		t.Fatal(err)
	}
	if s.v.Stream.SSLPrereadServerName != "db.example.org" || s.v.Stream.SSLPrereadALPN != "h2,postgresql" {
		t.Errorf("preread gave %q and %q", s.v.Stream.SSLPrereadServerName, s.v.Stream.SSLPrereadALPN)
	}
	want := <-sent
	if string(got) != string(want[:len(got)]) || len(got) < len(want) {
		t.Errorf("preread kept %d bytes, the client sent %d (the first write): every byte must reach the upstream", len(got), len(want))
	}
}

// recorder passes a connection through and reports its first write.
type recorder struct {
	net.Conn
	out  chan []byte
	done bool
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.done {
		r.done = true
		r.out <- append([]byte(nil), p...)
	}
	// split the hello over two writes, as a client may
	n, err := r.Conn.Write(p[:len(p)/2])
	if err != nil {
		return n, err
	}
	m, err := r.Conn.Write(p[len(p)/2:])
	return n + m, err
}

// TestPrereadNotTLS: a client that does not start with a TLS handshake is passed on with the variables empty.
func TestPrereadNotTLS(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go client.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	s := &session{client: server, v: &vars.Request{Stream: &vars.StreamVars{}}}
	got, err := s.preread()
	if err != nil || string(got[:3]) != "SSH" || s.v.Stream.SSLPrereadServerName != "" {
		t.Errorf("preread of SSH: %q, %v, name %q", got, err, s.v.Stream.SSLPrereadServerName)
	}
}

// TestConnectError: a refused connect is described as nginx's error log does.
func TestConnectError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	_, err = net.DialTimeout("tcp", a, time.Second)
	if got := connectError(err); got != "connect() failed (111: Connection refused)" {
		t.Errorf("connectError = %q", got)
	}
}

func TestAppendSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0.000", 1500 * time.Microsecond: "0.001", 12345 * time.Millisecond: "12.345", 2*time.Second + 50*time.Millisecond: "2.050"} {
		if got := string(appendSeconds(nil, d)); got != want {
			t.Errorf("appendSeconds(%v) = %q, want %q", d, got, want)
		}
	}
}
