package fastcgi

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSCGIRequestBytes checks the request SCGIClient writes against the bytes nginx 1.22 sends for the same
// parameters (a netstring with CONTENT_LENGTH first, then the parameters as configured, then the body) and that
// a CGI Status answer is read.
func TestSCGIRequestBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		want := len("37:CONTENT_LENGTH\x003\x00REQUEST_METHOD\x00POST\x00,hey")
		b := make([]byte, want)
		n, _ := io.ReadFull(c, b)
		got <- string(b[:n])
		io.WriteString(c, "Status: 201 Made\r\nContent-Type: text/plain\r\n\r\nhello\n")
	}()
	var params []byte
	params = appendParamIn(scgiEnc, params, "REQUEST_METHOD", "POST")
	call := &Call{Params: params, Body: strings.NewReader("hey"), ContentLength: 3}
	resp, err := (&SCGIClient{}).Do(context.Background(), Target{Network: "tcp", Addr: ln.Addr().String(), ReadTimeout: 5 * time.Second}, call)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if s := <-got; s != "37:CONTENT_LENGTH\x003\x00REQUEST_METHOD\x00POST\x00,hey" {
		t.Errorf("request %q", s)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.Status != 201 || resp.Reason != "Made" || resp.Header.Get("Content-Type") != "text/plain" || string(body) != "hello\n" {
		t.Errorf("%d %q %v %q", resp.Status, resp.Reason, resp.Header, body)
	}
}
