package server

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordCounter counts the TLS records a client receives, from their 5-byte headers in the raw stream.
type recordCounter struct {
	net.Conn
	hdr     []byte // the current record header, while incomplete
	left    int    // bytes of the current record's body still to come
	records int
}

func (c *recordCounter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if c.left > 0 {
			k := min(c.left, len(b))
			c.left, b = c.left-k, b[k:]
			continue
		}
		k := min(5-len(c.hdr), len(b))
		c.hdr, b = append(c.hdr, b[:k]...), b[k:]
		if len(c.hdr) == 5 {
			c.records++
			c.left = int(c.hdr[3])<<8 | int(c.hdr[4])
			c.hdr = c.hdr[:0]
		}
	}
	return n, err
}

// TestSSLBufferSize checks that a response goes out in full-size TLS records by default (as nginx's
// ssl_buffer_size 16k) and in many small ones at the start of a connection with a smaller ssl_buffer_size.
func TestSSLBufferSize(t *testing.T) {
	records := func(directive string) int {
		url, www := benchTLSServer(t, func(dir string) string {
			return directive + "\nlocation /static/ { root " + filepath.Join(dir, "www") + "; }"
		})
		os.WriteFile(filepath.Join(www, "static/big.txt"), []byte(strings.Repeat("x", 12000)), 0o644)
		var rc *recordCounter
		tr := &http.Transport{DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err != nil {
				return nil, err
			}
			rc = &recordCounter{Conn: c}
			tc := tls.Client(rc, &tls.Config{InsecureSkipVerify: true})
			return tc, tc.HandshakeContext(ctx)
		}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(url + "/static/big.txt")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != 12000 {
			t.Fatalf("%d body bytes", len(body))
		}
		return rc.records
	}
	full, small := records(""), records("ssl_buffer_size 4k;")
	// 12 kB: records of up to 16 KiB by default; with dynamic sizing of 1, 2, 3, … TCP segments (~1.2 kB), so at
	// least three more
	if small < full+3 {
		t.Errorf("records received: %d with the default ssl_buffer_size, %d with 4k; want the default to send the response in far fewer", full, small)
	}
}
