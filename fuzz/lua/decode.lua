--- Fuzz target: the one-pass decoder (hypatos.json_decode, csrc/binding/json_decode.c)
-- against the decoder it replaced, rebuilt here: lua-cjson 2.1.0 (cjson.safe) with the
-- passes the binding used to run around it (empty arrays marked before, integral numbers
-- turned into integers and the marks into arrays after). The input is the JSON text.
--   * every input the old decoder refuses, the new one refuses too;
--   * where both accept, the values are the same: numbers equal as doubles (the new one is
--     exact beyond 2^53 where the old one rounded; it also gives integers at the top level,
--     where the old pass never looked), strings byte for byte, empty arrays marked alike,
--     null the same light userdata;
--   * the new one refuses some inputs the old let through (not JSON: NaN, Infinity, hex,
--     leading zeros, "1."; text after a NUL, which cjson ignored); those are checked to be of
--     that kind.
local core = require "hypatos.core"
local ok_cjson, cjson = pcall(require, "cjson.safe")

local array_mt = core.array_mt
local MARK = "hypatos-empty-array-fuzz-0123456789abcdef"

--- The old pre-pass: every empty array (outside strings) replaced by ["MARK"].
local function mark(s)
  local out, i, n, in_str = {}, 1, #s, false
  while i <= n do
    local c = s:sub(i, i)
    if in_str then
      if c == "\\" and i < n then
        out[#out + 1] = s:sub(i, i + 1)
        i = i + 2
      else
        if c == '"' then in_str = false end
        out[#out + 1] = c
        i = i + 1
      end
    elseif c == '"' then
      in_str = true
      out[#out + 1] = c
      i = i + 1
    elseif c == "[" then
      local j = i + 1
      while j <= n and s:sub(j, j):match("^[ \t\r\n]$") do j = j + 1 end
      if s:sub(j, j) == "]" then
        out[#out + 1] = '["' .. MARK .. '"]'
        i = j + 1
      else
        out[#out + 1] = c
        i = i + 1
      end
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

--- The old post-pass: integral floats below 2^53 inside tables → integers, marks → arrays.
local function fix(v, depth)
  if type(v) ~= "table" or depth > 1000 then return v end
  if #v == 1 and v[1] == MARK then
    v[1] = nil
    return setmetatable(v, array_mt)
  end
  for k, x in pairs(v) do
    if math.type(x) == "float" and x == math.floor(x) and math.abs(x) < 9007199254740992 then
      v[k] = math.tointeger(x)
    elseif type(x) == "table" then
      v[k] = fix(x, depth + 1)
    end
  end
  return v
end

--- Equal values: numbers as doubles, tables deeply (array marks alike).
local function same(a, b, depth)
  if type(a) == "number" and type(b) == "number" then
    return a + 0.0 == b + 0.0 or (a ~= a and b ~= b)
  end
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or depth > 1100 then return false end
  if (getmetatable(a) == array_mt) ~= (getmetatable(b) == array_mt) then return false end
  for k, x in pairs(a) do
    if not same(x, b[k], depth + 1) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

return function(data)
  local new, err = core.json_decode(data)
  if new == nil then assert(type(err) == "string" and err ~= "", "refused without a message") end
  if not ok_cjson or data:find(MARK, 1, true) then return end
  local old = cjson.decode(mark(data))
  if old == nil then
    assert(new == nil, "the old decoder refuses what the new one accepts: " .. data)
    return
  end
  old = fix(old, 0)
  if new == nil then
    -- allowed only for what is not JSON (numbers cjson read leniently: NaN, Infinity, hex,
    -- leading zeros, a plus sign, a dot or exponent without digits; a NUL after the value,
    -- where cjson stopped reading as at the end of a C string) or too deep
    local at = tonumber(err:match("at character (%d+)$") or "")
    local rest = at and data:sub(at) or ""
    local num = rest:match("^%-?[%d.eE+%-]*")
    local lenient = rest:match("^%-?[IiNn]") or rest:match("^%+") or rest:match("^%-?0[%dxX]")
      or num:match("%.[^%d]") or num:match("%.$") or num:match("[eE][%+%-]?$") or num:match("^%-?%.")
      or rest:match("^%z") or err:find("too many nested", 1, true)
    assert(lenient, "the new decoder refuses valid JSON: " .. err .. " in " .. data)
    return
  end
  assert(same(old, new, 0), "the values differ for " .. data)
end
