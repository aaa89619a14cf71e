#!/bin/sh
# Runs h2spec (HTTP/2 conformance, github.com/summerwind/h2spec v2.2.1, pinned in tools/h2spec) against sluice's
# TLS listener with HTTP/2. Usage: scripts/h2spec.sh [h2spec args, e.g. -j report.xml]. Exit status: h2spec's.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" "$root/cmd/sluice"
(cd "$root/tools/h2spec" && go build -o "$work/h2spec" github.com/summerwind/h2spec/cmd/h2spec)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/prefix/conf" "$work/prefix/logs" "$work/prefix/html"
echo ok > "$work/prefix/html/index.html"
cat > "$work/prefix/conf/sluice.conf" <<CONF
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:$port ssl;
        http2 on;
        server_name localhost;
        ssl_certificate self-signed;
        location / { root html; }
    }
}
CONF
"$work/sluice" -p "$work/prefix/" -c "$work/prefix/conf/sluice.conf" -e stderr &
pid=$!
i=0
until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null; do
    i=$((i+1)); [ $i -lt 100 ] || { echo "sluice did not start" >&2; exit 1; }; sleep 0.1
done
"$work/h2spec" -t -k -h 127.0.0.1 -p "$port" -o 5 "$@"
