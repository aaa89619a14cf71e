#!/usr/bin/env bash
# bench/upstream/run.sh: load balancing figures (not a test).
#   1. req/s through a 3-peer upstream with keepalive, sluice vs nginx in the same run: wrk -t1 -c50 -d10s,
#      alternating rounds (ROUNDS, default 3);
#   2. least_conn balance: ~3000 WebSockets opened over time (batches of 500, a third of the first batches
#      closed on the way) through sluice to 3 peers; max/min open per peer.
# Usage: bench/upstream/run.sh   (from the repository root; needs wrk and nginx: apt-get install -y wrk nginx)
#   PIN=1 pins the proxies to CPU 1 and the backends and wrk to CPU 0, as `make bench BENCHFLAGS=-pin` does
#   (unpinned, the three backends' threads and wrk preempt the proxy on both cores).
set -euo pipefail
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10s}
cpu0=() cpu1=() # command prefixes: taskset execs the command, so $! stays the process to kill
if [ -n "${PIN:-}" ]; then
	cpu0=(taskset -c 0) cpu1=(taskset -c 1)
fi
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/sluice" ./cmd/sluice
go build -o "$work/echoback" ./bench/cmd/echoback
go build -o "$work/wsload" ./bench/cmd/wsload
for i in 1 2 3; do
	"${cpu0[@]}" "$work/echoback" -addr 127.0.0.1:1908$i & pids+=($!)
done

conf() { # $1 port, $2 balancing line
	cat <<CONF
worker_processes 1;
pid $work/$1.pid;
error_log $work/$1.err error;
events { worker_connections 20000; }
http {
    access_log off;
    upstream pool {
        $2
        server 127.0.0.1:19081;
        server 127.0.0.1:19082;
        server 127.0.0.1:19083;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$1;
        location / {
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /wss {
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }
    }
}
CONF
}
mkdir -p "$work/logs"
conf 19090 "" > "$work/sluice.conf"
conf 19091 "" > "$work/nginx.conf"
"${cpu1[@]}" "$work/sluice" -p "$work/" -c "$work/sluice.conf" -e "$work/sluice.err" & sluice_pid=$!
"${cpu1[@]}" nginx -p "$work/" -c "$work/nginx.conf" -g 'daemon off;' 2>"$work/nginx.stderr" & nginx_pid=$!
pids+=("$sluice_pid" "$nginx_pid")
sleep 1

echo "== req/s through a 3-peer upstream (keepalive 64), wrk -t1 -c50 -d$DUR${PIN:+, proxies on CPU 1, backends and wrk on CPU 0}"
for r in $(seq 1 "$ROUNDS"); do
	order="sluice:19090 nginx:19091"
	[ $((r % 2)) = 0 ] && order="nginx:19091 sluice:19090"
	for t in $order; do
		name=${t%%:*}
		port=${t##*:}
		rps=$("${cpu0[@]}" wrk -t1 -c50 -d"$DUR" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
		echo "round $r $name $rps"
	done
done

kill "$sluice_pid" "$nginx_pid"; sleep 1 # their idle upstream connections must not count below

echo "== least_conn: WebSockets opened over time through sluice"
conf 19092 "least_conn;" > "$work/lc.conf"
"$work/sluice" -p "$work/" -c "$work/lc.conf" -e "$work/lc.err" & pids+=($!)
sleep 1
count() { for p in 19081 19082 19083; do ss -Htn state established "( dport = :$p )" | wc -l; done | tr '\n' ' '; }
open_batch() { # $1 n, $2 source ip; holds the connections until close_batch (wsload stops at EOF on stdin)
	(while [ -d "$work" ] && [ ! -e "$work/stop.$2" ]; do sleep 0.2; done) | "$work/wsload" -mode idle -url ws://127.0.0.1:19092/wss -n "$1" -src "$2" >"$work/wsload.$2" 2>&1 &
	local pid=$!
	pids+=($pid)
	until grep -q ready "$work/wsload.$2" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "wsload failed: $(cat "$work/wsload.$2")" >&2
			exit 1
		fi
		sleep 0.2
	done
}
close_batch() { touch "$work/stop.$1"; sleep 2; }
open_batch 500 127.0.0.10; echo "after 500:  $(count)"
open_batch 500 127.0.0.11; echo "after 1000: $(count)"
close_batch 127.0.0.10;    echo "closed 500: $(count)"
for ip in 12 13 14 15 16 17; do
	open_batch 500 127.0.0.$ip
	echo "open batch .$ip: $(count)"
done
read -r a b c <<<"$(count)"
max=$(printf '%s\n' "$a" "$b" "$c" | sort -n | tail -1)
min=$(printf '%s\n' "$a" "$b" "$c" | sort -n | head -1)
echo "least_conn open per peer: $a $b $c  max/min = $(awk "BEGIN {printf \"%.3f\", $max/$min}")"
