--- What the `hypatos` command needs from Lua 5.3 and 5.4, on Lua 5.1 and LuaJIT too:
-- the native function where it exists, a small equivalent in plain Lua elsewhere. The
-- rock installs the command for the Lua of its tree (5.4, or 5.1, whose modules LuaJIT
-- also runs), so everything under hypatos.cli must load and run on all three: no `//`, no
-- `goto`, read formats with their `*` (`"*a"`, `"*l"`), no `utf8`, `math.tointeger`,
-- `table.move` or `table.unpack` but through here.
-- @internal hypatos.cli.compat

local M = {}

--- The plain-Lua `math.tointeger` (what Lua 5.1 and LuaJIT get): an integral number (or a
-- numeric string) as is, else nil. They have one number type: no integer to convert to.
-- @param x
-- @treturn ?number
function M.tointeger_lua(x)
  x = tonumber(x)
  if x and x == math.floor(x) and x > -math.huge and x < math.huge then return x end
  return nil
end

--- `math.tointeger` (Lua 5.3+), or `tointeger_lua`.
M.tointeger = math.tointeger or M.tointeger_lua -- luacheck: ignore 143 (5.3+, checked)

--- `table.unpack` (Lua 5.1 and LuaJIT: `unpack`).
M.unpack = table.unpack or unpack -- luacheck: ignore 113 143 (5.2+ or 5.1)

--- True when `os.execute` reports that a command exited with status 0
-- (`true` from Lua 5.2 on, the status 0 from Lua 5.1 and LuaJIT).
-- @param r the first value `os.execute` returned
-- @treturn boolean
function M.succeeded(r)
  return r == true or r == 0
end

-- The byte after position i of a valid UTF-8 character starting there, or nil when
-- the bytes at i are not one (overlong forms, surrogates and code points past
-- U+10FFFF are not, as with Lua 5.4's strict utf8 functions). Also returns the code point.
local function next_char(s, i)
  local c = s:byte(i)
  if c < 0x80 then return i + 1, c end
  local n, cp, min
  if c >= 0xC2 and c <= 0xDF then n, cp, min = 1, c - 0xC0, 0x80
  elseif c >= 0xE0 and c <= 0xEF then n, cp, min = 2, c - 0xE0, 0x800
  elseif c >= 0xF0 and c <= 0xF4 then n, cp, min = 3, c - 0xF0, 0x10000
  else return nil end
  for j = i + 1, i + n do
    local b = s:byte(j)
    if not b or b < 0x80 or b > 0xBF then return nil end
    cp = cp * 64 + (b - 0x80)
  end
  if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
  return i + n + 1, cp
end

local U = {}

--- The pattern of one UTF-8 character (as `utf8.charpattern`; decimal escapes and `%z`:
-- Lua 5.1 knows neither `\x` nor a zero byte in a pattern).
U.charpattern = "[%z\1-\127\194-\253][\128-\191]*"

--- The number of characters of a UTF-8 string, or nil and the position of the first
-- invalid byte (as `utf8.len(s)`).
-- @tparam string s
-- @treturn[1] integer
-- @treturn[2] nil
-- @treturn[2] integer
function U.len(s)
  local i, n = 1, 0
  while i <= #s do
    local j = next_char(s, i)
    if not j then return nil, i end
    i, n = j, n + 1
  end
  return n
end

--- The byte position where the n-th character (n ≥ 1) starts; #s + 1 for the one after
-- the last; nil past that (as `utf8.offset(s, n)`).
-- @tparam string s
-- @tparam integer n
-- @treturn ?integer
function U.offset(s, n)
  local i = 1
  n = n - 1
  while n > 0 and i <= #s do
    i = i + 1
    while i <= #s and s:byte(i) >= 0x80 and s:byte(i) <= 0xBF do i = i + 1 end
    n = n - 1
  end
  if n == 0 then return i end
  return nil
end

--- Iterates over the characters of a UTF-8 string: position, code point (as `utf8.codes`);
-- raises on an invalid byte.
-- @tparam string s
function U.codes(s)
  local i = 1
  return function()
    if i > #s then return nil end
    local j, cp = next_char(s, i)
    if not j then error("invalid UTF-8 code", 2) end
    local at = i
    i = j
    return at, cp
  end
end

--- The code points of the characters that start from byte i to byte j (as `utf8.codepoint`).
-- @tparam string s
-- @tparam[opt=1] integer i
-- @tparam[opt=i] integer j
function U.codepoint(s, i, j)
  i = i or 1
  if i < 0 then i = #s + i + 1 end
  j = j or i
  if j < 0 then j = #s + j + 1 end
  local out = {}
  while i <= j do
    local k, cp = next_char(s, i)
    if not k then error("invalid UTF-8 code", 2) end
    out[#out + 1] = cp
    i = k
  end
  return M.unpack(out)
end

--- The UTF-8 string of code points (as `utf8.char`).
-- @param ... integers
-- @treturn string
function U.char(...)
  local out = {}
  for k = 1, select("#", ...) do
    local cp = select(k, ...)
    if cp < 0x80 then out[k] = string.char(cp)
    elseif cp < 0x800 then
      out[k] = string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64)
    elseif cp < 0x10000 then
      out[k] = string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
    else
      out[k] = string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
        0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
    end
  end
  return table.concat(out)
end

--- `utf8` (Lua 5.3+), or the equivalents above (Lua 5.1, LuaJIT).
M.utf8 = rawget(_G, "utf8") or U

--- The plain-Lua equivalents, also where `utf8` exists (the specs compare them with it).
M.utf8_lua = U

return M
