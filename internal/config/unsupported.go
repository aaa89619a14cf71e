package config

import "strings"

// unsupportedModules are nginx modules (and third-party modules common in published configurations) whose
// directives sluice does not implement. A configuration naming one is refused at its line with what sluice
// offers instead, where a bare "unknown directive" would read as a typo (and "ssi" was answered with "did you
// mean ssl?"). Names sluice declares are looked up first, so a prefix here never hides one (uwsgi_temp_path).
var unsupportedModules = []struct {
	module string
	names  []string // exact names; a name ending in "_" is a prefix, one starting with "_" a suffix
	hint   string
}{
	{"ngx_http_uwsgi_module", []string{"uwsgi_ssl_"}, "uwsgi over TLS (suwsgi://) is not supported: uwsgi_pass speaks plain uwsgi to a unix socket or a local address"},
	{"ngx_http_memcached_module", []string{"memcached_"}, "memcached_pass is not supported: proxy_cache keeps responses on disk"},
	{"ngx_http_ssi_module", []string{"ssi", "ssi_"}, "server-side includes are not supported"},
	{"ngx_http_perl_module", []string{"perl", "perl_"}, "embedded Perl is not supported"},
	{"njs", []string{"js_"}, "njs is not supported; map, auth_request and return cover many of its uses"},
	{"OpenResty Lua", []string{"lua_", "_by_lua", "_by_lua_block", "_by_lua_file"}, "Lua is not supported; map, auth_request and return cover many of its uses"},
	{"headers-more", []string{"more_set_headers", "more_clear_headers", "more_set_input_headers", "more_clear_input_headers"},
		"headers-more is not supported: use add_header (with always for error responses) for response fields, proxy_hide_header or fastcgi_hide_header to drop an upstream's, proxy_set_header for request fields"},
	{"ngx_brotli", []string{"brotli", "brotli_"}, "brotli compression is not supported: gzip and gzip_static are"},
	{"ngx_cache_purge", []string{"_cache_purge"}, "purging a cache entry is not supported"},
	{"ngx_pagespeed", []string{"pagespeed"}, "PageSpeed is not supported"},
	{"ModSecurity", []string{"modsecurity", "modsecurity_"}, "ModSecurity is not supported"},
	{"ngx_http_geoip_module", []string{"geoip_", "geoip2", "geoip2_"}, "GeoIP databases are not supported: geo maps client addresses to values by network"},
	{"ngx_http_image_filter_module", []string{"image_filter", "image_filter_"}, "image_filter is not supported"},
	{"ngx_http_xslt_module", []string{"xslt_", "xml_entities"}, "XSLT is not supported"},
	{"ngx_http_dav_module", []string{"dav_methods", "dav_access", "dav_ext_methods", "dav_ext_lock", "dav_ext_lock_zone", "create_full_put_path", "min_delete_depth"}, "WebDAV is not supported: proxy_pass to a WebDAV server"},
	{"ngx_http_addition_module", []string{"add_before_body", "add_after_body", "addition_types"}, "the addition module is not supported: sub_filter can insert text into a response"},
	{"ngx_http_random_index_module", []string{"random_index"}, "random_index is not supported"},
	{"ngx_http_flv_module, ngx_http_mp4_module", []string{"flv", "mp4", "mp4_"}, "pseudo-streaming is not supported: players seek with Range requests, which static files answer"},
	{"ngx_http_userid_module", []string{"userid", "userid_"}, "userid cookies are not supported"},
	{"ngx_http_slice_module", []string{"slice"}, "slice is not supported"},
	{"ngx_http_headers_module", []string{"add_trailer"}, "add_trailer is not supported"},
	{"ngx_http_proxy_module", []string{"proxy_store", "proxy_store_access"}, "proxy_store is not supported: proxy_cache keeps responses on disk"},
	{"ngx_http_fastcgi_module", []string{"fastcgi_store", "fastcgi_store_access"}, "fastcgi_store is not supported: fastcgi_cache keeps responses on disk"},
	{"ngx_http_uwsgi_module", []string{"uwsgi_store", "uwsgi_store_access"}, "uwsgi_store is not supported: uwsgi_cache keeps responses on disk"},
	{"ngx_http_scgi_module", []string{"scgi_store", "scgi_store_access"}, "scgi_store is not supported: scgi_cache keeps responses on disk"},
	{"NGINX Plus", []string{"auth_jwt", "auth_jwt_", "hls", "hls_", "f4f", "f4f_", "api", "status_zone", "least_time", "queue", "ntlm", "state", "session_log", "session_log_", "keyval", "keyval_zone", "mqtt", "mqtt_"},
		"this is an NGINX Plus directive; sluice's own equivalents (health_check, sticky, the status page) are listed in docs/configuration.md"},
	{"OpenSSL", []string{"ssl_engine", "ssl_conf_command", "proxy_ssl_conf_command", "grpc_ssl_conf_command", "uwsgi_ssl_conf_command"}, "OpenSSL settings do not apply: sluice's TLS is Go's crypto/tls"},
	{"Phusion Passenger", []string{"passenger_"}, "Passenger is not supported: run the application server and proxy_pass to it"},
	{"nchan", []string{"nchan_"}, "nchan is not supported"},
	{"nginx-rtmp-module", []string{"rtmp", "rtmp_"}, "RTMP is not supported"},
	{"nginx-module-vts", []string{"vhost_traffic_status", "vhost_traffic_status_"}, "the traffic status module is not supported: sluice has a status page and Prometheus metrics (see docs/configuration.md)"},
}

// unsupportedHint returns the module and hint for name if it is a directive of a module sluice does not
// implement.
func unsupportedHint(name string) (module, hint string, ok bool) {
	for _, m := range unsupportedModules {
		for _, n := range m.names {
			var match bool
			switch {
			case strings.HasSuffix(n, "_"):
				match = strings.HasPrefix(name, n)
			case strings.HasPrefix(n, "_"):
				match = strings.HasSuffix(name, n)
			default:
				match = name == n
			}
			if match {
				return m.module, m.hint, true
			}
		}
	}
	return "", "", false
}
