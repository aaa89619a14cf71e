package server

import (
	"bytes"
	"testing"
)

func TestStripXConnect(t *testing.T) {
	frame := func(typ, flags byte, stream byte, payload ...byte) []byte {
		n := len(payload)
		return append([]byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, 0, 0, 0, stream}, payload...)
	}
	maxStreams := []byte{0, 3, 0, 0, 0, 100}
	xconnect := []byte{0, 8, 0, 0, 0, 1}
	window := []byte{0, 4, 0, 1, 0, 0}
	after := frame(0x8, 0, 0, 0, 0, 1, 0) // a WINDOW_UPDATE following in the same write
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name    string
		in, out []byte
	}{
		{"removed among others", cat(frame(4, 0, 0, cat(maxStreams, xconnect, window)...), after), cat(frame(4, 0, 0, cat(maxStreams, window)...), after)},
		{"only parameter", frame(4, 0, 0, xconnect...), frame(4, 0, 0)},
		{"absent", frame(4, 0, 0, maxStreams...), frame(4, 0, 0, maxStreams...)},
		{"ACK untouched", frame(4, 1, 0), frame(4, 1, 0)},
		{"not SETTINGS", frame(0x8, 0, 0, 0, 0, 1, 0), frame(0x8, 0, 0, 0, 0, 1, 0)},
		{"stream frame untouched", frame(4, 0, 1, xconnect...), frame(4, 0, 1, xconnect...)},
	}
	for _, tc := range tests {
		n := int(tc.in[0])<<16 | int(tc.in[1])<<8 | int(tc.in[2])
		if got := stripXConnect(tc.in, n); !bytes.Equal(got, tc.out) {
			t.Errorf("%s: got % x, want % x", tc.name, got, tc.out)
		}
	}
}
