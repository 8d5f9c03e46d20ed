#!/bin/sh
# tools/lua51check.sh — what runs on Lua 5.1 and LuaJIT too must stay loadable there (make lint).
# The library and the command (the rock installs both for 5.1, whose modules LuaJIT runs), the
# local server's launcher and handlers, mock/run.lua and the examples:
#   - parse as Lua 5.1 (luac5.1 -p): no `//`, `goto`, bitwise operators;
#   - read with the formats Lua 5.1 knows ("*a", "*l", "*n"; 5.3+ also takes "a", "l"): a
#     `:read("a")` raises "invalid option" in lua5.1 (LuaJIT takes both).
# Functions of Lua 5.2+ (utf8, math.tointeger, table.move, package.searchpath …) are luacheck's
# part: .luacheckrc checks the command, bin/hypatos and the launcher against std "min".
set -u
LUAC51=${LUAC51:-luac5.1}
status=0
for f in lua/hypatos/*.lua lua/hypatos/cli/*.lua bin/hypatos mock/run.lua mock/launcher.lua \
         mock/lua/hypatos_mock/*.lua examples/*.lua examples/openresty/*.lua; do
  # luac5.1 -p also refuses the "#!" line: parse everything after it
  if ! sed '1s/^#!.*//' "$f" | "$LUAC51" -p - 2>/tmp/lua51check.$$; then
    sed "s|^$LUAC51: stdin:|$f:|" /tmp/lua51check.$$ >&2
    status=1
  fi
  if grep -nE '(:|\.)(read|lines)\([^)]*"[alnL]"' "$f" | grep -vE '^[0-9]+:[[:space:]]*--' >/tmp/lua51check.$$; then
    sed "s|^|$f:|; s|\$|  <- Lua 5.1 knows only \"*a\", \"*l\", \"*n\"|" /tmp/lua51check.$$ >&2
    status=1
  fi
done
rm -f /tmp/lua51check.$$
[ $status = 0 ] && echo "Lua 5.1: the library, the command, the local server and the examples parse, and read with 5.1's formats"
exit $status
