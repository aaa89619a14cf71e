package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/sluice-proxy/sluice/internal/config"
)

// quicListener is one `listen … quic` UDP socket served by quic-go's HTTP/3 server. Like TCP listeners it outlives
// snapshots: each connection takes the TLS settings of the snapshot current at its handshake.
type quicListener struct {
	pc  net.PacketConn
	srv *http3.Server
}

// quicAddr is the local address of a QUIC connection; its "quic/" form finds the connection's group.
type quicAddr struct{ net.Addr }

func (a quicAddr) String() string { return "quic/" + a.Addr.String() }

// serveQUIC serves the QUIC sockets bound for snap with quic-go's HTTP/3 server. s.mu is held.
func (s *Server) serveQUIC(snap *snapshot, added map[string]net.PacketConn) {
	for key, pc := range added {
		g := snap.groups[key]
		pl := &listener{addr: key, srv: s}
		hs := &http3.Server{
			Handler: s,
			TLSConfig: &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				g := s.snap.Load().groups[key]
				if g == nil || g.tlsConfig == nil {
					return nil, errors.New("quic: no TLS configuration for " + key)
				}
				if get := g.tlsConfig.GetConfigForClient; get != nil {
					// the server the SNI name chose asks for client certificates (crypto/tls calls only the
					// outermost GetConfigForClient)
					if c, _ := get(hello); c != nil {
						return c, nil
					}
				}
				return g.tlsConfig, nil
			}},
			MaxHeaderBytes: g.maxHeaderBytes,
			IdleTimeout:    g.idleTimeout,
			ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
				s.stats.accepted.Add(1)
				s.stats.handled.Add(1)
				ci := &connInfo{listener: pl}
				ci.localKey = quicAddr{c.LocalAddr()}.String()
				ci.id = s.connSeq.Add(1)
				if g := s.snap.Load().groups[key]; g != nil && g.clientAuth != nil {
					// the client's certificate comes with its last handshake flight, which an early (0-RTT)
					// connection has not had yet; this goroutine is the connection's own
					select {
					case <-c.HandshakeComplete():
						st := c.ConnectionState().TLS
						ci.client = g.verifyClient(&st)
					case <-c.Context().Done():
					}
				}
				return context.WithValue(ctx, connInfoKey{}, ci)
			},
		}
		s.quic[key] = &quicListener{pc: pc, srv: hs}
		s.active.Add(1)
		go func() {
			defer s.active.Done()
			if err := hs.Serve(pc); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, quic.ErrServerClosed) && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("serving " + key + ": " + err.Error())
			}
		}()
	}
}

// takeQUIC removes every QUIC socket from the running set and returns them, to be closed without s.mu held
// (a graceful close waits for the connections). s.mu is held.
func (s *Server) takeQUIC() []*quicListener {
	out := make([]*quicListener, 0, len(s.quic))
	for key, q := range s.quic {
		out = append(out, q)
		delete(s.quic, key)
	}
	return out
}

func (q *quicListener) close(ctx context.Context) {
	if err := q.srv.Shutdown(ctx); err != nil {
		q.srv.Close()
	}
	q.pc.Close()
}

// bindOrInheritUDP takes the socket a binary upgrade passed for key if there is one, else binds.
func (s *Server) bindOrInheritUDP(key string, l config.Listen) (net.PacketConn, error) {
	if pc, ok := inherit(s, key, net.FilePacketConn); ok {
		return pc, nil
	}
	return bindUDP(l)
}

// bindUDP opens the UDP socket of a `listen … quic` with the listen options.
func bindUDP(l config.Listen) (net.PacketConn, error) {
	lc := listenConfig(l)
	return lc.ListenPacket(context.Background(), network("udp", l), l.Addr)
}
