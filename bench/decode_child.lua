--- bench/decode_child.lua — one side of the "decode" benchmark of `make bench` (bench/decode.lua):
-- decodes JSON files over and over with one decoder and times it.
--
--   LUA_CPATH="build/5.4/?.so;;" lua5.4 bench/decode_child.lua --impl hypatos|cjson [--ms N] FILE…
--   LUA_CPATH="build/luajit/?.so;;" luajit bench/decode_child.lua --impl cjson FILE…
--
-- --impl hypatos: hypatos.core's json_decode (the decoder client.users:get uses on an answer);
-- --impl cjson: lua-cjson's cjson.decode. Runs under Lua 5.4 and LuaJIT (5.1 syntax).
-- For every file: its bytes are read once into one string; the value is decoded once and its
-- shape counted (tables, strings and their bytes, numbers, booleans, nulls: the parent checks
-- that both decoders saw the same document); then the decode loop runs with a call count that
-- grows until one loop takes at least a quarter of N ms of CPU (those loops are the warm-up),
-- and the last loop, sized to take about N ms (default 300), is the measurement. CPU time is
-- os.clock() (clock(3): user + sys of this process), so a preempted process is not charged for
-- the time it waits; the garbage the loop makes is collected by the VM inside the loop, as in
-- a program, and counted. Prints one JSON line: {"ok":true,"docs":[{"bytes","calls","cpu_s",
-- "shape"}…]}.

local cjson = require "cjson"

local function fail(msg)
  io.stderr:write("decode_child: ", msg, "\n")
  os.exit(1)
end

local impl, ms, files = nil, 300, {}
do
  local i = 1
  while i <= #arg do
    local k, v = arg[i], arg[i + 1]
    if k == "--impl" and v then impl = v; i = i + 2
    elseif k == "--ms" and tonumber(v) then ms = tonumber(v); i = i + 2
    elseif k:sub(1, 2) == "--" then fail("usage: bench/decode_child.lua --impl hypatos|cjson [--ms N] FILE...")
    else files[#files + 1] = k; i = i + 1 end
  end
end
if #files == 0 or ms <= 0 then fail("usage: bench/decode_child.lua --impl hypatos|cjson [--ms N] FILE...") end

local decode, null
if impl == "hypatos" then
  local core = require "hypatos.core"
  decode, null = core.json_decode, core.null
elseif impl == "cjson" then
  decode, null = cjson.decode, cjson.null
else
  fail("--impl: hypatos or cjson")
end

-- What a decoded value holds, counted the same way whatever decoded it.
local function shape(v, acc)
  local t = type(v)
  if t == "table" then
    acc.tables = acc.tables + 1
    for k, x in pairs(v) do
      if type(k) == "string" then acc.keys = acc.keys + 1 end
      shape(x, acc)
    end
  elseif t == "string" then
    acc.strings = acc.strings + 1
    acc.string_bytes = acc.string_bytes + #v
  elseif t == "number" then
    acc.numbers = acc.numbers + 1
  elseif t == "boolean" then
    acc.booleans = acc.booleans + 1
  elseif v == null then
    acc.nulls = acc.nulls + 1
  else
    fail("unexpected value of type " .. t)
  end
  return acc
end

local clock = os.clock

local function loop(s, n)
  local c0 = clock()
  for _ = 1, n do decode(s) end
  return clock() - c0
end

local docs = {}
for i, path in ipairs(files) do
  local f = io.open(path, "rb")
  if not f then fail("cannot read " .. path) end
  local s = f:read("*a")
  f:close()
  local v, err = decode(s)
  if v == nil then fail(path .. ": " .. tostring(err)) end
  local acc = shape(v, { tables = 0, keys = 0, strings = 0, string_bytes = 0, numbers = 0, booleans = 0,
    nulls = 0 })
  v = nil -- luacheck: ignore 311
  collectgarbage("collect")
  local target = ms / 1000
  local n, t = 1, loop(s, 1)
  while t < target / 4 do
    n = n * 4
    t = loop(s, n)
  end
  n = math.max(1, math.floor(n * target / t + 0.5))
  t = loop(s, n)
  docs[i] = { file = path, bytes = #s, calls = n, cpu_s = t, shape = acc }
end

print(cjson.encode({ ok = true, impl = impl, lua = (jit and jit.version) or _VERSION, docs = docs }))
