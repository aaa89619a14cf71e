// Command echoback is the one upstream every proxy in the benchmark talks to: a WebSocket echo service on /wss
// and a 100-byte body on every other path, both over plain HTTP/1.1 with keep-alive.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"strings"

	"github.com/gorilla/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	flag.Parse()
	body := []byte(strings.Repeat("x", 99) + "\n")
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/wss", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 0, 1024)
		for {
			typ, rd, err := c.NextReader()
			if err != nil {
				return
			}
			buf = buf[:0]
			for {
				if len(buf) == cap(buf) {
					buf = append(buf, 0)[:len(buf)]
				}
				n, err := rd.Read(buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
				if err != nil {
					break
				}
			}
			if err := c.WriteMessage(typ, buf); err != nil {
				return
			}
			if cap(buf) > 64<<10 {
				buf = make([]byte, 0, 1024) // an idle connection keeps only a small buffer
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal((&http.Server{Handler: mux}).Serve(ln))
}
