package charset

import (
	"bytes"
	"net/http"
	"testing"
)

// TestRecodeSplitWrites checks that a body recoded from utf-8 comes out the same whichever way it is cut into
// writes (nginx's answers for the whole body; the e2e test checks cuts nginx saw too).
func TestRecodeSplitWrites(t *testing.T) {
	set := &Set{}
	m, err := set.NewMap("windows-1251", "utf-8")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{"C0", "D090"}, {"88", "E282AC"}} {
		if err := m.Line(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	in := []byte("\xd0\x90 \xe2\x82\xac \xd0\x92 \xf0\x9f\x98\x80 \xc3A.")
	want := "\xc0 \x88 &#1042; &#128512; ?."
	f := New(set, Name{Text: "windows-1251"}, Name{Text: "utf-8"}, false, DefaultTypes)
	for cut := range len(in) {
		for cut2 := cut; cut2 < len(in); cut2++ {
			var out bytes.Buffer
			h := http.Header{"Content-Type": {"text/html"}, "Content-Length": {"9"}}
			rc, err := f.Header(200, h, "", nil, &out)
			if rc == nil || err != nil {
				t.Fatalf("no recoder: %v", err)
			}
			rc.Write(in[:cut])
			rc.Write(in[cut:cut2])
			rc.Write(in[cut2:])
			if out.String() != want {
				t.Fatalf("cut at %d, %d: %q, want %q", cut, cut2, out.String(), want)
			}
			if h.Get("Content-Type") != "text/html; charset=windows-1251" || h.Get("Content-Length") != "" {
				t.Fatalf("header %v", h)
			}
		}
	}
}
