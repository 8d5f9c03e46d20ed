#!/bin/sh
# examples/openresty/demo.sh — start examples/openresty/nginx.conf, ask it for the companies,
# one user and one without an id (400), stop it. Needs HYPATOS_CLIENT_ID, HYPATOS_CLIENT_SECRET and HYPATOS_BASE_URL (as
# `make demo-openresty` sets them for the local server). Run from the repository root.
set -eu
mkdir -p logs
rm -f logs/openresty-example.pid
nginx=${NGINX:-/usr/sbin/nginx}
if [ "$(id -u)" = 0 ]; then
  "$nginx" -p "$PWD/" -c examples/openresty/nginx.conf -g "user root;" -e logs/openresty-example.log
else
  "$nginx" -p "$PWD/" -c examples/openresty/nginx.conf -e logs/openresty-example.log
fi
pid=$(cat logs/openresty-example.pid 2>/dev/null || true)
i=0
while [ -z "$pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); pid=$(cat logs/openresty-example.pid 2>/dev/null || true); done
stop() {
  kill -QUIT "$pid" 2>/dev/null || return 0
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}
trap stop EXIT
i=0
until curl -sf http://127.0.0.1:8931/ping >/dev/null 2>&1 || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
echo "GET /companies"
curl -s http://127.0.0.1:8931/companies
echo "GET /users"
users=$(curl -s http://127.0.0.1:8931/users)
echo "$users"
id=$(printf '%s' "$users" | grep -o '"id":"[0-9a-f]\{24\}"' | head -n 1 | cut -d'"' -f4)
echo "GET /users/$id"
curl -s "http://127.0.0.1:8931/users/$id"
echo "GET /user (no id)"
curl -s -w 'HTTP %{http_code}\n' "http://127.0.0.1:8931/user"
