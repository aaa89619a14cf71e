package server

import (
	_ "embed"
	"github.com/sluice-proxy/sluice/internal/static"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluice-proxy/sluice/internal/tunnel"
)

//go:embed welcome/index.html
var welcomePage []byte

// welcome serves the built-in welcome page.
func (rq *request) welcome() {
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		rq.special(http.StatusMethodNotAllowed)
		return
	}
	h := rq.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(welcomePage)))
	h.Set("Cache-Control", "no-cache")
	rq.w.WriteHeader(http.StatusOK)
	if rq.r.Method == http.MethodGet {
		rq.w.Write(welcomePage)
	}
}

// emptyGIF is nginx's empty_gif: its 43-byte transparent GIF, dated as nginx dates it, with the not-modified
// checks nginx applies to it (no ranges).
func (rq *request) emptyGIF() {
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		rq.special(http.StatusMethodNotAllowed)
		return
	}
	const modified = 23349600 // Mon, 28 Sep 1970 06:00:00 GMT
	h := rq.w.Header()
	switch status := static.Precondition(rq.r.Header, rq.conf.IMS.Get(static.IMSExact), modified, ""); status {
	case http.StatusPreconditionFailed:
		rq.special(status)
		return
	case http.StatusNotModified:
		h["Last-Modified"] = emptyGIFDate
		rq.w.WriteHeader(status)
		return
	}
	h["Content-Type"], h["Content-Length"], h["Last-Modified"] = emptyGIFType, emptyGIFLength, emptyGIFDate
	rq.w.WriteHeader(http.StatusOK)
	if rq.r.Method == http.MethodGet {
		rq.w.Write(emptyGIF[:])
	}
}

// nginx's empty_gif image and its header values (shared, read only).
var (
	emptyGIF = [...]byte{'G', 'I', 'F', '8', '9', 'a', 0x01, 0x00, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00,
		0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x01, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x4c, 0x01, 0x00, 0x3b}
	emptyGIFType   = []string{"image/gif"}
	emptyGIFLength = []string{"43"}
	emptyGIFDate   = []string{"Mon, 28 Sep 1970 06:00:00 GMT"}
)

// websocketEcho serves the built-in echo service: every message comes back unchanged. gorilla/websocket does
// the protocol work; this is a test and demo endpoint, not the proxy path.
func (s *Server) websocketEcho(rq *request) {
	up := websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		// the echo is reached through sluice's own proxy from any page; it only reflects data
		CheckOrigin: func(*http.Request) bool { return true },
	}
	c, err := up.Upgrade(rq.w, rq.r, nil)
	if err != nil {
		rq.v.Status = http.StatusBadRequest
		return
	}
	rq.v.Status = http.StatusSwitchingProtocols
	ctx, done := s.tracker.Track(rq.r.Context(), tunnelMeta(rq))
	defer done()
	go func() {
		<-ctx.Done()
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
		c.Close()
	}()
	defer c.Close()
	c.SetReadLimit(256 << 20)
	for {
		typ, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(typ, data); err != nil {
			return
		}
	}
}

func tunnelMeta(rq *request) tunnel.Meta {
	name := ""
	if rq.loc != nil {
		name = rq.loc.Name()
	}
	return tunnel.Meta{Location: name}
}
