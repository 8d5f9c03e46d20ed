#!/bin/sh
# tools/deps.sh — make sure the Debian packages hypatos needs are installed.
# Installs the missing ones with apt-get when run as root; otherwise prints the
# exact command to run and exits with status 1. Prints nothing when all is there.
set -eu

PACKAGES="gcc make pkg-config openssl curl lua5.4 liblua5.4-dev lua5.1 liblua5.1-0-dev libcurl4-openssl-dev libssl-dev lua-cjson lua-cjson-dev
lua-busted lua-luassert lua-say lua-system lua-socket lua-check lua-argparse luarocks luajit2 libluajit2-5.1-dev
nginx libnginx-mod-http-lua valgrind
redis-server redis-tools libhiredis-dev lua-nginx-redis faketime"
# make bench: also lua-curl (a libcurl binding for Lua 5.1/LuaJIT: the get benchmark's Lua peer)
[ "${1:-}" = "--bench" ] && PACKAGES="$PACKAGES wrk hyperfine lua-curl"
# make docs and make lint (which builds the docs): LDoc and the Markdown it formats with
[ "${1:-}" = "--docs" ] && PACKAGES="$PACKAGES lua-ldoc lua-discount"
# make fuzz: clang with the libFuzzer runtime (libclang_rt.fuzzer, in libclang-rt-14-dev)
[ "${1:-}" = "--fuzz" ] && PACKAGES="$PACKAGES clang libclang-rt-14-dev"

missing=""
for p in $PACKAGES; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y$missing"
if [ "$(id -u)" -eq 0 ]; then
  echo "tools/deps.sh: installing missing Debian packages:$missing" >&2
  sh -c "$cmd" >&2
else
  echo "tools/deps.sh: these Debian packages are missing:$missing" >&2
  echo "Install them as root, then run make again:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
