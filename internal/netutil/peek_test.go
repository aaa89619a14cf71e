//go:build linux

package netutil

import (
	"io"
	"testing"
	"time"
)

// TestPeekPrefix: the bytes are looked at, not read (the next Read gets them all), a prefix sent in pieces is
// waited for, a differing byte answers at once, and a silent client times out.
func TestPeekPrefix(t *testing.T) {
	const prefix = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	for _, tc := range []struct {
		name    string
		pieces  []string
		want    bool
		wantErr bool
	}{
		{"whole", []string{prefix + "more"}, true, false},
		{"in pieces", []string{"PRI * HT", "TP/2.0\r\n", "\r\nSM\r\n\r\n"}, true, false},
		{"HTTP/1", []string{"POST / HTTP/1.1\r\n"}, false, false},
		{"differs later", []string{"PRI * ", "HTTP/1.1\r\n"}, false, false},
		{"closed early", []string{"PRI"}, false, false},
		{"silent", nil, false, true},
	} {
		s, peer := pair(t)
		tcp, _ := TCP(s)
		go func() {
			for _, p := range tc.pieces {
				peer.Write([]byte(p))
				time.Sleep(20 * time.Millisecond)
			}
			if tc.name == "closed early" {
				peer.Close()
			}
		}()
		got, err := PeekPrefix(tcp, prefix, 300*time.Millisecond)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: PeekPrefix = %v, %v; want %v, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
		if len(tc.pieces) > 0 && !tc.wantErr {
			buf := make([]byte, len(tc.pieces[0]))
			if _, err := io.ReadFull(s, buf); err != nil || string(buf) != tc.pieces[0] {
				t.Errorf("%s: the next read got %q, %v; want the peeked bytes %q", tc.name, buf, err, tc.pieces[0])
			}
		}
		s.Close()
		peer.Close()
	}
}
