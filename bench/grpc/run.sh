#!/usr/bin/env bash
# bench/grpc/run.sh: unary gRPC calls per second through sluice and nginx (grpc_pass over h2c to one grpc-go
# server), in the same run, alternating rounds (ROUNDS, default 3) of DUR (default 5s), 50 callers over CONNS
# client connections (default 4). Not a test. Usage: bash bench/grpc/run.sh (needs nginx: apt-get install -y nginx)
#   PIN=1 pins the proxies to CPU 1 and the server and client to CPU 0, as the other benches do.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5s}
CONNS=${CONNS:-4}
cpu0=() cpu1=()
if [ -n "${PIN:-}" ]; then
	cpu0=(taskset -c 0) cpu1=(taskset -c 1)
fi
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/sluice" ./cmd/sluice
go build -o "$work/grpcload" ./bench/cmd/grpcload
"${cpu0[@]}" "$work/grpcload" -serve 127.0.0.1:19381 & pids+=($!)

conf() { # $1 port
	cat <<CONF
worker_processes 1;
pid $work/$1.pid;
error_log $work/$1.err error;
events { worker_connections 20000; }
http {
    access_log off;
    upstream g { server 127.0.0.1:19381; keepalive 64; }
    server {
        listen 127.0.0.1:$1 http2;
        location / { grpc_pass grpc://g; }
    }
}
CONF
}
mkdir -p "$work/logs"
conf 19382 > "$work/sluice.conf"
conf 19383 > "$work/nginx.conf"
"${cpu1[@]}" "$work/sluice" -p "$work/" -c "$work/sluice.conf" -e "$work/sluice.err" & pids+=($!)
"${cpu1[@]}" nginx -p "$work/" -c "$work/nginx.conf" -g 'daemon off;' 2>"$work/nginx.stderr" & pids+=($!)
sleep 1

echo "== unary gRPC calls/s through grpc_pass (h2c), 50 callers over $CONNS connections, $DUR${PIN:+, proxies on CPU 1}"
for r in $(seq 1 "$ROUNDS"); do
	order="sluice:19382 nginx:19383"
	[ $((r % 2)) = 0 ] && order="nginx:19383 sluice:19382"
	for t in $order; do
		name=${t%%:*}
		port=${t##*:}
		echo "round $r $name $("${cpu0[@]}" "$work/grpcload" -target "127.0.0.1:$port" -c 50 -conns "$CONNS" -d "$DUR")"
	done
done
