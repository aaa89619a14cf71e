package fastcgi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParamsRoundTrip(t *testing.T) {
	cases := [][2]string{
		{"SCRIPT_FILENAME", "/srv/www/index.php"},
		{"", ""},
		{"EMPTY", ""},
		{strings.Repeat("N", 127), strings.Repeat("v", 128)},
		{strings.Repeat("N", 128), strings.Repeat("v", 70000)},
	}
	var b []byte
	for _, c := range cases {
		b = appendParam(b, c[0], c[1])
	}
	got, err := parseParams(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cases) {
		t.Fatalf("got %d pairs, want %d", len(got), len(cases))
	}
	for i := range cases {
		if got[i] != cases[i] {
			t.Errorf("pair %d: got %q=%q", i, got[i][0][:min(len(got[i][0]), 20)], got[i][1][:min(len(got[i][1]), 20)])
		}
	}
}

func TestRecordWriterSplitsAndPads(t *testing.T) {
	var out bytes.Buffer
	w := newRecordWriter(&out)
	content := bytes.Repeat([]byte("x"), maxContent+10)
	if err := w.write(typeStdin, content); err != nil {
		t.Fatal(err)
	}
	if err := w.write(typeStdin, nil); err != nil {
		t.Fatal(err)
	}
	w.flush()
	b := out.Bytes()
	var lens []int
	for len(b) >= headerLen {
		n := int(binary.BigEndian.Uint16(b[4:6]))
		pad := int(b[6])
		if b[0] != version1 || b[1] != typeStdin || binary.BigEndian.Uint16(b[2:4]) != requestID {
			t.Fatalf("bad header % x", b[:8])
		}
		if (n+pad)%8 != 0 {
			t.Errorf("record of %d bytes padded by %d: not a multiple of 8", n, pad)
		}
		lens = append(lens, n)
		b = b[headerLen+n+pad:]
	}
	if len(b) != 0 || len(lens) != 3 || lens[0] != maxContent || lens[1] != 10 || lens[2] != 0 {
		t.Errorf("records %v, rest %d", lens, len(b))
	}
}

func rec(typ uint8, id uint16, content []byte, pad int) []byte {
	h := []byte{version1, typ, 0, 0, 0, 0, byte(pad), 0}
	binary.BigEndian.PutUint16(h[2:4], id)
	binary.BigEndian.PutUint16(h[4:6], uint16(len(content)))
	return append(append(h, content...), make([]byte, pad)...)
}

func TestRecordReader(t *testing.T) {
	end := make([]byte, 8)
	tests := []struct {
		name  string
		in    []byte
		types []uint8
		err   error
	}{
		{"stdout stderr end", concat(rec(typeStdout, 1, []byte("hi"), 6), rec(typeStderr, 1, []byte("oops"), 0), rec(typeEndRequest, 1, end, 0)), []uint8{typeStdout, typeStderr, typeEndRequest}, io.EOF},
		{"bad version", []byte{2, typeStdout, 0, 1, 0, 0, 0, 0}, nil, ErrProtocol},
		{"type a server must not send", rec(typeParams, 1, nil, 0), nil, ErrProtocol},
		{"short end request", rec(typeEndRequest, 1, []byte{0, 0}, 0), nil, ErrProtocol},
		{"truncated content", rec(typeStdout, 1, []byte("hello"), 0)[:10], nil, io.ErrUnexpectedEOF},
		{"truncated header", []byte{1, 6, 0}, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := newRecordReader(bytes.NewReader(tt.in))
			var types []uint8
			var err error
			for {
				var r record
				r, err = rr.next()
				if err != nil {
					break
				}
				types = append(types, r.typ)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %v, want %v", err, tt.err)
			}
			if !bytes.Equal(types, tt.types) {
				t.Errorf("types %v, want %v", types, tt.types)
			}
		})
	}
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// FuzzRecordReader feeds arbitrary bytes to the record reader: it must never panic, never return content
// longer than the header announced, and always end with an error.
func FuzzRecordReader(f *testing.F) {
	end := make([]byte, 8)
	f.Add(concat(rec(typeStdout, 1, []byte("Status: 200\r\n\r\nhi"), 6), rec(typeEndRequest, 1, end, 0)))
	f.Add(rec(typeStderr, 1, []byte("PHP Warning"), 5))
	f.Add(rec(typeEndRequest, 1, []byte{0, 0}, 0))
	f.Add([]byte{1, 6, 0, 1, 0xff, 0xff, 0xff, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rr := newRecordReader(bytes.NewReader(b))
		total := 0
		for i := 0; ; i++ {
			r, err := rr.next()
			if err != nil {
				return
			}
			total += headerLen + len(r.content)
			if total > len(b) || i > len(b) {
				t.Fatalf("read %d bytes of records from %d bytes of input", total, len(b))
			}
			if r.typ == typeEndRequest {
				endRequest(r.content)
			}
		}
	})
}

// FuzzParams checks that any name and value pair encodes and decodes to itself.
func FuzzParams(f *testing.F) {
	f.Add("HTTP_HOST", "example.com")
	f.Add(strings.Repeat("a", 200), "")
	f.Fuzz(func(t *testing.T, name, value string) {
		got, err := parseParams(appendParam(nil, name, value))
		if err != nil || len(got) != 1 || got[0][0] != name || got[0][1] != value {
			t.Fatalf("round trip of %q=%q gave %q, %v", name, value, got, err)
		}
	})
}

func TestAppendParamJoinedAndBytes(t *testing.T) {
	long := strings.Repeat("v", 200) // a four-byte length
	b := appendParamJoined(fcgiEnc, nil, []byte("HTTP_ACCEPT"), []string{"a", long, "c"}, ", ")
	b = appendParam(b, "SCRIPT_FILENAME", []byte("/srv/x.php"))
	b = appendParamJoined(fcgiEnc, b, []byte("HTTP_COOKIE"), []string{"k=v"}, "; ")
	got, err := parseParams(b)
	want := [][2]string{{"HTTP_ACCEPT", "a, " + long + ", c"}, {"SCRIPT_FILENAME", "/srv/x.php"}, {"HTTP_COOKIE", "k=v"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseParams = %q, %v; want %q", got, err, want)
	}
}

// TestInterimStatusRefused: an application's 1xx status (CGI Status or a uwsgi/SCGI status line) is an invalid
// answer: sent on as final, a 101 would make the client or a proxy in front take the connection for a tunnel
// while sluice goes on reading it as HTTP.
func TestInterimStatusRefused(t *testing.T) {
	for _, st := range []string{"101 Switching Protocols", "100 Continue", "199 x"} {
		if err := cgiStatus(&Response{Header: http.Header{"Status": {st}}}); err == nil {
			t.Errorf("CGI Status %q accepted", st)
		}
		if _, err := readHTTPHeader(bufio.NewReader(strings.NewReader("HTTP/1.1 " + st + "\r\nUpgrade: websocket\r\n\r\n"))); err == nil {
			t.Errorf("status line %q accepted", st)
		}
	}
	if err := cgiStatus(&Response{Header: http.Header{"Status": {"204 No Content"}}}); err != nil {
		t.Errorf("Status 204: %v", err)
	}
}
