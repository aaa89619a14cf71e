package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

const statusConf = `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{P}};
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
        location /app { proxy_pass http://127.0.0.1:{{E}}; }
        location /status { status_page; }
    }
}
`

// TestStatusPageEvents reads the event stream without a browser: snapshots arrive and count the tunnels.
func TestStatusPageEvents(t *testing.T) {
	t.Parallel()
	ws, echo := newWSEcho(t), newHTTPEcho(t)
	p := freePort(t)
	start(t, fill(t, statusConf, "P", p, "WS", ws.Port, "E", echo.Port))
	page := get(t, httpClient(addr(p), nil), fmt.Sprintf("http://127.0.0.1:%d/status", p), nil)
	if page.StatusCode != 200 || !strings.Contains(page.Body, "<canvas") || strings.Contains(page.Body, "http://") || strings.Contains(page.Body, "https://") {
		t.Fatalf("status page: %s; want self-contained HTML (no external URLs)", page.Status)
	}
	c := dialWS(t, wsDialer(addr(p), nil), fmt.Sprintf("ws://127.0.0.1:%d/ws", p), nil)
	echoOnce(t, c, websocket.TextMessage, "hi")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/status?events", p))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("event stream Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var events int
	for sc.Scan() && events < 2 {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		events++
		var snap struct {
			Tunnels      int `json:"tunnels"`
			TunnelGroups []struct {
				Location string `json:"location"`
				Open     int    `json:"open"`
			} `json:"tunnelGroups"`
			Conns struct{ Active int } `json:"conns"`
		}
		if err := json.Unmarshal([]byte(line), &snap); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		if snap.Tunnels != 1 || len(snap.TunnelGroups) != 1 || snap.TunnelGroups[0].Location != "/ws" || snap.Conns.Active < 2 {
			t.Errorf("snapshot %s: want 1 tunnel on /ws and >= 2 active connections", line)
		}
	}
	if events < 2 {
		t.Fatalf("got %d events: %v", events, sc.Err())
	}
}

// TestStatusPageBrowser loads the dashboard in headless Chromium: it goes live, and its numbers follow the
// WebSockets the test opens. A screenshot is saved (path in the log).
func TestStatusPageBrowser(t *testing.T) {
	ctx := chromiumContext(t)
	ws, echo := newWSEcho(t), newHTTPEcho(t)
	p := freePort(t)
	start(t, fill(t, statusConf, "P", p, "WS", ws.Port, "E", echo.Port))

	textOf := func(id string) string {
		var s string
		chromedp.Run(ctx, chromedp.Text("#"+id, &s, chromedp.ByID))
		return strings.TrimSpace(s)
	}
	waitText := func(id, want string) {
		t.Helper()
		expr := fmt.Sprintf(`document.getElementById(%q).textContent.trim() === %q`, id, want)
		if err := chromedp.Run(ctx, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("#%s never became %q (is %q): %v", id, want, textOf(id), err)
		}
	}
	// a phone's viewport
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(412, 915, chromedp.EmulateMobile), chromedp.Navigate(fmt.Sprintf("http://127.0.0.1:%d/status", p))); err != nil {
		t.Fatal(err)
	}
	waitText("live", "live")
	waitText("tunnels", "0")

	d := wsDialer(addr(p), nil)
	var conns []*websocket.Conn
	for i := 0; i < 7; i++ {
		c := dialWS(t, d, fmt.Sprintf("ws://127.0.0.1:%d/ws", p), nil)
		echoOnce(t, c, websocket.TextMessage, "x")
		conns = append(conns, c)
	}
	c := httpClient(addr(p), nil)
	for i := 0; i < 30; i++ {
		get(t, c, fmt.Sprintf("http://127.0.0.1:%d/app", p), nil)
	}
	waitText("tunnels", "7")
	active, _ := strconv.Atoi(textOf("active"))
	if active < 8 { // 7 tunnels + the event stream
		t.Errorf("#active = %d, want >= 8", active)
	}
	// the peer table lists the WebSocket upstream with its tunnels
	peerExpr := fmt.Sprintf(`document.getElementById("peers").textContent.indexOf(%q) >= 0`, addr(ws.Port))
	if err := chromedp.Run(ctx, chromedp.Poll(peerExpr, nil, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("peer table never listed %s: %q", addr(ws.Port), textOf("peers"))
	}
	if rps := textOf("rps"); rps == "–" {
		t.Errorf("#rps shows no number")
	}
	// readable on a phone: nothing wider than the screen
	var overflow bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &overflow)); err != nil || overflow {
		t.Errorf("the page is wider than a 412 px phone screen (err %v)", err)
	}
	var shot []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&shot, 100)); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("SLUICE_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("sluice-status-page-%d.png", time.Now().UnixNano()))
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("status page screenshot: %s", path)

	for _, c := range conns[:4] {
		c.Close()
	}
	waitText("tunnels", "3")
}
