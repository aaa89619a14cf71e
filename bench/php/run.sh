#!/usr/bin/env bash
# Side-by-side requests/s of sluice and nginx in front of the same php-fpm pool (hello-world PHP) and for a
# small static file, in alternating rounds of `wrk -t1 -c50 -d10s`. Not a test: a measurement for the PHP issue.
# Needs php-fpm, nginx and wrk (Debian packages) and a built sluice: go build -o /tmp/sluice ./cmd/sluice
# Usage: bench/php/run.sh [sluice-binary] [rounds]
set -euo pipefail
SLUICE=${1:-/tmp/sluice}
ROUNDS=${2:-3}
DUR=${DUR:-10s}
W=$(mktemp -d /tmp/sluice-php-bench.XXXXXX)
FPM=$(command -v php-fpm || ls /usr/sbin/php-fpm* | sort | tail -1)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
FPORT=$(port); SPORT=$(port); NPORT=$(port)
mkdir -p "$W/html" "$W/logs" "$W/conf" "$W/nginx"
echo '<?php echo "Hello, world\n";' > "$W/html/hello.php"
head -c 1024 /dev/urandom | base64 > "$W/html/small.txt"
USERLINE=""; ROOTFLAG=""
if [ "$(id -u)" = 0 ]; then USERLINE="user = root"; ROOTFLAG="-R"; fi
cat > "$W/fpm.conf" <<CONF
[global]
error_log = $W/logs/fpm.log
pid = $W/fpm.pid
daemonize = no
[www]
$USERLINE
listen = 127.0.0.1:$FPORT
listen.backlog = 1024
pm = static
pm.max_children = 8
CONF
PHPBLOCK="location ~ \\.php\$ { root $W/html; fastcgi_pass 127.0.0.1:$FPORT; fastcgi_index index.php; fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name; include fastcgi_params; }"
cat > "$W/conf/sluice.conf" <<CONF
events {}
http {
    include mime.types;
    access_log off;
    error_log $W/logs/sluice-error.log;
    fastcgi_keep_conn ${KEEP:-on};
    server { listen 127.0.0.1:$SPORT; root $W/html; $PHPBLOCK }
}
CONF
cat > "$W/nginx/nginx.conf" <<CONF
worker_processes auto;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
pid $W/nginx/nginx.pid;
error_log $W/logs/nginx-error.log;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    client_body_temp_path $W/nginx/body; fastcgi_temp_path $W/nginx/fcgi; proxy_temp_path $W/nginx/proxy;
    uwsgi_temp_path $W/nginx/uwsgi; scgi_temp_path $W/nginx/scgi;
    server { listen 127.0.0.1:$NPORT; root $W/html; $PHPBLOCK }
}
CONF
sed -i "s#include fastcgi_params;#include /etc/nginx/fastcgi_params;#" "$W/nginx/nginx.conf"
"$FPM" -n $ROOTFLAG -F -y "$W/fpm.conf" >"$W/logs/fpm.out" 2>&1 & FPID=$!
"$SLUICE" -p "$W/" -c "$W/conf/sluice.conf" >"$W/logs/sluice.out" 2>&1 & SPID=$!
nginx -p "$W/nginx/" -c "$W/nginx/nginx.conf" -g 'daemon off;' >"$W/logs/nginx.out" 2>&1 & NPID=$!
trap 'kill $SPID $NPID $FPID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
sleep 1.5
curl -sf "http://127.0.0.1:$SPORT/hello.php" >/dev/null && curl -sf "http://127.0.0.1:$NPORT/hello.php" >/dev/null
rps() { wrk -t1 -c50 -d"$DUR" "$1" | awk '/Requests\/sec/ {print $2} /Non-2xx|Socket errors/ {print "#", $0 > "/dev/stderr"}'; }
for what in ${WHAT:-hello.php small.txt}; do
  for r in $(seq 1 "$ROUNDS"); do
    s=$(rps "http://127.0.0.1:$SPORT/$what")
    # sluice keeps idle php-fpm connections (each holds a worker) for up to 15s: let them go before nginx's turn
    [ "$what" = hello.php ] && sleep 16
    n=$(rps "http://127.0.0.1:$NPORT/$what")
    echo "$what round $r: sluice $s req/s, nginx $n req/s"
  done
done
