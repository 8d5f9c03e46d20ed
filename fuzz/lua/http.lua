--- Fuzz target: the pure-Lua HTTP/1.1 response reader of the OpenResty driver
-- (lua/hypatos/http1.lua, driven by lua/hypatos/cosocket.lua's M.perform) behind a
-- fake `ngx` and a fake cosocket.
-- Input: a flags byte (method, max_body_size, a reused connection, a clock that
-- runs, how the stream ends, a fresh connection), a byte with the number of chunk
-- sizes (bits 0-2) and whether the request goes through a proxy's CONNECT tunnel
-- (bit 3: the proxy's answer comes first), the chunk sizes, then the bytes the
-- "server" sends, handed out by receiveany() in pieces of those sizes (cycled).
-- perform() must return a result table the engine takes: {status, header_block, body}
-- (a body within the size caps, exactly Content-Length bytes when that is a plain
-- number) or {error, sent, message}; never raise. And the same result whatever the
-- pieces (without a tunnel or a running clock): the bytes again in one piece, where a
-- head that has all arrived is read by the core (core.http_head) instead of line by
-- line in Lua, must give the same status, headers, body or failure.
local bytes = require "fuzzbytes"

local ERRORS = { timeout = true, recv = true, closed = true, partial = true, too_large = true, send = true,
  connect = true, resolve = true, io = true }
local ERROR_BODY_MAX = 1024 * 1024

--- A fresh copy of cosocket.lua bound to the fake ngx (never touches the global ngx).
local function load_cosocket(ngx)
  local env = setmetatable({ ngx = ngx }, { __index = _G })
  local chunk = assert(loadfile("lua/hypatos/cosocket.lua", "t", env))
  return chunk()
end

local clock, stream, sizes, spot, pos, end_err, runs
local function now() return clock end

local Sock = {}
Sock.__index = Sock
function Sock.settimeouts() end
function Sock.connect() return true end
function Sock:getreusedtimes() return self.reused end
function Sock.sslhandshake() return true end
function Sock.send(_, data) return #data end
function Sock.close() return true end
function Sock.setkeepalive() return true end
function Sock.receiveany(_, max)
  assert(math.type(max) == "integer" and max > 0, "receiveany needs a positive integer")
  if runs then clock = clock + 1 end
  if pos > #stream then return nil, end_err end
  local n = sizes[spot]
  spot = spot % #sizes + 1
  if n > max then n = max end
  local piece = stream:sub(pos, pos + n - 1)
  pos = pos + n
  return piece
end

local reused_next = 0
local fake_ngx = {
  now = now,
  update_time = function() end,
  sleep = function(seconds) clock = clock + seconds end,
  timer = { at = function() return true end }, -- the loop-turn counter (never runs here)
  worker = { pid = function() return 1 end },
  socket = { tcp = function()
    local s = setmetatable({ reused = reused_next }, Sock)
    reused_next = 0
    return s
  end },
}
local cosocket = load_cosocket(fake_ngx)

--- a and b are the same value (tables compared by content; the key `elapsed` skipped).
local function same(a, b)
  if type(a) == "userdata" or type(b) == "userdata" then return tostring(a) == tostring(b) end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if k ~= "elapsed" and not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if k ~= "elapsed" and a[k] == nil then return false end
  end
  return true
end

local function show(t)
  if type(t) ~= "table" then return tostring(t) end
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = tostring(k) .. "=" .. show(v) end
  table.sort(parts)
  return "{" .. table.concat(parts, ", ") .. "}"
end

return function(data)
  local f = bytes.new(data)
  local flags = f:u8()
  local method = ({ "GET", "HEAD", "POST", "DELETE" })[flags % 4 + 1]
  local max = ({ false, 16, 1000, 65536 })[(flags >> 2) % 4 + 1] or nil
  reused_next = (flags >> 4) & 1
  runs = (flags >> 5) & 1 == 1
  end_err = (flags >> 6) & 1 == 1 and "timeout" or "closed"
  local counts = f:u8()
  local tunnel = (counts >> 3) & 1 == 1 -- https through an http proxy: CONNECT's answer first
  sizes = {}
  for i = 1, counts % 8 + 1 do sizes[i] = f:u8() + 1 end
  stream, pos, spot, clock = f:rest(), 1, 1, 1000
  local act = { method = method,
    url = tunnel and "https://api.example.test/v2/users?limit=1" or "http://127.0.0.1:8080/v2/users?limit=1",
    proxy = tunnel and "http://127.0.0.1:3128" or nil,
    headers = { Accept = "application/json" }, timeout = 30, max_body_size = max,
    body = method == "POST" and "{}" or nil, fresh = (flags >> 7) == 1 }
  local reused = reused_next
  local ok, res = pcall(cosocket.perform, act)
  assert(ok, "perform raised: " .. tostring(res))
  assert(type(res) == "table", "perform returned " .. type(res))
  if not tunnel and not runs then -- the same bytes in one piece: the same result
    sizes, pos, spot, reused_next = { 65536 }, 1, 1, reused
    local again = cosocket.perform(act)
    assert(same(res, again), ("in pieces %s, in one piece %s"):format(show(res), show(again)))
  end
  if res.error then
    assert(ERRORS[res.error], "unknown failure " .. tostring(res.error))
    assert(type(res.message) == "string", "failure without a message")
    assert(type(res.sent) == "boolean", "failure without sent")
    return
  end
  assert(math.type(res.status) == "integer" and res.status >= 101 and res.status <= 999, "bad status")
  local block = tostring(res.header_block) -- the core's hypatos.HeaderBlock, or a string
  assert(type(res.header_block) == "userdata" or type(res.header_block) == "string", "no header block")
  local headers = {}
  for k, v in block:gmatch("([^%z]*)%z([^%z]*)%z") do
    assert(k ~= "" and k == k:lower() and headers[k] == nil, "bad header name " .. k)
    assert(not v:find("[\r\n]"), "CR or LF in a header value")
    headers[k] = v
  end
  local n = 0
  for k, v in pairs(headers) do n = n + #k + #v + 2 end
  assert(n == #block, "a header block that is not name\\0value\\0 pairs")
  local no_body = method == "HEAD" or res.status == 204 or res.status == 304
  if no_body then
    assert(res.body == nil, "a body where there is none")
    return
  end
  assert(type(res.body) == "string", "no body")
  local ok2xx = res.status >= 200 and res.status < 300
  if ok2xx and max then assert(#res.body <= max, "2xx body over max_body_size") end
  if not ok2xx then assert(#res.body <= (max and max < ERROR_BODY_MAX and max or ERROR_BODY_MAX)) end
  local cl, te = headers["content-length"], headers["transfer-encoding"]
  if cl and cl:match("^%d+$") and not te then -- with Transfer-Encoding, Content-Length is ignored
    local want = tonumber(cl)
    if ok2xx or #res.body < (max or ERROR_BODY_MAX) then
      assert(#res.body == want, ("Content-Length %d, body %d bytes"):format(want, #res.body))
    end
  end
end
