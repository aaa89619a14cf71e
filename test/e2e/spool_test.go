package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// spoolBlock is the unit of the spool tests' bodies: each block starts with its index, so a client that gets
// bytes out of order, twice or not at all notices.
const spoolBlock = 64 << 10

func spoolBody(i int) []byte {
	b := make([]byte, spoolBlock)
	binary.BigEndian.PutUint64(b, uint64(i))
	for j := 8; j < len(b); j++ {
		b[j] = byte(i + j)
	}
	return b
}

// spoolUpstream answers GET /big/N with N blocks (Content-Length) and reports on sent when its last write
// returned; /stall/N sends N blocks of a longer body and then waits, reporting on closed when sluice closed the
// connection.
type spoolUpstream struct {
	Port                  int
	sent, stalled, closed chan string
}

func newSpoolUpstream(t *testing.T) *spoolUpstream {
	t.Helper()
	u := &spoolUpstream{sent: make(chan string, 8), stalled: make(chan string, 8), closed: make(chan string, 8)}
	a := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			kind, count, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
			n, _ := strconv.Atoi(count)
			total := n
			if kind == "stall" {
				total = 2 * n
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", total*spoolBlock)
			for i := range n {
				if _, err := c.Write(spoolBody(i)); err != nil {
					return
				}
			}
			if kind == "stall" {
				u.stalled <- r.URL.Path
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				io.Copy(io.Discard, br)
				u.closed <- r.URL.Path
				return
			}
			u.sent <- r.URL.Path
		}
	})
	_, port, _ := net.SplitHostPort(a)
	u.Port, _ = strconv.Atoi(port)
	return u
}

// slowGet sends GET path on a connection whose receive buffer is small and reads nothing yet: a slow client.
func slowGet(t *testing.T, port int, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path)
	return c, bufio.NewReaderSize(c, 4096)
}

// readSpooled reads the response to slowGet and checks that its body is blocks 0 … n-1, whole and in order.
func readSpooled(t *testing.T, c net.Conn, br *bufio.Reader, n int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(n*spoolBlock) {
		t.Fatalf("status %d, length %d; want 200, %d", resp.StatusCode, resp.ContentLength, n*spoolBlock)
	}
	got := make([]byte, spoolBlock)
	for i := range n {
		if _, err := io.ReadFull(resp.Body, got); err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if want := spoolBody(i); string(got) != string(want) {
			t.Fatalf("block %d differs (starts with index %d)", i, binary.BigEndian.Uint64(got))
		}
	}
	if m, _ := io.Copy(io.Discard, resp.Body); m != 0 {
		t.Fatalf("%d bytes after the body", m)
	}
}

// With proxy_buffering on (the default), a response is read from the upstream at the upstream's pace, into
// memory and then a temporary file, while a slow client takes it at its own: the upstream's connection (an
// application thread) is free long before the client has the body, as behind nginx. The file is unlinked at
// once (it is seen only among the process's open files) and the body arrives whole and in order. With
// proxy_max_temp_file_size 0 the upstream waits for the client, as in nginx.
func TestProxySpoolsToSlowClient(t *testing.T) {
	t.Parallel()
	up := newSpoolUpstream(t)
	tmp := t.TempDir()
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    proxy_temp_path {{TMP}} 1 2;
    upstream held {
        server 127.0.0.1:{{UP}} max_conns=1;
    }
    server {
        listen {{PORT}};
        location / {
            proxy_pass http://127.0.0.1:{{UP}};
        }
        location /held/ {
            proxy_pass http://held/;
        }
        location /nofile/ {
            proxy_pass http://127.0.0.1:{{UP}}/;
            proxy_max_temp_file_size 0;
            proxy_buffers 4 8k;
        }
    }
}
`, "PORT", port, "UP", up.Port, "TMP", tmp))
	const blocks = 2048 // 128 MiB: more than every socket buffer between the upstream and the client holds

	c, br := slowGet(t, port, fmt.Sprintf("/held/big/%d", blocks))
	select {
	case <-up.sent:
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream could not send its whole response while the client read nothing: it waited for the client")
	}
	// the peer's one connection (max_conns=1) is free again for the next request once sluice has read the
	// response to its end (a moment after the upstream's last write), as in nginx
	var r response
	if !eventually(5*time.Second, func() bool {
		r = get(t, http.DefaultClient, fmt.Sprintf("http://%s/held/big/1", addr(port)), nil)
		return r.StatusCode == 200
	}) || len(r.Body) != spoolBlock {
		t.Fatalf("a second request to the max_conns=1 peer: %d, %d bytes; want 200 and one block", r.StatusCode, len(r.Body))
	}
	<-up.sent // the second request's
	if files, _ := os.ReadDir(tmp); len(files) != 0 {
		t.Errorf("temporary files left visible in %s: %v", tmp, files)
	}
	if !spoolFileOpen(s.cmd.Process.Pid, tmp) {
		t.Errorf("no deleted temporary file under %s among sluice's open files", tmp)
	}
	readSpooled(t, c, br, blocks)

	c2, br2 := slowGet(t, port, fmt.Sprintf("/nofile/big/%d", blocks))
	select {
	case <-up.sent:
		t.Fatal("with proxy_max_temp_file_size 0 the upstream sent the whole response to a client that read nothing")
	case <-time.After(3 * time.Second):
	}
	readSpooled(t, c2, br2, blocks)
	select {
	case <-up.sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never finished")
	}
}

// spoolFileOpen reports whether process pid holds a deleted file under dir open.
func spoolFileOpen(pid int, dir string) bool {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, dir+"/sluice-spool-") && strings.HasSuffix(l, "(deleted)") {
			return true
		}
	}
	return false
}

// A client that goes away while the spool waits for a slow upstream ends the upstream request at once, not
// after proxy_read_timeout.
func TestProxySpoolClientGone(t *testing.T) {
	t.Parallel()
	up := newSpoolUpstream(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location / {
            proxy_pass http://127.0.0.1:{{UP}};
            proxy_read_timeout 30s;
        }
    }
}
`, "PORT", port, "UP", up.Port))
	c, br := slowGet(t, port, "/stall/512")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(br, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.stalled: // the spool now waits for the upstream
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream could not send its first blocks")
	}
	c.Close()
	select {
	case <-up.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection stayed open after the client went away")
	}
}

// PHP behind fastcgi_pass is spooled too: php-fpm's worker finishes a 128 MiB response (and is free for the
// next request) while the client has read nothing, as behind nginx, and the client then gets all of it.
func TestFastCGISpoolsToSlowClient(t *testing.T) {
	t.Parallel()
	fpm := startPHPFPM(t)
	tmp := t.TempDir()
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        root html;
        location ~ \.php$ {
            fastcgi_pass 127.0.0.1:{{FPM}};
            include fastcgi.conf;
            fastcgi_temp_path {{TMP}};
        }
    }
}
`, "PORT", port, "FPM", fpm.Port, "TMP", tmp), withFile("html/big.php", []byte(`<?php
header('Content-Type: application/octet-stream');
$block = str_repeat('0123456789abcdef', 4096);
for ($i = 0; $i < 2048; $i++) { echo $block; }
file_put_contents(__DIR__ . '/done', 'sent');
`)))
	c, br := slowGet(t, port, "/big.php")
	done := filepath.Join(s.Prefix, "html", "done")
	if !eventually(20*time.Second, func() bool { _, err := os.Stat(done); return err == nil }) {
		t.Fatal("php-fpm's worker could not finish its response while the client read nothing: it waited for the client")
	}
	if !spoolFileOpen(s.cmd.Process.Pid, tmp) {
		t.Errorf("no deleted temporary file under %s among sluice's open files", tmp)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != 2048*spoolBlock {
		t.Fatalf("body: %d bytes, %v; want %d", n, err, 2048*spoolBlock)
	}
}

// A cached response that spools is committed once the upstream's part is in: the next request is a HIT while
// the slow client that caused the MISS still has nearly all of the body to read, as behind nginx.
func TestProxySpoolCommitsCacheEarly(t *testing.T) {
	t.Parallel()
	up := newSpoolUpstream(t)
	port := freePort(t)
	start(t, fill(t, `events {}
http {
    proxy_cache_path {{CACHE}} keys_zone=big:1m;
    server {
        listen {{PORT}};
        location / {
            proxy_pass http://127.0.0.1:{{UP}};
            proxy_cache big;
            proxy_cache_valid 200 10m;
            proxy_cache_lock on;
            add_header X-Cache $upstream_cache_status;
        }
    }
}
`, "PORT", port, "UP", up.Port, "CACHE", t.TempDir()))
	const blocks = 2048
	c, br := slowGet(t, port, fmt.Sprintf("/big/%d", blocks))
	select {
	case <-up.sent:
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream could not send its whole response while the client read nothing")
	}
	var r response
	if !eventually(5*time.Second, func() bool {
		r = get(t, http.DefaultClient, fmt.Sprintf("http://%s/big/%d", addr(port), blocks), nil)
		return r.Header.Get("X-Cache") == "HIT"
	}) || len(r.Body) != blocks*spoolBlock {
		t.Fatalf("second request: X-Cache %q, %d bytes; want a HIT of %d while the first client reads", r.Header.Get("X-Cache"), len(r.Body), blocks*spoolBlock)
	}
	select {
	case p := <-up.sent:
		t.Fatalf("the upstream was asked again (%s)", p)
	default:
	}
	readSpooled(t, c, br, blocks)
}
