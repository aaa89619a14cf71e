package fastcgi

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-proxy/sluice/internal/netutil"
)

// UWSGIClient runs requests in the uwsgi protocol: a packet of the request's variables and then its body, and
// back a raw HTTP/1.x response. Each request has a connection of its own, as with nginx's uwsgi module (uWSGI
// closes it after the response).
type UWSGIClient struct{ oneShot }

// SCGIClient runs requests in the SCGI protocol: a netstring of NUL-separated variables (CONTENT_LENGTH first;
// SCGI=1 comes from scgi_params, as with nginx's scgi module) and then the body, and back a CGI header (an HTTP status line is read
// too) and the body until the application closes the connection; each request has a connection of its own.
type SCGIClient struct{ oneShot }

// oneShot is what the uwsgi and SCGI clients share: a connection per request, the request's head written by
// the protocol, then its body, and back a raw HTTP or CGI response read to its length or the connection's end.
type oneShot struct {
	bodyBufs sync.Pool // *[]byte copy buffers for request bodies
}

// ErrUWSGITooBig means the request's variables do not fit the uwsgi packet's 16-bit size (nginx answers 500).
var ErrUWSGITooBig = errors.New("uwsgi request is too big")

// Do sends call to t (Params encoded with uwsgiLen) and reads the response header.
func (c *UWSGIClient) Do(ctx context.Context, t Target, call *Call) (*Response, error) {
	if len(call.Params) > 0xffff {
		return nil, ErrUWSGITooBig
	}
	return c.do(ctx, t, call, func(bw *bufio.Writer) {
		hdr := [4]byte{call.Modifier1, 0, 0, call.Modifier2}
		binary.LittleEndian.PutUint16(hdr[1:3], uint16(len(call.Params)))
		bw.Write(hdr[:])
		bw.Write(call.Params)
	})
}

// Do sends call to t (Params encoded with scgiEnc) and reads the response header.
func (c *SCGIClient) Do(ctx context.Context, t Target, call *Call) (*Response, error) {
	return c.do(ctx, t, call, func(bw *bufio.Writer) {
		var buf [40]byte
		pre := append(buf[:0], "CONTENT_LENGTH\x00"...)
		pre = strconv.AppendInt(pre, call.ContentLength, 10)
		pre = append(pre, 0)
		bw.WriteString(strconv.Itoa(len(pre) + len(call.Params)))
		bw.WriteByte(':')
		bw.Write(pre)
		bw.Write(call.Params)
		bw.WriteByte(',')
	})
}

// do dials t, writes the request's head (head) and body, and reads the response header.
func (c *oneShot) do(ctx context.Context, t Target, call *Call, head func(*bufio.Writer)) (*Response, error) {
	d := t.dialer()
	nc, err := d.DialContext(ctx, t.Network, t.Addr)
	if err != nil {
		return nil, &Error{Op: "connect", Timeout: isTimeout(err), Err: err}
	}
	nc = netutil.NewSocket(nc)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	resp, err := c.exchange(nc, t, call, head)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return resp, nil
}

func (c *oneShot) exchange(nc net.Conn, t Target, call *Call, head func(*bufio.Writer)) (*Response, error) {
	bw := bufio.NewWriterSize(&netutil.DeadlineWriter{Conn: nc, D: t.SendTimeout}, 16<<10)
	head(bw)
	if call.Body != nil && call.ContentLength != 0 {
		bp, _ := c.bodyBufs.Get().(*[]byte)
		if bp == nil {
			b := make([]byte, 32<<10)
			bp = &b
		}
		n, err := io.CopyBuffer(onlyWriter{bw}, onlyReader{call.Body}, *bp)
		c.bodyBufs.Put(bp)
		if err == nil && n != call.ContentLength {
			err = &bodyError{fmt.Errorf("request body is %d bytes, expected %d", n, call.ContentLength)}
		}
		if err != nil {
			if IsBodyError(err) {
				return nil, err
			}
			var we writeError
			if errors.As(err, &we) {
				return nil, &Error{Op: "send", Timeout: isTimeout(we.err), Err: we.err}
			}
			return nil, &bodyError{err}
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, &Error{Op: "send", Timeout: isTimeout(err), Err: err}
	}
	rd := &timedReader{nc: nc, d: t.ReadTimeout}
	lr := &limitedReader{r: rd, n: 64 << 10}
	br := bufio.NewReaderSize(lr, 4096)
	resp, err := readHTTPHeader(br)
	if err != nil {
		if lr.n <= 0 {
			err = ErrHeaderTooBig
		}
		return nil, &Error{Op: "read header", Timeout: isTimeout(err), Err: err}
	}
	lr.n = 1 << 62
	b := &uwsgiBody{nc: nc, r: br, left: -1}
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			b.left = n
		}
	}
	resp.Body = b
	return resp, nil
}

// readHTTPHeader reads an HTTP/1.x status line and header, as nginx's uwsgi and scgi modules do: a response
// without a status line is read as a CGI header (Status, Location), like FastCGI's.
func readHTTPHeader(br *bufio.Reader) (*Response, error) {
	resp := &Response{}
	p, err := br.Peek(5)
	if err != nil && (err != io.EOF || len(p) == 0) {
		return nil, unexpected(err) // (a shorter answer is read as a CGI header, and fails there)
	}
	if string(p) == "HTTP/" {
		line, err := textproto.NewReader(br).ReadLine()
		if err != nil {
			return nil, unexpected(err)
		}
		_, rest, _ := strings.Cut(line, " ")
		code, reason, _ := strings.Cut(rest, " ")
		n, err := strconv.Atoi(code)
		if len(code) != 3 || err != nil || n < 200 { // (1xx: see cgiStatus)
			return nil, fmt.Errorf("upstream sent invalid status line %q", line)
		}
		resp.Status, resp.Reason = n, strings.TrimSpace(reason)
	}
	mh, err := textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		return nil, unexpected(err)
	}
	resp.Header = http.Header(mh)
	return resp, cgiStatus(resp)
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// uwsgiBody is the response body: up to Content-Length when there is one, else up to the connection's end.
type uwsgiBody struct {
	nc   net.Conn
	r    *bufio.Reader
	left int64 // -1: until the connection closes
	done bool
}

func (b *uwsgiBody) Read(p []byte) (int, error) {
	if b.done || b.left == 0 {
		return 0, io.EOF
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF // the application closed before Content-Length bytes
	}
	if err == io.EOF {
		b.done = true
	} else if err != nil {
		err = &Error{Op: "read body", Timeout: isTimeout(err), Err: err}
	}
	return n, err
}

// Ready reports whether more body bytes are ready without waiting for the application (proxy.Ready).
func (b *uwsgiBody) Ready() bool { return !b.done && b.left != 0 && b.r.Buffered() > 0 }

func (b *uwsgiBody) Close() error { return b.nc.Close() }

// timedReader arms the read deadline before each read (uwsgi_read_timeout, scgi_read_timeout: the time
// between two reads).
type timedReader struct {
	nc net.Conn
	d  time.Duration
}

func (r *timedReader) Read(p []byte) (int, error) {
	if r.d > 0 {
		r.nc.SetReadDeadline(time.Now().Add(r.d))
	}
	return r.nc.Read(p)
}

// onlyReader and onlyWriter hide ReadFrom and WriteTo, so a copy's errors say which side failed.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyError{err}
	}
	return n, err
}

type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		err = writeError{err}
	}
	return n, err
}

// writeError is a failed write to the application inside a body copy.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
