package server

import (
	"net/http"
	"strconv"
)

// stubStatus answers in nginx's stub_status format, byte for byte, so existing monitoring parses it.
func (rq *request) stubStatus() {
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		rq.special(http.StatusMethodNotAllowed)
		return
	}
	n := rq.s.Conns()
	b := make([]byte, 0, 128)
	b = append(b, "Active connections: "...)
	b = strconv.AppendInt(b, n.Active, 10)
	b = append(b, " \nserver accepts handled requests\n "...)
	b = strconv.AppendUint(b, n.Accepted, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, n.Handled, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, n.Requests, 10)
	b = append(b, " \nReading: "...)
	b = strconv.AppendInt(b, n.Reading, 10)
	b = append(b, " Writing: "...)
	b = strconv.AppendInt(b, n.Writing, 10)
	b = append(b, " Waiting: "...)
	b = strconv.AppendInt(b, n.Waiting, 10)
	b = append(b, " \n"...)
	h := rq.w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	rq.w.WriteHeader(http.StatusOK)
	if rq.r.Method != http.MethodHead {
		rq.w.Write(b)
	}
}
