package tunnel

import (
	"bytes"
	"io"
	"testing"
	"unsafe"
)

// TestTrimTLS checks that trimTLS finds crypto/tls's read buffers in this Go version, frees them once they hold
// no unread byte, keeps bytes not read yet, and leaves the connection working.
func TestTrimTLS(t *testing.T) {
	user, server := tlsPair(t)
	defer user.Close()
	defer server.Close()
	if _, err := user.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := user.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatal(err)
	}
	if !trimTLS(server) { // "st" is unread in input, maybe "second" in rawInput: nothing may go
		t.Fatal("trimTLS: crypto/tls's buffers not found in this Go version")
	}
	rest := make([]byte, len("stsecond"))
	if _, err := io.ReadFull(server, rest); err != nil || string(buf)+string(rest) != "firstsecond" {
		t.Fatalf("read %q%q, %v; want firstsecond", buf, rest, err)
	}

	offs, _ := tlsInputOffsets()
	raw := (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(server), offs[0]))
	hand := (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(server), offs[2]))
	if raw.Cap() == 0 {
		t.Fatalf("before trimming: rawInput cap %d; the test no longer sees the buffer", raw.Cap())
	}
	trimTLS(server)
	if raw.Cap() != 0 || hand.Cap() != 0 {
		t.Fatalf("after trimming: rawInput cap %d, hand cap %d, want 0", raw.Cap(), hand.Cap())
	}

	// the connection goes on both ways
	go user.Write([]byte("third"))
	got := make([]byte, 5)
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "third" {
		t.Fatalf("after trimming read %q, %v", got, err)
	}
	go server.Write([]byte("back"))
	if _, err := io.ReadFull(user, got[:4]); err != nil || string(got[:4]) != "back" {
		t.Fatalf("after trimming the user read %q, %v", got[:4], err)
	}
}
