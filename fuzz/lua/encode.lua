--- Fuzz target: hypatos.json_encode of arbitrary Lua values built from the
-- input (nested tables, arrays and objects, mixed and sparse keys, NUL in keys
-- and strings, invalid UTF-8, integers and floats at the edges, NaN and
-- infinities, hypatos.null, array marks, functions, cycles, finalizers that add keys
-- while the encoder walks the table). The encoder
-- returns text that decodes, and from there re-encodes to the same text, or
-- raises a "json: …" error; nothing else.
local core = require "hypatos.core"
local bytes = require "fuzzbytes"

local NUMBERS = { 0, 1, -1, 2 ^ 53, -2 ^ 53, 1e300, -1e-300, 0.5, 1 / 3, -0.0, math.huge, -math.huge, 0 / 0,
  math.maxinteger, math.mininteger, 9007199254740993, 1e15 + 0.5 }
local KEYS = { "a", "b", "", "a\0b", "\0", "id", "é", "\xff", "1", 1, 2, 3, 0, -1, 1.5, 2 ^ 40 }

local value

--- A table from the stream: object, array (marked or not), sparse, or a cycle.
local function table_of(f, depth, top)
  local kind = f:pick(4)
  local n = f:pick(6)
  local t = {}
  if kind == 0 then
    for i = 1, n do t[i] = value(f, depth + 1, top) end
  elseif kind == 1 then
    t = core.array()
    for i = 1, n do t[i] = value(f, depth + 1, top) end
  else
    for _ = 1, n do
      local k = f:pick(3) == 0 and f:bytes(8) or f:one(KEYS)
      t[k] = value(f, depth + 1, top)
    end
  end
  if kind == 3 and f:pick(8) == 0 then t.self = top[1] or t end
  top[1] = top[1] or t
  return t
end

--- Any value from the stream.
function value(f, depth, top)
  local c = f:pick(10)
  if depth > 40 then c = c % 4 end
  if c == 0 then return f:bytes(40)
  elseif c == 1 then return f:one(NUMBERS)
  elseif c == 2 then return f:pick(2) == 0
  elseif c == 3 then return core.null
  elseif c == 4 then return print
  else return table_of(f, depth, top) end
end

--- A chain of garbage with finalizers that add keys to t: each one, when the collector runs
-- it, leaves the next; with the collector made eager (a step per allocated byte) they run
-- while the encoder walks t. `live[1]` false ends the chain.
local function chain(t, n, live)
  if n == 0 or not live[1] then return end
  setmetatable({}, { __gc = function()
    if not live[1] then return end
    t["gc" .. n] = n
    t[#t + 1] = n
    chain(t, n - 1, live)
  end })
end

return function(data)
  local f = bytes.new(data)
  local v = value(f, 0, {})
  local live = { type(v) == "table" and f:pick(4) == 0 }
  if live[1] then
    collectgarbage("incremental", 1, 1000, 0)
    chain(v, 50 + f:u8() * 4, live)
  end
  local ok, text = pcall(core.json_encode, v)
  if live[1] then
    live[1] = false
    collectgarbage("incremental", 200, 100, 13)
    collectgarbage()
  end
  if not ok then
    assert(type(text) == "string" and text:find("^json: "), "json_encode raised: " .. tostring(text))
    return
  end
  assert(type(text) == "string")
  local w, err = core.json_decode(text)
  assert(w ~= nil, "the encoder's output does not decode: " .. tostring(err) .. " in " .. text)
  -- integers beyond 2^53 come back as the nearest double (the decoder reads numbers as
  -- doubles): from the first decode on, the text is stable
  local ok2, again = pcall(core.json_encode, w)
  assert(ok2, "a decoded value does not encode: " .. tostring(again))
  local ok3, third = pcall(core.json_encode, core.json_decode(again))
  assert(ok3 and third == again, "decode → encode is not stable: " .. again .. " → " .. tostring(third))
end
