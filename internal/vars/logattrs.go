package vars

// LogAttrs returns the request context nginx appends to error log lines (*conn, client, server, request,
// host), followed by extra key/value pairs. It is meant for the error path only: it allocates.
func (r *Request) LogAttrs(extra ...any) []any {
	out := make([]any, 0, 10+len(extra))
	out = append(out, "conn", r.ConnID)
	if r.RemoteAddr.IsValid() {
		out = append(out, "client", r.RemoteAddr.Addr().String())
	}
	if r.ServerName != "" {
		out = append(out, "server", r.ServerName)
	}
	if h := r.HTTP; h != nil {
		out = append(out, "request", h.Method+" "+h.RequestURI+" "+h.Proto)
		if h.Host != "" {
			out = append(out, "host", h.Host)
		}
	}
	return append(out, extra...)
}
