package e2e

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn opens a TLS connection negotiating h2, sends the client preface and an empty SETTINGS frame, and
// returns a framer with the server's first SETTINGS read.
func h2Conn(t *testing.T, port int) (net.Conn, *http2.Framer, map[http2.SettingID]uint32) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr(port),
		&tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("ALPN %q, want h2", c.ConnectionState().NegotiatedProtocol)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	settings := map[http2.SettingID]uint32{}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading server SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			sf.ForeachSetting(func(s http2.Setting) error { settings[s.ID] = s.Val; return nil })
			fr.WriteSettingsAck()
			return c, fr, settings
		}
	}
}

// headerBlock encodes a request's header fields with HPACK.
func headerBlock(method, path string, extra ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", method}, {":scheme", "https"}, {":authority", "localhost"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return buf.Bytes()
}

// TestHTTP2Limits: the limits sluice sets on HTTP/2 are the ones advertised and enforced — concurrent
// streams, header list size, CONTINUATION floods and rapid resets leave the server serving.
func TestHTTP2Limits(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	def, small := freePort(t), freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{DEF}} ssl;
        http2 on;
        ssl_certificate self-signed;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
    server {
        listen {{SMALL}} ssl;
        http2 on;
        http2_max_concurrent_streams 4;
        large_client_header_buffers 4 4k;
        ssl_certificate self-signed;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "DEF", def, "SMALL", small, "ECHO", echo.Port))

	t.Run("advertised settings", func(t *testing.T) {
		_, _, s := h2Conn(t, def)
		if s[http2.SettingMaxConcurrentStreams] != 128 {
			t.Errorf("MAX_CONCURRENT_STREAMS %d, want 128", s[http2.SettingMaxConcurrentStreams])
		}
		if v := s[http2.SettingMaxHeaderListSize]; v == 0 || v > 33<<10 {
			t.Errorf("MAX_HEADER_LIST_SIZE %d, want about 32k (large_client_header_buffers 4 8k)", v)
		}
		if v, ok := s[http2.SettingMaxFrameSize]; ok && v != 16<<10 {
			t.Errorf("MAX_FRAME_SIZE %d, want 16384", v)
		}
		_, _, s = h2Conn(t, small)
		if s[http2.SettingMaxConcurrentStreams] != 4 {
			t.Errorf("http2_max_concurrent_streams 4: advertised %d", s[http2.SettingMaxConcurrentStreams])
		}
	})

	t.Run("streams over the limit are refused", func(t *testing.T) {
		_, fr, _ := h2Conn(t, small)
		// POSTs whose bodies never end keep their streams open
		for i := uint32(0); i < 5; i++ {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1 + 2*i, BlockFragment: headerBlock("POST", "/open"), EndHeaders: true})
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("no RST_STREAM for the fifth stream: %v", err)
			}
			if rst, ok := f.(*http2.RSTStreamFrame); ok {
				if rst.StreamID != 9 || (rst.ErrCode != http2.ErrCodeRefusedStream && rst.ErrCode != http2.ErrCodeProtocol) {
					t.Errorf("RST_STREAM on stream %d (%v), want stream 9 refused", rst.StreamID, rst.ErrCode)
				}
				return
			}
		}
	})

	t.Run("CONTINUATION flood closes the connection", func(t *testing.T) {
		c, fr, _ := h2Conn(t, small)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("GET", "/"), EndHeaders: false})
		junk := headerBlock("GET", "/", "x-junk", string(bytes.Repeat([]byte("a"), 1000)))
		closed := false
		for i := 0; i < 2000 && !closed; i++ { // 2 MB of header block, far over the 16k limit, never ended
			if err := fr.WriteContinuation(1, false, junk); err != nil {
				closed = true
			}
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for !closed {
			f, err := fr.ReadFrame()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the connection is still open 10s into an endless header block")
			}
			if err != nil {
				break
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				closed = true
			}
		}
	})

	t.Run("rapid reset leaves the server serving", func(t *testing.T) {
		c, fr, _ := h2Conn(t, small)
		var buf bytes.Buffer
		bfr := http2.NewFramer(&buf, nil)
		for i := uint32(0); i < 2000; i++ {
			id := 1 + 2*i
			bfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headerBlock("GET", "/reset"), EndHeaders: true, EndStream: true})
			bfr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
		c.Write(buf.Bytes())
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		calm := false
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok && ga.ErrCode == http2.ErrCodeEnhanceYourCalm {
				calm = true
			}
		}
		reached := 0
		for _, s := range echo.all() {
			if s.URI == "/reset" {
				reached++
			}
		}
		// Whether x/net's bound on queued handlers trips (GOAWAY ENHANCE_YOUR_CALM) depends on how fast
		// handlers finish on this machine, so it is reported, not asserted; what must hold is that reset
		// streams are not all served and the server keeps serving others.
		t.Logf("GOAWAY ENHANCE_YOUR_CALM: %v; reset streams that reached the upstream: %d of 2000", calm, reached)
		if reached >= 2000 {
			t.Errorf("every reset stream reached the upstream")
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr(small) + "/after")
		if err != nil {
			t.Fatalf("after the rapid reset: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Errorf("after the rapid reset: %s %s", resp.Proto, resp.Status)
		}
	})
}
