package tunnel

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"sync"
	"unsafe"
)

// tlsInputOffsets locates crypto/tls.Conn's read-side buffers (rawInput, input, hand: unexported) by name and
// type, once. ok is false when this Go's crypto/tls has no such fields: trimTLS then does nothing.
var tlsInputOffsets = sync.OnceValues(func() ([3]uintptr, bool) {
	var offs [3]uintptr
	t := reflect.TypeFor[tls.Conn]()
	for i, f := range []struct {
		name string
		typ  reflect.Type
	}{{"rawInput", reflect.TypeFor[bytes.Buffer]()}, {"input", reflect.TypeFor[bytes.Reader]()}, {"hand", reflect.TypeFor[bytes.Buffer]()}} {
		sf, ok := t.FieldByName(f.name)
		if !ok || sf.Type != f.typ || len(sf.Index) != 1 {
			return offs, false
		}
		offs[i] = sf.Offset
	}
	return offs, true
})

// trimTLS drops the read buffers a *tls.Conn keeps, empty, after its handshake and reads: bytes.Buffer keeps
// its capacity, so every idle TLS tunnel would hold the ClientHello's record and message buffers (about
// 3.5 KiB) for its whole life. It only touches buffers holding no unread byte, and must run where no Read on
// c can be in progress (the reading direction, before it parks). It reports whether it could look.
func trimTLS(c *tls.Conn) bool {
	offs, ok := tlsInputOffsets()
	if !ok {
		return false
	}
	base := unsafe.Pointer(c)
	raw := (*bytes.Buffer)(unsafe.Add(base, offs[0]))
	input := (*bytes.Reader)(unsafe.Add(base, offs[1]))
	hand := (*bytes.Buffer)(unsafe.Add(base, offs[2]))
	if input.Len() == 0 && raw.Len() == 0 {
		// input reads from raw's memory: both go, or neither is freed
		input.Reset(nil)
		*raw = bytes.Buffer{}
	}
	if hand.Len() == 0 {
		*hand = bytes.Buffer{}
	}
	return true
}

// tlsHoldsInput reports whether c holds bytes it read from its transport and not yet returned (decrypted
// input, or record bytes), or true when this Go's crypto/tls cannot be looked into. Like trimTLS it must run
// where no Read on c can be in progress.
func tlsHoldsInput(c *tls.Conn) bool {
	offs, ok := tlsInputOffsets()
	if !ok {
		return true
	}
	base := unsafe.Pointer(c)
	return (*bytes.Buffer)(unsafe.Add(base, offs[0])).Len() > 0 || (*bytes.Reader)(unsafe.Add(base, offs[1])).Len() > 0
}
