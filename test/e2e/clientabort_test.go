package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// holdingUpstream answers /fast at once and holds every other request unanswered until sluice closes the
// connection; each held request sends its path, and then how long the connection stayed open after the
// request (body included) was read, on the channel.
type holdingUpstream struct {
	Port   int
	held   chan string
	closed chan time.Duration
}

func newHoldingUpstream(t *testing.T) *holdingUpstream {
	t.Helper()
	u := &holdingUpstream{held: make(chan string, 8), closed: make(chan time.Duration, 8)}
	a := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, berr := io.Copy(io.Discard, r.Body)
			if r.URL.Path == "/fast" && berr == nil {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfast")
				continue
			}
			if r.URL.Path == "/midbody" {
				// the head and the start of the body, then the rest is held back
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstart")
			}
			held := time.Now()
			u.held <- r.URL.Path
			// wait for sluice to give up on the request: the read ends with EOF (or a reset) then
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			io.Copy(io.Discard, c)
			u.closed <- time.Since(held)
			return
		}
	})
	_, port, _ := net.SplitHostPort(a)
	u.Port, _ = strconv.Atoi(port)
	return u
}

// A client that goes away while the upstream is slow to send the rest of a body it started aborts the
// upstream request too: sluice is not writing to the client then, only the client-gone watch notices.
func TestProxyClientAbortMidBody(t *testing.T) {
	t.Parallel()
	up := newHoldingUpstream(t)
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
	c, err := net.Dial("tcp", addr(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /midbody HTTP/1.1\r\nHost: a\r\n\r\n")
	select {
	case <-up.held:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, b); err != nil || string(b) != "start" {
		t.Fatalf("body start %q, %v", b, err)
	}
	time.Sleep(50 * time.Millisecond) // within the first wait for the rest: the watch, armed when it runs out, finds the client gone
	c.Close()
	select {
	case d := <-up.closed:
		if d > 10*time.Second {
			t.Errorf("upstream connection closed %v after the client left, want at once", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sluice kept the upstream request open 10 s after its client went away mid-body (proxy_read_timeout is 30 s)")
	}
}

// A client that goes away while the upstream has not answered yet aborts the upstream request (nginx's
// proxy_ignore_client_abort off): sluice closes its upstream connection well before proxy_read_timeout and
// logs 499, for a request on a fresh upstream connection, on a kept-alive one, with a request body, and with
// a request body the client abandons half-way.
func TestProxyClientAbort(t *testing.T) {
	t.Parallel()
	up := newHoldingUpstream(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    log_format st '$status $request_uri';
    upstream app { server 127.0.0.1:{{UP}}; keepalive 8; }
    server {
        listen {{PORT}};
        access_log logs/st.log st;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 30s;
        }
    }
}
`, "PORT", port, "UP", up.Port))

	for _, tc := range []struct {
		name, path, req string
		waitHeld        bool // the upstream has the whole request before the client goes
	}{
		{"fresh connection", "/fresh", "GET /fresh HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"kept-alive connection", "/kept", "GET /fast HTTP/1.1\r\nHost: a\r\n\r\nGET /kept HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"request body", "/body", "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", true},
		{"abandoned request body", "/partial", "POST /partial HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nhello", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr(port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			if tc.waitHeld {
				select {
				case p := <-up.held:
					if p != tc.path {
						t.Fatalf("upstream holds %s, want %s", p, tc.path)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the request did not reach the upstream")
				}
				if tc.path == "/kept" {
					// the answer to /fast came back, the connection it used went back to the pool and
					// carried /kept
					br := bufio.NewReader(c)
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					if string(b) != "fast" {
						t.Fatalf("GET /fast = %q", b)
					}
				}
				time.Sleep(150 * time.Millisecond) // past the first wait for the answer, when the client is not yet watched
			} else {
				time.Sleep(200 * time.Millisecond)
			}
			c.Close()
			select {
			case d := <-up.closed:
				if d > 10*time.Second {
					t.Errorf("upstream connection closed %v after the client left, want at once", d)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("sluice kept the upstream request open 10 s after its client went away (proxy_read_timeout is 30 s)")
			}
			if !tc.waitHeld {
				<-up.held
			}
		})
	}
	want := []string{"499 /fresh", "200 /fast", "499 /kept", "499 /body"}
	var lines string
	if !eventually(3*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(s.Prefix, "logs", "st.log"))
		lines = string(data)
		return strings.Count(lines, "\n") >= len(want)+1
	}) {
		t.Fatalf("access log:\n%s\nwant lines %q and one for /partial", lines, want)
	}
	for _, w := range want {
		if !strings.Contains(lines, w+"\n") {
			t.Errorf("access log has no line %q:\n%s", w, lines)
		}
	}
	if !strings.Contains(lines, " /partial\n") {
		t.Errorf("access log has no line for /partial:\n%s", lines)
	}
}
