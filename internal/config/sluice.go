package config

import (
	"slices"
	"strings"
)

// sluiceDirectives are sluice's own content handlers.
var sluiceDirectives = []Spec{
	{Name: "websocket_echo", Module: "sluice", Ctx: CtxLocation, Args: "0", Doc: "Serves a WebSocket echo service (every message is sent back); used by the built-in default configuration and for testing a path end to end.",
		Diff:  "sluice only.",
		Apply: func(p *parser, d *Directive) error { return p.setHandler(d, HandlerWebSocketEcho) }},
	{Name: "welcome_page", Module: "sluice", Ctx: CtxLocation, Args: "0", Doc: "Serves sluice's built-in welcome page, which opens a WebSocket to /wss and shows the echo.",
		Diff:  "sluice only.",
		Apply: func(p *parser, d *Directive) error { return p.setHandler(d, HandlerWelcome) }},
	{Name: "metrics", Module: "sluice", Ctx: CtxLocation, Args: "0", Doc: "Serves Prometheus metrics (text exposition): requests, latency, bytes, connections, tunnels, upstream peers, TLS handshakes, reloads, build info. Names start with sluice_; labels are bounded (server, location, status class, configured peers).",
		Diff:  "sluice only; restrict it with allow/deny-style locations or a separate listen.",
		Apply: func(p *parser, d *Directive) error { return p.setHandler(d, HandlerMetrics) }},
	{Name: "stub_status", Module: "http_stub_status", Ctx: CtxLocation, Args: "0-1", Doc: "Serves basic status in nginx's exact text format (Active connections, accepts handled requests, Reading Writing Waiting).",
		Diff:  "Location context only. Open WebSocket tunnels count as active and writing connections.",
		Apply: func(p *parser, d *Directive) error { return p.setHandler(d, HandlerStubStatus) }},
	{Name: "empty_gif", Module: "http_empty_gif", Ctx: CtxLocation, Args: "0", Doc: "Answers with a 1×1 transparent GIF (43 bytes), as nginx's: GET and HEAD only, Last-Modified Mon, 28 Sep 1970 06:00:00 GMT, If-Modified-Since honoured. For tracking pixels and placeholders.",
		Apply: func(p *parser, d *Directive) error { return p.setHandler(d, HandlerEmptyGIF) }},
	{Name: "status_page", Module: "sluice", Ctx: CtxLocation, Args: "0", Doc: "Serves a self-contained live dashboard (connections, tunnels, requests per second, upstream peers, latency, last reload) that updates over server-sent events from <location>/events.",
		Diff:  "sluice only.",
		Apply: func(p *parser, d *Directive) error { return p.setHandler(d, HandlerStatusPage) }},
}

func (p *parser) setHandler(d *Directive, h Handler) error {
	if p.conf.Handler != HandlerNone {
		return d.errorf("%q: the location already has a content handler", d.Name)
	}
	p.conf.Handler = h
	return nil
}

// ignoredDirectives are accepted for compatibility with existing nginx files and have no effect.
var ignoredDirectives = []Spec{
	{Name: "user", Module: "core", Ctx: CtxMain, Args: "1-2", Ignored: true, Doc: "Accepted; sluice runs as the user that starts it."},
	{Name: "worker_rlimit_nofile", Module: "core", Ctx: CtxMain, Args: "1", Ignored: true, Doc: "Accepted; sluice raises its soft open-file limit to the hard limit at start."},
	{Name: "worker_cpu_affinity", Module: "core", Ctx: CtxMain, Args: "1+", Ignored: true, Doc: "Accepted; use taskset."},
	{Name: "daemon", Module: "core", Ctx: CtxMain, Args: "1", Ignored: true, Doc: "Accepted; sluice always runs in the foreground (use systemd or another supervisor)."},
	{Name: "master_process", Module: "core", Ctx: CtxMain, Args: "1", Ignored: true, Doc: "Accepted; there is one process."},
	{Name: "pcre_jit", Module: "core", Ctx: CtxMain, Args: "1", Ignored: true, Doc: "Accepted; regexes use Go's RE2 engine."},
	{Name: "load_module", Module: "core", Ctx: CtxMain, Args: "1", Ignored: true, Doc: "Accepted and ignored; dynamic modules do not exist in sluice."},
	{Name: "thread_pool", Module: "core", Ctx: CtxMain, Args: "1-3", Ignored: true, Doc: "Accepted."},
	{Name: "env", Module: "core", Ctx: CtxMain, Args: "1", Ignored: true, Doc: "Accepted; the environment is inherited."},
	{Name: "worker_connections", Module: "events", Ctx: CtxEvents, Args: "1", Ignored: true, Doc: "Accepted; connections are limited by the open-file limit."},
	{Name: "use", Module: "events", Ctx: CtxEvents, Args: "1", Ignored: true, Doc: "Accepted; Go uses epoll."},
	{Name: "multi_accept", Module: "events", Ctx: CtxEvents, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "accept_mutex", Module: "events", Ctx: CtxEvents, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "sendfile", Module: "http_core", Ctx: ctxHSL | CtxIf, Args: "1", Ignored: true, Doc: "Accepted; Go uses sendfile for plain-HTTP static files where it can."},
	{Name: "tcp_nopush", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "tcp_nodelay", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; TCP_NODELAY is always on."},
	{Name: "types_hash_max_size", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "types_hash_bucket_size", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "server_names_hash_bucket_size", Module: "http_core", Ctx: CtxHTTP, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "server_names_hash_max_size", Module: "http_core", Ctx: CtxHTTP, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "variables_hash_max_size", Module: "http_core", Ctx: CtxHTTP, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "map_hash_bucket_size", Module: "http_map", Ctx: CtxHTTP, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "map_hash_max_size", Module: "http_map", Ctx: CtxHTTP, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "client_header_buffer_size", Module: "http_core", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted; see large_client_header_buffers."},
	{Name: "proxy_buffer_size", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "proxy_busy_buffers_size", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "client_body_temp_path", Module: "http_core", Ctx: ctxHSL, Args: "1-4", Ignored: true, Doc: "Accepted."},
	{Name: "zone", Module: "http_upstream", Ctx: CtxUpstream, Args: "1-2", Ignored: true, Doc: "Accepted; an upstream group's state (peers, failures, connection counts, resolved addresses) is always shared by all requests, as in one process there is nothing to put in shared memory."},
	{Name: "uninitialized_variable_warn", Module: "http_rewrite", Ctx: ctxHSL | CtxIf, Args: "1", Ignored: true, Doc: "Accepted; an unset variable reads as empty without a warning."},
	{Name: "log_subrequest", Module: "http_log", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; subrequests (auth_request, mirror) are never logged."},
	{Name: "connection_pool_size", Module: "http_core", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted (nginx memory-pool tuning)."},
	{Name: "request_pool_size", Module: "http_core", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted (nginx memory-pool tuning)."},
	{Name: "variables_hash_bucket_size", Module: "http_core", Ctx: CtxHTTP, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "send_lowat", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "subrequest_output_buffer_size", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; subrequest bodies are dropped (auth_request, mirror)."},
	{Name: "client_body_in_file_only", Module: "http_core", Ctx: ctxHSL, Args: "1", Default: "off", Doc: "Only off is accepted: request bodies stream to the upstream and are never kept in a file ($request_body_file is not offered).",
		Diff: "on and clean are refused at load: they exist to hand $request_body_file to an application, which sluice does not offer.",
		Apply: func(p *parser, d *Directive) error {
			return offOnly(d, []string{"on", "clean"}, "sluice streams request bodies to the upstream and has no $request_body_file; pass the body itself (proxy_pass_request_body, fastcgi_pass_request_body)")
		}},
	{Name: "client_body_in_single_buffer", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; request bodies stream."},
	{Name: "proxy_temp_file_write_size", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; the temporary file is written as the upstream is read."},
	{Name: "http2_max_field_size", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted (obsolete since nginx 1.19.7); large_client_header_buffers bounds HTTP/2 headers."},
	{Name: "http2_max_header_size", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted (obsolete since nginx 1.19.7); large_client_header_buffers bounds HTTP/2 headers."},
	{Name: "http2_idle_timeout", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted (obsolete since nginx 1.19.7); keepalive_timeout applies."},
	{Name: "http2_max_requests", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted (obsolete since nginx 1.19.7, where keepalive_requests replaced it)."},
	{Name: "http2_recv_timeout", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted (obsolete since nginx 1.19.7, where client_header_timeout replaced it)."},
	{Name: "http2_max_concurrent_pushes", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted; server push is never used."},
	{Name: "proxy_send_lowat", Module: "http_proxy", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted (nginx applies it on FreeBSD only)."},
	{Name: "referer_hash_bucket_size", Module: "http_referer", Ctx: CtxServer | CtxLocation, Args: "1", Ignored: true, Doc: "Accepted (nginx hash tuning; valid_referers needs none)."},
	{Name: "referer_hash_max_size", Module: "http_referer", Ctx: CtxServer | CtxLocation, Args: "1", Ignored: true, Doc: "Accepted (nginx hash tuning; valid_referers needs none)."},
	{Name: "lock_file", Module: "core", Ctx: CtxMain, Args: "1", Ignored: true, Doc: "Accepted; there is one process, so no accept mutex to lock."},
	{Name: "working_directory", Module: "core", Ctx: CtxMain, Args: "1", Ignored: true, Doc: "Accepted; sluice keeps the directory it was started in (core files are written there; paths in the configuration resolve against the prefix either way)."},
	{Name: "debug_connection", Module: "events", Ctx: CtxEvents, Args: "1", Ignored: true, Doc: "Accepted; sluice has no debug log level (info is its most detailed), so there is nothing more to log for these clients."},
	{Name: "timer_resolution", Module: "core", Ctx: CtxMain, Args: "1", Ignored: true, Doc: "Accepted; the clock is read where a time is needed."},
	{Name: "accept_mutex_delay", Module: "events", Ctx: CtxEvents, Args: "1", Ignored: true, Doc: "Accepted; there is one process."},
	{Name: "worker_aio_requests", Module: "events", Ctx: CtxEvents, Args: "1", Ignored: true, Doc: "Accepted; files are read without aio."},
	{Name: "http2_recv_buffer_size", Module: "http_v2", Ctx: CtxHTTP, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "http2_chunk_size", Module: "http_v2", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; frames are sized by the HTTP/2 library."},
	{Name: "http2_body_preread_size", Module: "http_v2", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "http2_push", Module: "http_v2", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; server push is never used (browsers removed it, and nginx 1.25.1 too)."},
	{Name: "http2_push_preload", Module: "http_v2", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; server push is never used."},
	{Name: "open_file_cache", Module: "http_core", Ctx: ctxHSL, Args: "1-2", Ignored: true, Doc: "Accepted; files are opened per request (two system calls), and their formatted validators are cached by modification time and size."},
	{Name: "open_file_cache_valid", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted (see open_file_cache)."},
	{Name: "open_file_cache_min_uses", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted (see open_file_cache)."},
	{Name: "open_file_cache_errors", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted (see open_file_cache)."},
	{Name: "open_log_file_cache", Module: "http_log", Ctx: ctxHSL, Args: "1-4", Ignored: true, Doc: "Accepted; log files are kept open (reopened on USR1)."},
	{Name: "aio", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; file reads run on Go's scheduler threads."},
	{Name: "aio_write", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted (see aio)."},
	{Name: "directio", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; files are read through the page cache."},
	{Name: "directio_alignment", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted (see directio)."},
	{Name: "read_ahead", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "output_buffers", Module: "http_core", Ctx: ctxHSL, Args: "2", Ignored: true, Doc: "Accepted; small files are read whole, larger ones go through sendfile."},
	{Name: "postpone_output", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "sendfile_max_chunk", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "msie_padding", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; error pages are never padded for Internet Explorer."},
	{Name: "msie_refresh", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted; redirects are always sent as Location."},
	{Name: "keepalive_disable", Module: "http_core", Ctx: ctxHSL, Args: "1+", Ignored: true, Doc: "Accepted; keep-alive is never disabled by browser (the msie6 and safari exceptions are for browsers long gone)."},
	{Name: "resolver_timeout", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "reset_timedout_connection", Module: "http_core", Ctx: ctxHSL, Args: "1", Ignored: true, Doc: "Accepted."},
	{Name: "ssl_stapling_verify", Module: "http_ssl", Ctx: CtxHTTP | CtxServer, Args: "1", Ignored: true, Doc: "Accepted (see ssl_stapling)."},
}

// offOnly accepts an enumerated directive that sluice implements only as off: its other values (refused) are
// refused with hint, anything else is an invalid value, worded as nginx words it.
func offOnly(d *Directive, refused []string, hint string) error {
	switch {
	case d.Args[0] == "off":
		return nil
	case slices.Contains(refused, d.Args[0]):
		e := d.errorf("\"%s %s\" is not supported", d.Name, d.Args[0])
		e.Hint = hint
		return e
	}
	return d.errorf("invalid value %q in %q directive, it must be \"%s\" or \"off\"", d.Args[0], d.Name, strings.Join(refused, "\", \""))
}
