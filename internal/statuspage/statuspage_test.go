package statuspage

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	n := 0
	stop, cancel := context.WithCancel(context.Background())
	h := &Handler{Interval: 10 * time.Millisecond, Stop: stop, Sample: func() Snapshot {
		n++
		return Snapshot{Version: "t", Tunnels: n}
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, c := range []struct {
		method, query string
		status        int
		ctype         string
	}{
		{"GET", "", 200, "text/html; charset=utf-8"},
		{"HEAD", "", 200, "text/html; charset=utf-8"},
		{"HEAD", "?events", 200, "text/event-stream"},
		{"POST", "", 405, "text/plain; charset=utf-8"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+"/"+c.query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.query, resp.StatusCode, resp.Header.Get("Content-Type"), c.status, c.ctype)
		}
	}

	resp, err := http.Get(srv.URL + "/?events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var got []int
	for sc.Scan() && len(got) < 3 {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var s Snapshot
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		got = append(got, s.Tunnels)
	}
	if len(got) != 3 || got[0] >= got[1] || got[1] >= got[2] {
		t.Fatalf("events carried %v; want three successive samples", got)
	}
	// a stop ends the stream
	cancel()
	ended := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream did not end when the server stopped")
	}
}
