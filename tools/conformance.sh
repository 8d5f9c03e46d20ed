#!/bin/sh
# tools/conformance.sh — `make conformance`: the client against the vendor's OpenAPI 2.15 document.
#   1. coverage: every operationId of the document beside the method that covers it
#      (lua/hypatos/operations.lua); fails if one is uncovered or the two disagree;
#   2. run: every method that has an operationId, called against Stoplight Prism (npm
#      @stoplight/prism-cli, pinned in tools/prism/package.json) serving the document with
#      --errors; fails if Prism rejects a request (see tools/conformance.lua for how that is told).
# The document is read at run time, never stored in the repository: $HYPATOS_OPENAPI, else
# ../shared/vendor/hypatos-openapi-2.15.0.yaml beside the repository. Without it the check is
# skipped (exit 0). Prism is installed into tools/prism/node_modules on first use (npm, ~20 s).
#
# Prism 5.16 silently skips validating a request body whose schema it cannot compile, and it cannot
# compile a `type: string` enum that lists `null` (the document's CurrencyCode, LanguageCode and
# CountryCode, used by most enrichment records). So Prism serves a copy of the document, made in a
# temporary directory, without those `- null` enum items; the schemas say `nullable: true`, which
# keeps null allowed. CONFORMANCE_AS_IS=1 serves the document unchanged (the controls then fail).
set -eu
cd "$(dirname "$0")/.."
LUA=${LUA:-lua5.4}
export LUA_PATH="lua/?.lua;lua/?/init.lua;./?.lua;;"
export LUA_CPATH="build/5.4/?.so;;"
PRISM_VERSION=5.16.0
PRISM=tools/prism/node_modules/.bin/prism
DEFAULT_DOC=../shared/vendor/hypatos-openapi-2.15.0.yaml

say() { echo "conformance: $*"; }

# ---------------------------------------------------------------- the document
doc=""
if [ -n "${HYPATOS_OPENAPI:-}" ]; then
  if [ -f "$HYPATOS_OPENAPI" ]; then
    doc=$HYPATOS_OPENAPI
  else
    say "HYPATOS_OPENAPI=$HYPATOS_OPENAPI is not a file; trying $DEFAULT_DOC" >&2
  fi
fi
[ -z "$doc" ] && [ -f "$DEFAULT_DOC" ] && doc=$DEFAULT_DOC
if [ -z "$doc" ]; then
  say "skipped: no OpenAPI document (set HYPATOS_OPENAPI or put it at ../shared/vendor/hypatos-openapi-2.15.0.yaml)"
  exit 0
fi
[ -f build/5.4/hypatos/core.so ] || { say "build/5.4/hypatos/core.so is missing: run make all" >&2; exit 1; }

start=$(date +%s)
coverage_rc=0
"$LUA" tools/conformance.lua coverage "$doc" || coverage_rc=$?
[ "$coverage_rc" -ge 2 ] && exit "$coverage_rc"
echo

# ---------------------------------------------------------------- Prism, pinned
installed_version() {
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' \
    tools/prism/node_modules/@stoplight/prism-cli/package.json 2>/dev/null | head -n 1
}
if [ ! -x "$PRISM" ] || [ "$(installed_version)" != "$PRISM_VERSION" ]; then
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    say "node and npm are needed to install Stoplight Prism $PRISM_VERSION (node 20 works, although its package asks for 24)" >&2
    exit 1
  fi
  say "installing @stoplight/prism-cli@$PRISM_VERSION into tools/prism/node_modules (once, about 20 s)"
  # the versions of package-lock.json; no install scripts (the only one is @scarf/scarf's telemetry)
  if [ -f tools/prism/package-lock.json ]; then
    set -- ci
  else
    set -- install --save-exact "@stoplight/prism-cli@$PRISM_VERSION"
  fi
  if ! (cd tools/prism && npm "$@" --no-audit --no-fund --ignore-scripts --loglevel=error); then
    say "npm $* failed in tools/prism (is the npm registry reachable?)" >&2
    exit 1
  fi
  if [ "$(installed_version)" != "$PRISM_VERSION" ]; then
    say "npm did not install @stoplight/prism-cli@$PRISM_VERSION (found '$(installed_version)')" >&2
    exit 1
  fi
fi

# ---------------------------------------------------------------- serve the document
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hypatos-conformance.XXXXXX")
pid=""
# Is process $1 running (not gone, not a zombie)?
alive() { [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'; }
# Stops Prism (by its pid): TERM, up to 5 s, then KILL.
stop_prism() {
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  n=0
  while alive "$pid" && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}
cleanup() {
  stop_prism
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

served=$tmp/openapi.yaml
if [ "${CONFORMANCE_AS_IS:-}" = 1 ]; then
  cp "$doc" "$served"
  say "serving $doc unchanged (CONFORMANCE_AS_IS=1)"
else
  sed '/^[[:space:]]*-[[:space:]]*null[[:space:]]*$/d' "$doc" >"$served"
  removed=$(($(wc -l <"$doc") - $(wc -l <"$served")))
  say "serving $doc with its $removed '- null' enum item(s) removed (Prism $PRISM_VERSION cannot compile them; see tools/conformance.sh)"
fi

# A free port from the kernel, then Prism on it; if another process takes the port in between,
# Prism exits and the next port is tried.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
url=""
for try in 1 2 3; do
  port=$(free_port)
  "$PRISM" mock -h 127.0.0.1 -p "$port" --errors "$served" >"$tmp/prism.log" 2>&1 &
  pid=$!
  waited=0
  while [ "$waited" -lt 300 ]; do    # 30 s at most
    if grep -q "Prism is listening on" "$tmp/prism.log" 2>/dev/null; then
      url=http://127.0.0.1:$port
      break
    fi
    alive "$pid" || break
    sleep 0.1
    waited=$((waited + 1))
  done
  [ -n "$url" ] && break
  stop_prism
  say "Prism did not start on port $port (try $try of 3); its log:" >&2
  tail -n 20 "$tmp/prism.log" >&2
done
[ -n "$url" ] || { say "FAILED: Prism could not be started" >&2; exit 1; }

run_rc=0
"$LUA" tools/conformance.lua run "$url" "$doc" || run_rc=$?
if ! alive "$pid"; then
  say "Prism exited during the run; its log:" >&2
  tail -n 20 "$tmp/prism.log" >&2
  run_rc=1
fi
cleanup

elapsed=$(($(date +%s) - start))
if [ "$coverage_rc" -eq 0 ] && [ "$run_rc" -eq 0 ]; then
  say "passed (${elapsed} s)"
  exit 0
fi
failed=""
[ "$coverage_rc" -ne 0 ] && failed="operationId coverage"
[ "$run_rc" -ne 0 ] && failed="${failed:+$failed, }requests against Prism"
say "FAILED: $failed (${elapsed} s)"
exit 1
