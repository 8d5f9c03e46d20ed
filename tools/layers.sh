#!/bin/sh
# tools/layers.sh — the layering rules of csrc/ (design.md §1), checked before
# the C compiles (make) and in make lint:
#   csrc/engine/     includes no Lua, libcurl or hiredis header, no header of an upper
#                    layer, and calls no clock, sleep, file, socket or random function;
#   csrc/transport/  includes no Lua header and nothing of csrc/binding/;
#   csrc/binding/    includes no hiredis header (hiredis stays behind transport/redis.h).
# Prints what breaks a rule and exits 1; prints nothing when all hold.
set -u
cd "$(dirname "$0")/.."
bad=0
report() { echo "tools/layers.sh: $1" >&2; bad=1; }

for f in csrc/engine/*.[ch]; do
  grep -nE '#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib|luajit|curl/|hiredis)[^>"]*[>"]' "$f" >/dev/null &&
    report "$f includes a Lua, libcurl or hiredis header (the engine is pure C)"
  grep -nE '#[[:space:]]*include[[:space:]]*"\.\./' "$f" >/dev/null &&
    report "$f includes a header of another layer"
  # no I/O, clock, sleep or randomness in the engine: they come in as arguments
  grep -nE '\b(clock_gettime|gettimeofday|time|nanosleep|usleep|sleep|fopen|fread|fwrite|open|read|write|socket|connect|send|recv|rand|random|srand|getenv|getpid)[[:space:]]*\(' "$f" |
    grep -vE '^[0-9]+:[[:space:]]*(\*|/\*|//)' >/dev/null &&
    report "$f calls a clock, sleep, file, socket, random or environment function"
done
for f in csrc/transport/*.[ch]; do
  grep -nE '#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib)[^>"]*[>"]' "$f" >/dev/null &&
    report "$f includes a Lua header (transports never do)"
  grep -nE '#[[:space:]]*include[[:space:]]*"\.\./binding/' "$f" >/dev/null &&
    report "$f includes a header of the binding (a layer above it)"
done
for f in csrc/binding/*.[ch]; do
  grep -nE '#[[:space:]]*include[[:space:]]*[<"](hiredis/|hiredis\.h|read\.h|sds\.h)' "$f" >/dev/null &&
    report "$f includes a hiredis header (use transport/redis.h)"
done
exit $bad
