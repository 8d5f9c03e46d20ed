-- The head of an answer over nginx cosockets (issue 19): read in one pass by the core
-- (core.http_head) when it has all arrived, line by line in Lua (http1.lua's line
-- reader, through cosocket.lua) from where it is cut off. Both must give the same status, headers, version,
-- failure and leave the reader at the same byte: each head here is read whole (one piece),
-- byte by byte (the line reader from the first byte) and cut at every position.
local core = require "hypatos.core"

local MAX = 256 * 1024

-- A fresh copy of cosocket.lua over a fake ngx whose clock stands still.
local function load_cosocket()
  local fake = { now = function() return 1000 end, update_time = function() end,
    worker = { pid = function() return 1 end }, timer = { at = function() return true end } }
  local chunk = assert(loadfile("lua/hypatos/cosocket.lua", "t", setmetatable({ ngx = fake }, { __index = _G })))
  return chunk()
end
local cosocket = load_cosocket()

-- A fake cosocket that hands out `stream` in pieces of the sizes in `sizes` (cycled), then
-- fails with "closed".
local function sock(stream, sizes)
  local pos, spot = 1, 1
  return {
    settimeouts = function() end,
    receiveany = function(_, max)
      if pos > #stream then return nil, "closed" end
      local n = math.min(sizes[spot], max)
      spot = spot % #sizes + 1
      local piece = stream:sub(pos, pos + n - 1)
      pos = pos + n
      return piece
    end,
  }
end

-- Reads the head of `stream` delivered in pieces of `sizes` → {status, block, version,
-- cl, te, conn | err}, and after a head read the rest of the stream (after a failure
-- nothing more is read: the connection is closed).
local function read(stream, sizes, lines_only)
  local rd = cosocket.reader(sock(stream, sizes), 2000, nil)
  local r = { (lines_only and cosocket.read_head_lines or cosocket.read_head)(rd) }
  if not r[1] then return r end
  r[2] = tostring(r[2]) -- the core's hypatos.HeaderBlock, or the line reader's string
  local rest = {}
  while true do
    local data = rd:some(65536)
    if not data then break end
    rest[#rest + 1] = data
  end
  r.rest = table.concat(rest)
  return r
end

local HEADS = {
  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
  "HTTP/1.0 204 No Content\r\n\r\n",
  "HTTP/1.1 200 OK\n\nbody", -- bare LF
  "HTTP/1.1 200 OK\r\r\nX: a\r\r\n\r\r\nrest", -- every CR dropped
  "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", -- a CR inside a value
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 201 Created\r\nA: 1\r\n\r\nb",
  "HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n",
  "HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nset-cookie: b\r\nSET-COOKIE:c\r\nX: 1\r\nx: 2\r\n\r\n", -- joined with ", "
  "HTTP/1.1 200 OK\r\nX:\r\nY:   \t \r\nZ: \t v v \t\r\n\r\n", -- empty, blank, trimmed
  "HTTP/1.1 200\r\n\r\n", -- no reason phrase
  "HTTP/1.1 2000 OK\r\n\r\n", -- four digits: the first three
  "HTTP/9.9 999 z\r\n\r\n",
  "HTTP/1.1 20 OK\r\n\r\n", -- malformed status line
  "http/1.1 200 OK\r\n\r\n",
  "HTTP/1.1  200 OK\r\n\r\n",
  " HTTP/1.1 200 OK\r\n\r\n",
  "\r\nHTTP/1.1 200 OK\r\n\r\n",
  "HTTP/1.1 200 OK\r\nBad Line\r\n\r\n", -- malformed header lines
  "HTTP/1.1 200 OK\r\n: v\r\n\r\n",
  "HTTP/1.1 200 OK\r\nX : v\r\n\r\n",
  "HTTP/1.1 200 OK\r\nX\t: v\r\n\r\n",
  "HTTP/1.1 200 OK\r\nX\v: v\r\n\r\n",
  "HTTP/1.1 200 OK\r\n X: v\r\n\r\n",
  "HTTP/1.1 200 OK\r\nX-\128\255: v\r\n\r\n", -- any other byte may name a field
  "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: chunked\r\n"
    .. "Connection: keep-alive\r\n\r\n", -- the framing fields
  "HTTP/1.1 200 OK\r\nN\0ame: v\r\n\r\n", -- a NUL in a name: kept (never sent on, see hyp_header_add)
  "HTTP/1.1 200 OK\r\nX: v\0w\r\n\r\n", -- a NUL in a value: refused
  "HTTP/1.1 200 OK\r\nX: v\r\n", -- cut off: closed before the end of the head
  "HTTP/1.1 200 OK",
  "",
  "HTTP/1.1 100 Continue\r\n\r\n",
}

-- Many repeated fields, many fields, a long value.
local many = { "HTTP/1.1 200 OK\r\n" }
for i = 1, 3000 do many[#many + 1] = ("X-%d: %d\r\nRep: %d\r\n"):format(i % 7, i, i) end
many[#many + 1] = "\r\n"
HEADS[#HEADS + 1] = table.concat(many)
HEADS[#HEADS + 1] = "HTTP/1.1 200 OK\r\nLong: " .. ("v"):rep(60000) .. "\r\n\r\n"

describe("the head of an answer over cosockets", function()
  it("reads the same in one pass as line by line, whole or cut anywhere", function()
    for _, stream in ipairs(HEADS) do
      local want = read(stream, { 1 }, true)
      local label = ("%q"):format(stream:sub(1, 80))
      assert.same(want, read(stream, { 65536 }), label)
      assert.same(want, read(stream, { 1 }), label)
      if #stream < 2000 then
        for cut = 1, #stream do
          assert.same(want, read(stream, { cut, 65536 }), label .. " cut at " .. cut)
        end
      end
    end
  end)

  it("reads a head in one pass: status, lowered names, joined values, version, where it ends", function()
    local s = "xxHTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nA: 1\r\nB:2 \r\na: 3\r\nConnection: close\r\n"
      .. "N\0: x\r\n\r\nbody"
    local status, block, version, nextpos, used, cl, te, conn = core.http_head(s, 3, 10, MAX)
    assert.equal(200, status)
    assert.equal("userdata", type(block))
    assert.equal("a\0" .. "1, 3\0b\0" .. "2\0connection\0close\0", tostring(block)) -- the name with a NUL left out
    assert.equal("1.0", version)
    assert.equal("body", s:sub(nextpos))
    assert.equal(10 + (21 + 2) + 2 + (15 + 2) + 4 + 2 + 4 + 2 + 4 + 2 + 17 + 2 + 5 + 2 + 2, used)
    assert.same({ nil, nil, "close" }, { cl, te, conn })
  end)

  it("hands the engine the same headers as a table would", function()
    local hypatos = require "hypatos"
    local c = hypatos.new { client_id = "id", client_secret = "secret", base_url = "https://api.example.test/v2",
      random = function() return 0.5 end }
    local function meta_headers(result)
      local call = assert(c:prepare("GET", "/users"))
      local act = call:step(1000)
      if act.token_request then -- the first call fetches the token
        act = call:step(1000, { status = 200, body = '{"access_token":"t","token_type":"Bearer","expires_in":60}' })
      end
      assert.equal("send", act.type)
      act = call:step(1000, result)
      call:close()
      assert.equal("done", act.type)
      return act.meta.headers
    end
    local stream = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-A: 1\r\nx-a: 2\r\nN\0: z\r\n\r\n"
    local _, block = core.http_head(stream, 1, 0, MAX)
    local _, headers = cosocket.read_head_lines(cosocket.reader(sock(stream, { 1 }), 2000, nil))
    local want = { ["content-type"] = "application/json", ["x-a"] = "1, 2" }
    assert.same(want, meta_headers({ status = 200, header_block = block, body = "{}" }))
    assert.same(want, meta_headers({ status = 200, header_block = headers, body = "{}" }))
    assert.same(want, meta_headers({ status = 200, header_block = tostring(block), body = "{}" }))
    assert.same(want, meta_headers({ status = 200, headers = { ["Content-Type"] = "application/json",
      ["x-a"] = "1, 2", ["n\0"] = "z" }, body = "{}" }))
    c:close()
  end)

  it("tells where a head is cut off, and the bytes counted before it", function()
    local s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nA: 1\r\n"
    local status, start, used = core.http_head(s, 1, 0, MAX)
    assert.is_false(status)
    assert.equal("HTTP/1.1 200 OK\r\nA: 1\r\n", s:sub(start))
    assert.equal(21 + 2 + 2, used)
    assert.same({ false, 1, 5 }, { core.http_head("", 1, 5, MAX) })
  end)

  it("fails as the line reader does", function()
    assert.same({ nil, "headers too large" }, { core.http_head("HTTP/1.1 200 OK\r\n\r\n", 1, MAX - 10, MAX) })
    assert.same({ nil, "malformed status line" }, { core.http_head("HTTP/1.1 2x0 OK\r\n", 1, 0, MAX) })
    assert.same({ nil, "malformed header line" }, { core.http_head("HTTP/1.1 200 OK\r\nX\r\n", 1, 0, MAX) })
    assert.same({ nil, "NUL byte in header" }, { core.http_head("HTTP/1.1 200 OK\r\nX: \0\r\n", 1, 0, MAX) })
    -- a malformed line fails at once, before the rest of the head has come
    assert.same({ nil, "malformed header line" }, { core.http_head("HTTP/1.1 200 OK\r\nX\r\nY: 1", 1, 0, MAX) })
    -- a storm of interim answers ends at the limit
    assert.same({ nil, "headers too large" }, { core.http_head(("HTTP/1.1 100 C\r\n\r\n"):rep(20000), 1, 0, MAX) })
  end)
end)

describe("URLs over cosockets", function()
  -- the split cosocket.lua made with patterns before it kept the last authority
  local function reference(url)
    local scheme, rest = url:match("^(https?)://(.*)$")
    if not scheme then return nil end
    local authority, target = rest:match("^([^/?#]*)(.*)$")
    if target == "" then target = "/" end
    local host, port = authority:match("^%[(.+)%]:?(%d*)$")
    if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
    if not host then return nil end
    port = tonumber(port) or (scheme == "https" and 443 or 80)
    return scheme, host, port, target, authority
  end

  it("splits every URL as the patterns did, whatever came before", function()
    local urls = { "http://127.0.0.1:8080/v2/users/x", "http://127.0.0.1:8080/v2/users/y?a=1",
      "http://127.0.0.1:80800/v2", "http://127.0.0.1:8080?x=/y", "http://127.0.0.1:8080#f/g",
      "http://127.0.0.1:8080", "http://127.0.0.1:8080/", "https://api.example.test/v2/auth/token",
      "https://api.example.test:8443/v2", "https://[::1]:8443/v2/x", "https://[::1]/x", "http://h?q#f",
      "http://user:pw@h:1/x", "http://:8/x", "http:///x", "ftp://h/x", "HTTP://h/x", "http//h/x", "",
      "https://api.example.test", "https://api.example.test.evil/x", "http://h:1/a/b?c=d&e=f#g" }
    for _, first in ipairs(urls) do
      for _, url in ipairs(urls) do
        cosocket.parse_url(first)
        local want = { reference(url) }
        local got = { cosocket.parse_url(url) }
        got[6] = nil -- the authority's table (pool name)
        assert.same(want, got, first .. " then " .. url)
      end
    end
  end)
end)
