package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// $upstream_response_time of a spooled response is the upstream's part, as in nginx (which logged 0.032
// for a 20 MB body a client took in 2 s): not the slow client's.
func TestSpoolUpstreamResponseTime(t *testing.T) {
	t.Parallel()
	up := newSpoolUpstream(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    log_format t '$upstream_response_time $request_time';
    server {
        listen {{PORT}};
        access_log logs/t.log t;
        location / {
            proxy_pass http://127.0.0.1:{{UP}};
        }
    }
}
`, "PORT", port, "UP", up.Port))
	c, br := slowGet(t, port, "/big/512")
	<-up.sent
	time.Sleep(2 * time.Second) // the client is slow
	readSpooled(t, c, br, 512)
	log := filepath.Join(s.Prefix, "logs", "t.log")
	var line string
	eventually(5*time.Second, func() bool { b, _ := os.ReadFile(log); line = string(b); return line != "" })
	urt, _ := strconv.ParseFloat(strings.Fields(line)[0], 64)
	if urt > 1 {
		t.Errorf("$upstream_response_time %v (log %q): the client's time, not the upstream's", urt, line)
	}
}

// fastcgi_pass to an upstream group: the peer's connection (max_conns) is free once php-fpm's response is in,
// as for proxy_pass and in nginx, not once a slow client has it.
func TestFastCGISpoolReleasesPeer(t *testing.T) {
	t.Parallel()
	fpm := startPHPFPM(t)
	port := freePort(t)
	s := start(t, fill(t, `events {}
http {
    upstream fpm {
        server 127.0.0.1:{{FPM}} max_conns=1;
    }
    server {
        listen {{PORT}};
        root html;
        location ~ \.php$ {
            fastcgi_pass fpm;
            include fastcgi.conf;
        }
    }
}
`, "PORT", port, "FPM", fpm.Port), withFile("html/big.php", []byte(`<?php
header('Content-Type: application/octet-stream');
$block = str_repeat('0123456789abcdef', 4096);
for ($i = 0; $i < 2048; $i++) { echo $block; }
file_put_contents(__DIR__ . '/done', 'sent');
`)), withFile("html/small.php", []byte(`<?php echo "ok";`)))
	slowGet(t, port, "/big.php")
	done := filepath.Join(s.Prefix, "html", "done")
	if !eventually(20*time.Second, func() bool { _, err := os.Stat(done); return err == nil }) {
		t.Fatal("php-fpm could not finish")
	}
	var r response
	if !eventually(5*time.Second, func() bool {
		r = get(t, http.DefaultClient, fmt.Sprintf("http://%s/small.php", addr(port)), nil)
		return r.StatusCode == 200
	}) {
		t.Fatalf("a second request to the max_conns=1 peer while the first client is slow: %d", r.StatusCode)
	}
}
