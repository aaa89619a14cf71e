//go:build linux

package tunnel

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// BenchmarkEchoTLS is the benchmark's wss echo in miniature: conns TLS clients each send a size-byte message
// through a tunnel (with pool and poller, as the proxy runs them) to a plain echo backend and wait for it to
// come back. One op is one round trip. strace -c -f on the test binary gives the syscalls per message.
func BenchmarkEchoTLS(b *testing.B) {
	for _, bc := range []struct{ conns, size int }{{1, 64}, {16, 64}, {16, 16 << 10}} {
		b.Run(fmt.Sprintf("conns=%d/size=%d", bc.conns, bc.size), func(b *testing.B) {
			poller := newPoller(b)
			pool := NewBufferPool(0)
			users := make([]net.Conn, bc.conns)
			for i := range users {
				user, server := tlsPair(b)
				f := start(b, fixtureOpts{async: true, userConn: user, clientConn: server,
					opt: Options{Pool: pool, Poller: poller, IdleTimeout: time.Hour}})
				go func() {
					buf := make([]byte, 32<<10)
					for {
						n, err := f.backend.Read(buf)
						if err != nil {
							return
						}
						if _, err := f.backend.Write(buf[:n]); err != nil {
							return
						}
					}
				}()
				users[i] = user
			}
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/bc.conns + 1
			for _, u := range users {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := make([]byte, bc.size)
					in := make([]byte, bc.size)
					for range per {
						// in writes (TLS records) of about 1 KiB, as gorilla/websocket with its default buffer sends
						for p := msg; len(p) > 0; {
							k := min(len(p), 1000)
							if _, err := u.Write(p[:k]); err != nil {
								b.Error(err)
								return
							}
							p = p[k:]
						}
						if _, err := io.ReadFull(u, in); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			for _, u := range users {
				u.Close()
			}
		})
	}
}
