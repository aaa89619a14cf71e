#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what the tests need (Debian packages and Go
# modules), then runs vet, staticcheck and every test (unit and end-to-end, which build and run the real binary).
set -euo pipefail
# CI's environment sets GOFLAGS=-buildvcs=false; keep whatever is there and add to it.
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# the systemd unit in contrib/ is checked with systemd-analyze verify
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# the PROXY protocol end-to-end test puts a real HAProxy (send-proxy, send-proxy-v2) in front of sluice
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
# the upstream parity test runs the same groups under a real nginx and compares the peers each picks
command -v nginx >/dev/null 2>&1 || ls /usr/sbin/nginx >/dev/null 2>&1 || need+=(nginx)
# the PHP end-to-end tests start a real php-fpm (Debian installs it as /usr/sbin/php-fpmX.Y)
command -v php-fpm >/dev/null 2>&1 || ls /usr/sbin/php-fpm* >/dev/null 2>&1 || need+=(php-fpm)
# the uwsgi_pass end-to-end test starts a real uWSGI with its Python 3 plugin and a small WSGI app
command -v uwsgi >/dev/null 2>&1 || need+=(uwsgi)
ls /usr/lib/uwsgi/plugins/python3*_plugin.so >/dev/null 2>&1 || need+=(uwsgi-plugin-python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing packages: ${need[*]} (run as root, or install them with apt-get)" >&2
    exit 1
  fi
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=$PATH:/usr/local/go/bin
fi

go mod download
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "not gofmt-clean: $unformatted" >&2; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck ./...
echo "== go test (race detector on; the end-to-end tests build the sluice binary with it too)"
GOFLAGS="${GOFLAGS:-} -race" go test -count=1 -timeout 20m ./...
