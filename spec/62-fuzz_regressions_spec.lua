-- The fuzz corpus, checked by make test: every committed seed of the Lua fuzz targets
-- (fuzz/corpus/lua_<name>/) replayed through the same target script (fuzz/lua/<name>.lua)
-- that make fuzz runs under libFuzzer, against the normal build; and each crash the
-- fuzzers found, replayed through the public Lua API. (The C targets' seeds,
-- fuzz/corpus/engine_fuzz and parsers_fuzz, are replayed by make fuzz only.)
local hypatos = require "hypatos"

package.path = "fuzz/lua/lib/?.lua;" .. package.path

--- Files of a directory, sorted (empty when it does not exist).
local function files(dir)
  local out = {}
  local p = io.popen("ls -1 '" .. dir .. "' 2>/dev/null")
  for name in p:lines() do out[#out + 1] = name end
  p:close()
  table.sort(out)
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  return data
end

describe("fuzz corpus", function()
  local targets = {}
  for _, name in ipairs(files("fuzz/lua")) do
    local target = name:match("^(.+)%.lua$")
    if target then targets[#targets + 1] = target end
  end

  it("has a target script and seeds for every Lua target", function()
    assert.same({ "call", "decode", "encode", "filename", "http", "json" }, targets)
    for _, target in ipairs(targets) do
      assert.is_true(#files("fuzz/corpus/lua_" .. target) > 0, target .. " has no seeds")
    end
  end)

  for _, target in ipairs(targets) do
    it("replays every seed of lua_" .. target, function()
      local run = dofile("fuzz/lua/" .. target .. ".lua")
      local dir = "fuzz/corpus/lua_" .. target
      for _, name in ipairs(files(dir)) do
        local ok, err = pcall(run, read(dir .. "/" .. name))
        assert(ok, ("%s/%s: %s"):format(dir, name, tostring(err)))
      end
    end)
  end
end)

describe("fuzz regressions", function()
  -- lua_http: the cosocket HTTP reader read Content-Length with tonumber(): "1.5" raised
  -- "number has no integer representation" in Lua 5.4, "-1" gave an empty body, "0x2"
  -- read 2 bytes. Anything but 1*DIGIT now fails the attempt as a receive failure.
  describe("cosocket Content-Length", function()
    local run = dofile("fuzz/lua/http.lua")
    local function input(cl, body)
      return "\0\0\255HTTP/1.1 200 OK\r\nContent-Length: " .. cl .. "\r\n\r\n" .. body
    end

    it("refuses values that are not digits, never raising", function()
      for _, cl in ipairs { "1.5", "-1", "0x2", "abc", "2, 2", " ", "1e3" } do
        assert(pcall(run, input(cl, "{}")))
      end
    end)

    it("fails the attempt with recv: malformed Content-Length", function()
      local stream = input("1.5", "{}"):sub(4)
      local sock = {}
      function sock.settimeouts() end
      function sock.connect() return true end
      function sock.getreusedtimes() return 0 end
      function sock.send(_, d) return #d end
      function sock.close() return true end
      function sock.setkeepalive() return true end
      function sock.receiveany()
        if stream == "" then return nil, "closed" end
        local d = stream
        stream = ""
        return d
      end
      local fake = { now = function() return 1000 end, update_time = function() end,
        worker = { pid = function() return 1 end },
        socket = { tcp = function() return sock end } }
      local chunk = assert(loadfile("lua/hypatos/cosocket.lua", "t", setmetatable({ ngx = fake }, { __index = _G })))
      local res = chunk().perform({ method = "GET", url = "http://127.0.0.1:1/v2/x", headers = {}, timeout = 5 })
      assert.same({ error = "recv", sent = true, message = "receive failed: malformed Content-Length",
        elapsed = 0 }, res)
    end)
  end)

  -- lua_filename: safe() cut a long name at 255 bytes after stripping trailing dots and
  -- spaces, so the cut could end in one (and safe(safe(x)) ~= safe(x)).
  it("filename.safe leaves no trailing dot or space after the cut", function()
    local filename = require "hypatos.filename"
    local s = filename.safe(("a"):rep(254) .. " b" .. ("c"):rep(10))
    assert.equal(("a"):rep(254), s)
    assert.equal(s, filename.safe(s))
    assert.equal(("a"):rep(253), filename.safe(("a"):rep(253) .. ". .x"))
  end)

  -- a NUL in the method or path cut it short ("/users\0/../admin" asked for /users):
  -- found by reading the binding while writing lua_call, which now tries both
  it("refuses a NUL in the method or the path", function()
    local c = hypatos.new { client_id = "id", client_secret = "secret", base_url = "https://api.example.test/v2" }
    local ok, err = pcall(c.prepare, c, "GET", "/users\0/../admin")
    assert.is_false(ok)
    assert.matches("hypatos.request: path must not contain a NUL byte", err, 1, true)
    ok, err = pcall(c.prepare, c, "GE\0T", "/users")
    assert.is_false(ok)
    assert.matches("hypatos.request: method must not contain a NUL byte", err, 1, true)
    ok, err = pcall(c.request, c, "GET", "/users\0x")
    assert.is_false(ok)
    assert.matches("hypatos.request: path must not contain a NUL byte", err, 1, true)
    c:close()
  end)

  -- engine_fuzz / parsers_fuzz: an answer without any header made the rate-limit reader and
  -- the header list compute NULL + 0 (undefined behaviour, UBSan). Through the public API:
  -- answers with no headers at all.
  it("takes answers without headers", function()
    local c = hypatos.new { client_id = "id", client_secret = "secret", base_url = "https://api.example.test/v2",
      random = function() return 0.5 end }
    local call = assert(c:prepare("GET", "/users"))
    local act = call:step(1000)
    assert.equal("send", act.type)
    act = call:step(1000, { status = 200, body = '{"access_token":"t","token_type":"Bearer","expires_in":60}' })
    assert.equal("send", act.type)
    act = call:step(1000, { status = 200, body = '{"id":"u1"}' })
    assert.equal("done", act.type)
    assert.same({}, act.meta.headers)
    assert.is_nil(c:rate_limit())
    c:close()
  end)
end)

describe("fuzz regressions: the one-pass decoder against cjson (lua_decode)", function()
  local dec = require("hypatos").json.decode
  it("refuses a NUL inside a string and text after a NUL, where cjson stopped as at a C string's end", function()
    assert.is_nil((dec('"ju\0st"')))
    local v, err = dec('"just"\0\0,"x"')
    assert.is_nil(v)
    assert.equal("Expected the end but found invalid token at character 7", err)
  end)
  it("refuses the numbers cjson 2.1.0 read leniently: 15.e3, +00", function()
    assert.equal("Expected value but found invalid number at character 7", select(2, dec([[{"f": 15.e3}]])))
    assert.equal("Expected value but found invalid token at character 1", select(2, dec("+00")))
  end)
end)

