// Command wsload is the benchmark's WebSocket client. It has two modes:
//
//	idle: open -n wss connections (from -src, a local address), exchange one message on each, print "ready N" and
//	      hold them until standard input closes; the harness reads the proxy's memory meanwhile.
//	echo: -c connections each send a -size message and wait for its echo, again and again for -d; print one JSON
//	      line with messages, seconds and latency percentiles.
//
// TLS is accepted without verification: the benchmark's certificate is self-signed.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Result is the echo mode's output line.
type Result struct {
	Messages int64   `json:"messages"`
	Seconds  float64 `json:"seconds"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p999_ms"`
	Errors   int64   `json:"errors"`
}

func main() {
	mode := flag.String("mode", "echo", "idle or echo")
	url := flag.String("url", "wss://127.0.0.1:18443/wss", "WebSocket URL")
	src := flag.String("src", "", "local IP address to connect from (spreads source ports over 127.0.0.x)")
	n := flag.Int("n", 1000, "idle: connections to open")
	c := flag.Int("c", 50, "echo: concurrent connections")
	size := flag.Int("size", 64, "echo: message size in bytes")
	dur := flag.Duration("d", 5*time.Second, "echo: how long to run")
	flag.Parse()

	dialer := websocket.Dialer{
		TLSClientConfig:  &tls.Config{InsecureSkipVerify: true},
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
	}
	if *src != "" {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(*src)}, Timeout: 30 * time.Second}
		dialer.NetDialContext = nd.DialContext
	}
	switch *mode {
	case "idle":
		idle(&dialer, *url, *n)
	case "echo":
		res := echo(&dialer, *url, *c, *size, *dur)
		json.NewEncoder(os.Stdout).Encode(res)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
}

func dial(d *websocket.Dialer, url string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, resp, err := d.DialContext(ctx, url, http.Header{})
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	return c, nil
}

// idle opens n connections, 32 at a time, each exchanging one message, then holds them until stdin closes.
func idle(d *websocket.Dialer, url string, n int) {
	conns := make([]*websocket.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				c, err := dial(d, url)
				if err == nil {
					err = c.WriteMessage(websocket.TextMessage, []byte("hello"))
				}
				if err == nil {
					_, _, err = c.ReadMessage()
				}
				if err != nil {
					failed.Store(err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		log.Fatalf("idle: %v", err)
	}
	fmt.Printf("ready %d\n", n)
	io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	for _, c := range conns {
		c.Close()
	}
}

// echo runs c ping-pong loops for dur and reports throughput and round-trip latency.
func echo(d *websocket.Dialer, url string, c, size int, dur time.Duration) Result {
	conns := make([]*websocket.Conn, c)
	for i := range conns {
		conn, err := dial(d, url)
		if err != nil {
			log.Fatalf("echo: %v", err)
		}
		conns[i] = conn
	}
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = 'a' + byte(i%26)
	}
	lat := make([][]time.Duration, c)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(dur)
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			l := make([]time.Duration, 0, 1<<16)
			for {
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				if err := conn.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					errs.Add(1)
					break
				}
				_, r, err := conn.NextReader()
				if err == nil {
					_, err = io.ReadFull(r, buf)
				}
				if err != nil {
					errs.Add(1)
					break
				}
				l = append(l, time.Since(t0))
			}
			lat[i] = l
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, conn := range conns {
		conn.Close()
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p * float64(len(all)-1))
		return float64(all[i]) / float64(time.Millisecond)
	}
	return Result{Messages: int64(len(all)), Seconds: secs, P50: pct(0.50), P99: pct(0.99), P999: pct(0.999), Errors: errs.Load()}
}
