package stream

import (
	"errors"
	"io"
	"strings"
	"time"
)

// maxPreread bounds what ssl_preread reads of a ClientHello (nginx: preread_buffer_size 16k).
const maxPreread = 16 << 10

// preread reads the client's TLS ClientHello without answering it (ssl_preread on) and sets
// $ssl_preread_server_name and $ssl_preread_alpn_protocols from it. It returns the bytes read, to be sent to
// the upstream first. A client that does not start with a TLS handshake record is passed on with the
// variables empty, as in nginx.
func (s *session) preread() ([]byte, error) {
	s.client.SetReadDeadline(time.Now().Add(prereadTimeout))
	defer s.client.SetReadDeadline(time.Time{})
	var buf []byte
	need := 5
	for {
		for len(buf) < need {
			chunk := make([]byte, max(need-len(buf), 512))
			n, err := s.client.Read(chunk)
			buf = append(buf, chunk[:n]...)
			if err != nil {
				if errors.Is(err, io.EOF) && len(buf) > 0 {
					return buf, nil
				}
				return buf, err
			}
		}
		if buf[0] != 0x16 {
			return buf, nil // not TLS
		}
		hello, complete := handshakeMessage(buf)
		if complete {
			s.v.Stream.SSLPrereadServerName, s.v.Stream.SSLPrereadALPN = parseClientHello(hello)
			return buf, nil
		}
		if len(buf) >= maxPreread {
			return buf, errors.New("preread buffer full")
		}
		need = min(len(buf)+1, maxPreread)
		if n := nextRecordEnd(buf); n > len(buf) {
			need = min(n, maxPreread)
		}
	}
}

// handshakeMessage joins the handshake records at the start of b and returns the first handshake message's
// body once it is complete.
func handshakeMessage(b []byte) (msg []byte, complete bool) {
	var hs []byte
	for len(b) >= 5 && b[0] == 0x16 {
		n := int(b[3])<<8 | int(b[4])
		if len(b) < 5+n {
			break
		}
		hs = append(hs, b[5:5+n]...)
		b = b[5+n:]
	}
	if len(hs) < 4 {
		return nil, false
	}
	n := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
	if len(hs) < 4+n {
		return nil, false
	}
	if hs[0] != 1 { // not a ClientHello
		return nil, true
	}
	return hs[4 : 4+n], true
}

// nextRecordEnd is where the first incomplete record of b ends.
func nextRecordEnd(b []byte) int {
	off := 0
	for len(b)-off >= 5 {
		n := int(b[off+3])<<8 | int(b[off+4])
		if len(b)-off < 5+n {
			return off + 5 + n
		}
		off += 5 + n
	}
	return off + 5
}

// parseClientHello returns the server name and the ALPN protocols (comma separated) of a ClientHello body.
func parseClientHello(h []byte) (name, alpn string) {
	r := reader{b: h}
	r.skip(2 + 32)       // version, random
	r.skip(int(r.u8()))  // session id
	r.skip(int(r.u16())) // cipher suites
	r.skip(int(r.u8()))  // compression methods
	ext := reader{b: r.take(int(r.u16()))}
	for !ext.bad && len(ext.b) >= 4 {
		typ, data := ext.u16(), reader{b: ext.take(int(ext.u16()))}
		switch typ {
		case 0: // server_name
			list := reader{b: data.take(int(data.u16()))}
			for !list.bad && len(list.b) >= 3 {
				kind, host := list.u8(), list.take(int(list.u16()))
				if kind == 0 && !list.bad {
					name = strings.ToLower(string(host))
				}
			}
		case 16: // application_layer_protocol_negotiation
			list := reader{b: data.take(int(data.u16()))}
			var protos []string
			for !list.bad && len(list.b) > 0 {
				p := list.take(int(list.u8()))
				if !list.bad {
					protos = append(protos, string(p))
				}
			}
			alpn = strings.Join(protos, ",")
		}
	}
	return name, alpn
}

// reader reads big-endian fields; a read past the end sets bad and yields zeros.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) skip(n int) { r.take(n) }

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return uint16(b[0])<<8 | uint16(b[1])
	}
	return 0
}
