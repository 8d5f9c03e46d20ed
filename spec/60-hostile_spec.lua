-- spec/60-hostile_spec.lua — the client against a server that misbehaves on purpose
-- (spec/fixtures/hostile_server.lua, a raw-socket server on 127.0.0.1 started for this file and
-- stopped by its pid): floods, broken framing, slow and silent answers, redirects, 100-continue
-- storms, odd tokens and numbers, echoed secrets. Every case checks the error kind (or the
-- value) and that the call ends in bounded time.
local helpers = require "spec.helpers"
local hostile = require "spec.fixtures.hostile"
local hypatos = require "hypatos"
local socket = require "socket"

local SECRET = "hostile-secret-9f8e7d6c5b4a"

describe("against a hostile server", function()
  local srv, dir, cleanup
  lazy_setup(function()
    srv = assert(hostile.start())
    dir, cleanup = helpers.tmpdir()
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if cleanup then cleanup() end
  end)

  --- A client for a scenario (see the server's banner); no retries unless asked for.
  local function client(scenario, extra)
    local o = { client_id = "hostile-id", client_secret = SECRET, base_url = srv:url(scenario),
      max_retries = 0, timeout = 5, backoff_base = 0.05 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return hypatos.new(o)
  end

  --- Runs fn; returns its two results and the seconds it took.
  local function timed(fn)
    local t0 = socket.gettime()
    local a, b = fn()
    return a, b, socket.gettime() - t0
  end

  --- Asserts that a GET on the scenario fails with kind within the given seconds; returns err.
  local function fails(kind, within, scenario, copts, ropts)
    local c = client(scenario, copts)
    local v, err, took = timed(function() return c:request("GET", "/x", ropts) end)
    assert.is_nil(v)
    assert.equal(kind, err.kind, tostring(err))
    assert.is_true(took < within, ("%s took %.2f s"):format(scenario, took))
    return err, c
  end

  describe("deadline", function()
    it("bounds a download streamed to a file from a server that trickles 3 bytes/s", function()
      local out = dir .. "/trickle.out"
      local c = client("trickle", { deadline = 2, timeout = 60 })
      local v, err, took = timed(function() return c:request("GET", "/x", { output = out }) end)
      assert.is_nil(v)
      assert.equal("timeout", err.kind, tostring(err))
      assert.is_true(took < 4, ("took %.2f s"):format(took))
      assert.is_nil(helpers.read(out)) -- no half download
    end)

    it("bounds a streamed download with a per-call deadline, retries included", function()
      local c = client("trickle", { timeout = 60, max_retries = 3 })
      local v, err, took = timed(function()
        return c:request("GET", "/x", { output = dir .. "/trickle2.out", deadline = 1.5 })
      end)
      assert.is_nil(v)
      assert.equal("timeout", err.kind, tostring(err))
      assert.is_true(took < 3.5, ("took %.2f s"):format(took))
    end)

    it("hands drivers the time left as act.deadline for streamed attempts", function()
      local c = helpers.client({ deadline = 10 })
      local call = assert(c:prepare("GET", "/files/x", { output = dir .. "/x.out" }))
      local act = call:step(1000)
      assert.equal("send", act.type)
      assert.is_true(act.token_request)
      act = call:step(1001, helpers.token_response())
      assert.equal("send", act.type)
      assert.is_true(act.stream)
      assert.near(9, act.deadline, 1e-6)
      call:close()
    end)
  end)

  describe("rate-limit answers with absurd resets", function()
    -- one answer with remaining 0 and a far reset must not stop every later call (attempts = 0)
    local CASES = {
      { "rl/1e300/1", 0.5 },      -- not a number a reset can be: ignored
      { "rl/3600/1", 1.5 },       -- longer than the announced window: clamped to it
      { "rl/ms/1", 1.5 },         -- a Unix time in milliseconds, longer than the window
      { "rl/ms/none", 2.5 },      -- a Unix time in milliseconds: 2 s from now
      { "rl/epoch/none", 2.5 },   -- a Unix time in seconds: 2 s from now
      { "rl/1e300/none", 0.5 },
      { "rl/epochfar/none", 0.5 }, -- a week away: ignored
    }
    for _, case in ipairs(CASES) do
      it("lets the next call through after " .. case[1], function()
        local c = client(case[1])
        local v, meta = c:request("GET", "/x")
        assert.is_table(v, tostring(meta))
        local v2, meta2, took = timed(function() return c:request("GET", "/x") end)
        assert.is_table(v2, tostring(meta2))
        assert.equal(1, meta2.attempts)
        assert.is_true(took < case[2], ("took %.2f s"):format(took))
        local rl = c:rate_limit()
        assert.is_true(rl.reset == nil or rl.reset <= 60, tostring(rl.reset))
      end)
    end

    it("clamps a far reset without a window to the API's longest window (60 s)", function()
      local c = client("rl/3600/none", { max_wait = 5 })
      assert.is_table((c:request("GET", "/x")))
      local v, err, took = timed(function() return c:request("GET", "/x") end)
      assert.is_nil(v)
      assert.equal("rate_limited", err.kind)
      assert.equal(0, err.attempts)
      assert.is_true(err.retry_after <= 60.01 and err.retry_after > 59, tostring(err.retry_after))
      assert.is_true(took < 0.5)
    end)

    it("sends again once the clamped state's time has passed (fake clock)", function()
      local c = helpers.client({ max_wait = 5 })
      local far = helpers.json(200, { ok = true }, { ["x-ratelimit-remaining"] = "0", ["x-ratelimit-reset"] = "3600" })
      helpers.call(c, "GET", "/u", nil, { helpers.token_response(), far }, 1000)
      local rec = helpers.call(c, "GET", "/u", nil, {}, 1001)
      assert.equal("rate_limited", rec.result.error.kind)
      rec = helpers.call(c, "GET", "/u", nil, { helpers.json(200, {}) }, 1061)
      assert.equal("done", rec.result.type)
      assert.same({}, rec.sleeps)
    end)

    it("waits at most the window on a 429 with a far reset", function()
      local c = client("rl/3600/1/429", { max_retries = 1 })
      local v, err, took = timed(function() return c:request("GET", "/x") end)
      assert.is_nil(v)
      assert.equal("rate_limited", err.kind)
      assert.equal(2, err.attempts)
      assert.is_true(err.retry_after <= 1, tostring(err.retry_after))
      assert.is_true(took < 3, ("took %.2f s"):format(took))
    end)

    it("clamps absurd counts and Retry-After values (no undefined casts)", function()
      local c = client("rlhuge")
      local v, meta = c:request("GET", "/x")
      assert.is_table(v, tostring(meta))
      local rl = c:rate_limit()
      assert.is_true(rl.limit <= 1e9 and rl.remaining <= 1e9)
      assert.is_true(math.type(rl.limit) == "integer")
      local v2, meta2, took = timed(function() return c:request("GET", "/x") end)
      assert.is_table(v2, tostring(meta2))
      assert.is_true(took < 0.5)
      local err = fails("http", 1, "retryafter/1e300", { max_retries = 1 })
      assert.equal(86400, err.retry_after)
      err = fails("http", 1, "retryafter/1e999", { max_retries = 1, backoff_base = 0.01 })
      assert.is_nil(err.retry_after)
    end)
  end)

  describe("answers held in memory", function()
    it("caps a gzip answer by its inflated size (default 64 MiB)", function()
      assert(os.execute("head -c 83886080 /dev/zero | gzip -1 > " .. srv.dir .. "/bomb.gz"))
      local err = fails("decode", 10, "gzip/bomb")
      assert.equal("answer larger than max_body_size (67108864 bytes)", err.message)
      assert.is_false(err.retryable)
      assert.equal(1, err.attempts)
    end)

    it("caps answers at max_body_size, with or without Content-Length", function()
      local err = fails("decode", 3, "big/5000", { max_body_size = 1000 })
      assert.equal("answer larger than max_body_size (1000 bytes)", err.message)
      fails("decode", 3, "bigchunked/5000", { max_body_size = 1000 }, { raw = true })
      assert(os.execute("head -c 2000000 /dev/zero | gzip -1 > " .. srv.dir .. "/small.gz"))
      fails("decode", 3, "gzip/small", { max_body_size = 1000000, max_retries = 2 })
      local v, meta = client("big/1000", { max_body_size = 1000 }):request("GET", "/x", { raw = true })
      assert.equal(1000, #v, tostring(meta))
    end)

    it("does not cap downloads streamed to a file", function()
      local out = dir .. "/big.out"
      local v, meta = client("big/5000", { max_body_size = 1000 }):request("GET", "/x", { output = out })
      assert.is_true(v, tostring(meta))
      assert.equal(5000, #helpers.read(out))
    end)

    it("caps the token answer too", function()
      local c = client("ok", { max_body_size = 10 })
      local v, err = c:request("GET", "/x")
      assert.is_nil(v)
      assert.equal("decode", err.kind)
      assert.equal("token request failed: answer larger than max_body_size (10 bytes)", err.message)
    end)

    it("hands drivers the cap as act.max_body_size", function()
      local c = helpers.client({ max_body_size = 12345 })
      local call = assert(c:prepare("GET", "/x"))
      local act = call:step(1000)
      assert.equal(12345, act.max_body_size)
      act = call:step(1000, helpers.token_response())
      assert.equal(12345, act.max_body_size)
      act = call:step(1000, { error = "too_large", message = "answer larger than max_body_size (12345 bytes)" })
      assert.equal("fail", act.type)
      assert.equal("decode", act.error.kind)
      assert.is_false(act.error.retryable)
      call:close()
    end)
  end)

  describe("odd expires_in in token answers", function()
    it("uses a token that lives 1e-300 s once instead of fetching tokens for ever (fake clock)", function()
      local c = helpers.client()
      local rec = helpers.call(c, "GET", "/u", nil, { helpers.token_response({ expires_in = 1e-300 }),
        helpers.json(200, {}) })
      assert.equal("done", rec.result.type)
    end)

    it("keeps tostring(token) and expires_in sane for expires_in = 1e300", function()
      local c = helpers.client()
      local call = assert(c:prepare_token())
      assert.equal("send", call:step(1000).type)
      local act = call:step(1000, helpers.token_response({ expires_in = 1e300 }))
      assert.equal("done", act.type)
      assert.is_true(act.value.expires_in <= 366 * 86400, tostring(act.value.expires_in))
      assert.equal('hypatos.Token(scope="users.read companies.read", expires_in=31536000, access_token=<redacted>)',
        tostring(act.value))
      act.value.expires_in = 1e300 -- a table the caller may change
      assert.matches("expires_in=", tostring(act.value))
    end)

    for _, text in ipairs { "1e300", "1e-300", "-5", "0", "1.5", "null", "str", "[1]", "-1e300" } do
      it("gets through a token with expires_in = " .. text, function()
        local c = client("exp/" .. text)
        local v, meta, took = timed(function() return c:request("GET", "/x") end)
        assert.is_table(v, tostring(meta))
        assert.is_true(took < 2)
        local tok = assert(c:token())
        assert.is_true(tok.expires_in > 0 and tok.expires_in <= 366 * 86400, tostring(tok.expires_in))
        assert.matches("^hypatos%.Token%(scope=\"users%.read\", expires_in=%d+, access_token=<redacted>%)$",
          tostring(tok))
      end)
    end
  end)

  describe("tokens that cannot go into a header (issue 7.14)", function()
    local cases = {
      { "a NUL", "tok\0en", "has an access_token with a control or non-ASCII byte" },
      { "CR/LF", "tok\r\nX-Injected: 1", "has an access_token with a control or non-ASCII byte" },
      { "a tab", "tok\ten", "has an access_token with a control or non-ASCII byte" },
      { "a byte above ASCII", "tok\195\169en", "has an access_token with a control or non-ASCII byte" },
      { "1 MiB", string.rep("t", 1024 * 1024), "has an access_token longer than 16384 bytes" },
      { "nothing", "", "has no access_token" },
    }
    for _, case in ipairs(cases) do
      it("refuses a token with " .. case[1] .. " at the token answer, naming the problem, not the token", function()
        local c = helpers.client({ max_retries = 0 })
        local rec = helpers.call(c, "GET", "/u", nil, { helpers.token_response({ access_token = case[2] }) })
        assert.equal(1, #rec.sends) -- nothing sent with it
        assert.equal("fail", rec.result.type)
        local err = rec.result.error
        assert.equal("auth", err.kind)
        assert.equal("token response " .. case[3], err.message)
        if #case[2] > 0 then assert.is_nil(tostring(err):find(case[2], 1, true)) end
      end)
    end

    it("takes no such token from a token cache either", function()
      local c = helpers.client({ max_retries = 0, token_cache = { set = function() end,
        get = function() return { access_token = "bad\ntoken", expires_at = 1e6, lifetime = 3600 } end } })
      local rec = helpers.call(c, "GET", "/u", nil, { helpers.token_response(), helpers.json(200, {}) })
      assert.equal("done", rec.result.type)
      assert.is_true(rec.sends[1].token_request)
      assert.equal("Bearer tok-1", rec.sends[2].headers.Authorization)
    end)
  end)

  describe("headers handed in by a driver", function()
    it("drops a header whose value or name holds a NUL instead of shifting the others (issue 7.8)", function()
      local c = helpers.client()
      local rec = helpers.call(c, "GET", "/u", nil, { helpers.token_response(),
        helpers.json(200, {}, { ["x-a"] = "1\0x-injected\0evil", ["x\0b"] = "2", ["x-c"] = "3" }) })
      assert.equal("done", rec.result.type)
      local h = rec.result.meta.headers
      assert.is_nil(h["x-a"])
      assert.is_nil(h["x-injected"])
      assert.is_nil(h["x\0b"])
      assert.is_nil(h.x)
      assert.equal("3", h["x-c"])
      assert.equal("application/json", h["content-type"])
    end)
  end)

  describe("many repeated response headers", function()
    --- CPU seconds to build meta.headers of an answer with n lines of one name (best of 3).
    local function join_cost(n)
      local best = math.huge
      for _ = 1, 3 do
        local v, meta = client("flood/" .. n .. "/same"):request("GET", "/x")
        assert.is_table(v, tostring(meta))
        local t0 = os.clock()
        local h = meta.headers
        best = math.min(best, os.clock() - t0)
        assert.equal(n * 18 - 2, #h["x-same"]) -- n values of 16 bytes joined by ", "
      end
      return best
    end

    it("joins them in linear time, not quadratic (issue 7.9)", function()
      -- a scaling ratio in one process, not a time limit: 4× the lines may cost about 4× (16× when
      -- quadratic: 37k lines took 0.36 s before the fix); libcurl takes at most 300 KiB of headers
      local small, large = join_cost(2500), join_cost(10000)
      assert.is_true(large < math.max(small, 0.0005) * 10,
        ("2500 lines: %.5f s, 10000 lines: %.5f s"):format(small, large))
    end)
  end)

  describe("secrets echoed by the server", function()
    local TOKEN = "hostile-token-0123456789abcdefABCDEF"
    local BASIC = "aG9zdGlsZS1pZDpob3N0aWxlLXNlY3JldC05ZjhlN2Q2YzViNGE=" -- base64("hostile-id:" .. SECRET)

    --- Every string in v (keys too, nested tables, tostring of an error).
    local function strings(v, out, seen)
      out, seen = out or {}, seen or {}
      if type(v) == "string" then
        out[#out + 1] = v
      elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        if hypatos.is_error(v) then out[#out + 1] = tostring(v) end
        for k, x in pairs(v) do
          strings(k, out, seen)
          strings(x, out, seen)
        end
      end
      return out
    end

    local function assert_clean(v, ...)
      local found = 0
      for _, s in ipairs(strings(v)) do
        for _, secret in ipairs { ... } do
          assert.is_nil(s:find(secret, 1, true), ("%q found in %q"):format(secret, s))
        end
        if s:find("[redacted]", 1, true) then found = found + 1 end
      end
      assert.is_true(found > 0, "nothing was redacted")
    end

    it("scrubs the bearer token from an error that echoes the request", function()
      local err = fails("http", 3, "echo")
      assert.equal(400, err.status)
      assert_clean(err, TOKEN)
      assert.equal("Bearer [redacted]", err.detail)
      assert.equal("Bearer [redacted]", err.headers["x-echo"])
      assert.equal("key", err.body["Bearer [redacted]"])
      assert.equal("hypatos: http 400: Bad request: Bearer [redacted]: Bearer [redacted] (GET " .. srv:url("echo") ..
        "/x)", tostring(err))
    end)

    it("scrubs the client secret and the Basic credentials from a token error", function()
      local err = fails("auth", 3, "echotok")
      assert.equal(401, err.status)
      assert_clean(err, SECRET, BASIC)
      assert.equal("hostile-id:[redacted]", err.body.credentials)
      assert.equal("[redacted]", err.body.secret)
    end)

    it("scrubs hook data", function()
      local seen = {}
      local function hook(info) seen[#seen + 1] = info end
      local c = client("echo", { on_request = hook, on_response = hook })
      assert.is_nil((c:request("GET", "/x")))
      assert.equal(4, #seen)
      assert_clean(seen, TOKEN)
      seen = {}
      c = client("echotok", { on_request = hook, on_response = hook })
      assert.is_nil((c:request("GET", "/x")))
      assert_clean(seen, SECRET, BASIC)
    end)

    it("scrubs errors whatever their source (a driver's failure text)", function()
      local c = helpers.client({ client_secret = SECRET, max_retries = 0 })
      local call = assert(c:prepare("GET", "/x"))
      call:step(1000)
      call:step(1000, helpers.token_response({ access_token = TOKEN }))
      local act = call:step(1000, { error = "recv", sent = true,
        message = "connection reset after Bearer " .. TOKEN .. " / " .. SECRET })
      assert.equal("fail", act.type)
      assert.equal("connection reset after Bearer [redacted] / [redacted]", act.error.message)
    end)
  end)

  describe("proxies and loopback", function()
    it("never sends loopback traffic to the proxy option", function()
      srv:reset()
      local c = client("ok", { proxy = "http://127.0.0.1:" .. srv.port })
      local v, meta = c:request("GET", "/x")
      assert.is_table(v, tostring(meta))
      assert.is_nil(v.proxied)
      for _, line in ipairs(srv:requests()) do assert.is_nil(line:find("http://", 1, true), line) end
    end)

    for _, var in ipairs { "http_proxy", "ALL_PROXY", "all_proxy" } do
      it("never sends loopback traffic to a proxy from " .. var, function()
        srv:reset()
        local code = ([[local c = require("hypatos").new{ client_id = "hostile-id", client_secret = %q,
          base_url = %q, max_retries = 0 }
          local v, meta = c:request("GET", "/x") print(v and (v.proxied and "proxied" or "direct") or tostring(meta))]])
          :format(SECRET, srv:url("ok"))
        local p = io.popen(("env -u http_proxy -u HTTP_PROXY -u ALL_PROXY -u all_proxy -u no_proxy -u NO_PROXY "
          .. "%s=http://127.0.0.1:%d LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/5.4/?.so;;' "
          .. "lua5.4 -e '%s' 2>&1"):format(var, srv.port, code))
        local out = p:read("a")
        p:close()
        assert.equal("direct\n", out)
        for _, line in ipairs(srv:requests()) do assert.is_nil(line:find("http://", 1, true), line) end
      end)
    end
  end)

  describe("kept-alive connections, libcurl driver (issue 16 §6)", function()
    --- GET /a and GET /b on one client of the scenario, `pause` seconds apart → both results.
    local function seq(scenario, pause)
      local c = client("ka/" .. scenario)
      local a, ea = c:request("GET", "/a")
      if pause then socket.sleep(pause) end
      local b, eb = c:request("GET", "/b")
      c:close()
      assert.is_table(a, tostring(ea))
      assert.is_table(b, tostring(eb))
      return a, b
    end

    --- The answers a, b of a scenario's /a and /b: each its own, and on one connection (`same`)
    -- or on two.
    local function answered(a, b, scenario, same)
      assert.equal("/ka/" .. scenario .. "/a", a.path)
      assert.is_nil(b.stray, "the next request got the stray answer")
      assert.equal("/ka/" .. scenario .. "/b", b.path)
      if same then assert.equal(a.conn, b.conn) else assert.are_not.equal(a.conn, b.conn) end
    end

    it("reuses a connection after a complete answer (the control)", function()
      local a, b = seq("plain")
      answered(a, b, "plain", true)
    end)

    it("never hands a stray second answer to the next request", function()
      -- the stray answer arrives 20 ms after the first; libcurl finds the idle connection
      -- readable when it is about to reuse it, and opens another
      local a, b = seq("stray", 0.1)
      answered(a, b, "stray", false)
    end)

    --- client:map over {"/a", "/b"}, one task at a time, the second `pause` seconds after the
    -- first ended (on the multi handle: the first task's connection waits in its cache) → both.
    local function map_seq(scenario, pause)
      local c = client("ka/" .. scenario)
      local results, errors = c:map({ "/a", "/b" }, function(path, i)
        if i == 2 and pause then socket.sleep(pause) end
        return c:request("GET", path)
      end, { concurrency = 1 })
      c:close()
      assert.is_table(results[1], tostring(errors[1]))
      assert.is_table(results[2], tostring(errors[2]))
      return results[1], results[2]
    end

    it("reuses a connection between client:map's tasks (the control)", function()
      local a, b = map_seq("plain", 0.1)
      answered(a, b, "plain", true)
    end)

    it("never hands a stray second answer to client:map's next task", function()
      local a, b = map_seq("stray", 0.1)
      answered(a, b, "stray", false)
    end)

    it("reconnects when the server closed client:map's idle connection", function()
      local a, b = map_seq("close", 0.1)
      answered(a, b, "close", false)
    end)
  end)

  describe("framing and floods (these already held)", function()
    it("answers a sane request (the server works)", function()
      local v, meta = client("ok"):request("GET", "/x")
      assert.is_table(v, tostring(meta))
      assert.is_true(v.ok)
    end)

    it("fails a flood of header lines as network, quickly", function()
      fails("network", 3, "flood/50000/distinct")
      fails("network", 3, "flood/50000/same")
    end)

    it("fails a 1 MiB header as network", function()
      fails("network", 3, "hugeheader")
    end)

    it("fails bad Content-Length values", function()
      fails("network", 3, "badlen/neg")
      fails("network", 3, "badlen/abc")
      fails("network", 3, "badlen/short")
      -- two different lengths: libcurl takes one; the body is then not the JSON it claims to be
      fails("decode", 3, "badlen/dup")
    end)

    it("reports a server that stalls inside a chunk as a timeout (issue 16 §10)", function()
      fails("timeout", 3, "chunkstall", { timeout = 1 })
    end)

    it("fails chunked garbage as network", function()
      for _, v in ipairs { "size", "huge", "noterm", "neg" } do fails("network", 3, "chunk/" .. v) end
    end)

    it("times out on headers that trickle and on a silent server", function()
      local err = fails("timeout", 3, "slowhead", { timeout = 1 })
      assert.is_true(err.retryable)
      fails("timeout", 3, "silent", { timeout = 1 })
    end)

    it("never follows a redirect, to this host or another", function()
      srv:reset()
      local err = fails("http", 3, "redirect/local")
      assert.equal(302, err.status)
      err = fails("http", 3, "redirect/ext")
      assert.equal(302, err.status)
      for _, line in ipairs(srv:requests()) do assert.is_nil(line:find("leaked", 1, true), line) end
    end)

    it("gets through a storm of 100 Continue answers, or fails it as network", function()
      local path = dir .. "/upload.bin"
      helpers.write(path, string.rep("z", 200000))
      local v, err, took = timed(function()
        return client("continue/1000"):request("POST", "/x", { body_file = path })
      end)
      assert.is_table(v, tostring(err))
      assert.equal("file-1", v.id)
      assert.is_true(took < 3)
      v, err, took = timed(function()
        return client("continue/100000"):request("POST", "/x", { body_file = path })
      end)
      assert.is_nil(v)
      assert.equal("network", err.kind)
      assert.is_false(err.retryable) -- an upload that may have reached the server
      assert.is_true(took < 3)
    end)
  end)
end)

describe("against a hostile server, over nginx cosockets", function()
  local ngx_app = require "spec.fixtures.ngx_app"
  local cjson = require "cjson"
  local srv, app

  local LOCATIONS = [[
        location = /call {
            content_by_lua_block {
                local args = ngx.req.get_uri_args()
                local c = require("hypatos").new{ client_id = "hostile-id", client_secret = "]] .. SECRET .. [[",
                  base_url = args.base, max_retries = tonumber(args.retries or 0), timeout = tonumber(args.timeout or 5),
                  deadline = tonumber(args.deadline), max_body_size = tonumber(args.max) }
                local t0 = ngx.now()
                local v, err = c:request("GET", "/x", { output = args.output, raw = args.raw == "1" or nil })
                ngx.say(require("cjson").encode({ ok = v ~= nil, kind = err and err.kind or nil,
                  message = err and err.message or nil, attempts = err and err.attempts or nil,
                  took = ngx.now() - t0, len = type(v) == "string" and #v or nil,
                  md5 = type(v) == "string" and ngx.md5(v) or nil, pid = ngx.worker.pid() }))
            }
        }
        location = /seq {
            content_by_lua_block {
                -- two calls on one client, with CPU work between them that never yields (nginx's
                -- event loop does not run): GET /a, busy for ?busy= seconds, GET /b
                -- ?peek=0: the pool rule without looking at the socket (waiting for a turn)
                local args = ngx.req.get_uri_args()
                local cosocket = require "hypatos.cosocket"
                local peek, stale0 = cosocket.PEEK, cosocket.stale_count or 0
                if args.peek == "0" then cosocket.PEEK = false end
                local c = require("hypatos").new{ client_id = "hostile-id", client_secret = "]] .. SECRET .. [[",
                  base_url = args.base, max_retries = 0, timeout = 5 }
                local a, ea = c:request("GET", "/a")
                ngx.update_time()
                local t = ngx.now() + tonumber(args.busy or 0)
                repeat ngx.update_time() until ngx.now() >= t
                local b, eb = c:request("GET", "/b") -- eb: meta when b is a value
                cosocket.PEEK = peek
                ngx.say(require("cjson").encode({ a = a or tostring(ea), b = b or tostring(eb),
                  b_attempts = b and eb.attempts, stale = (cosocket.stale_count or 0) - stale0, peek = cosocket.PEEK }))
            }
        }
]]

  lazy_setup(function()
    srv = assert(hostile.start())
    app = assert(ngx_app.start { workers = 1, locations = LOCATIONS })
  end)
  lazy_teardown(function()
    if app then app:stop() end
    if srv then srv:stop() end
  end)

  local function call(query)
    local parts = {}
    for k, v in pairs(query) do parts[#parts + 1] = k .. "=" .. v end
    local status, body = app:get("/call?" .. table.concat(parts, "&"), 30)
    assert.equal(200, status, body .. app:error_log():sub(-2000))
    return cjson.decode(body)
  end

  it("bounds a streamed download by the deadline", function()
    local dir, cleanup = helpers.tmpdir()
    local r = call { base = srv:url("trickle"), deadline = 2, output = dir .. "/t.out" }
    cleanup()
    assert.equal("timeout", r.kind, r.message)
    assert.is_true(r.took < 4, ("took %.2f s"):format(r.took))
  end)

  it("caps answers held in memory at max_body_size, not downloads to a file", function()
    local r = call { base = srv:url("big", 5000), max = 1000 }
    assert.equal("decode", r.kind, r.message)
    assert.equal("answer larger than max_body_size (1000 bytes)", r.message)
    assert.equal(1, r.attempts)
    r = call { base = srv:url("bigchunked", 5000), max = 1000, raw = 1 }
    assert.equal("decode", r.kind, r.message)
    r = call { base = srv:url("big", 1000), max = 1000, raw = 1 }
    assert.is_true(r.ok, r.message)
    assert.equal(1000, r.len)
    local dir, cleanup = helpers.tmpdir()
    r = call { base = srv:url("big", 5000), max = 1000, output = dir .. "/b.out" }
    local got = helpers.read(dir .. "/b.out")
    cleanup()
    assert.is_true(r.ok, r.message)
    assert.equal(5000, #got)
  end)

  it("fails floods and broken framing as network, quickly", function()
    for _, scenario in ipairs { "flood/50000/distinct", "flood/50000/same", "hugeheader", "badlen/short",
        "chunk/size", "chunk/huge", "chunk/noterm" } do
      local r = call { base = srv:url(scenario) }
      assert.equal("network", r.kind, scenario .. ": " .. tostring(r.message))
      assert.is_true(r.took < 3, ("%s took %.2f s"):format(scenario, r.took))
    end
  end)

  it("times out on headers that trickle (nginx restarts its timer with every byte)", function()
    local r = call { base = srv:url("slowhead"), timeout = 1 }
    assert.equal("timeout", r.kind, r.message)
    assert.is_true(r.took < 3, ("took %.2f s"):format(r.took))
  end)

  describe("kept-alive connections (issue 16 §6)", function()
    local function seq(scenario, busy, peek)
      local status, body = app:get(("/seq?base=%s&busy=%s&peek=%s"):format(srv:url("ka", scenario), busy or 0,
        peek == false and 0 or 1), 30)
      assert.equal(200, status, body .. app:error_log():sub(-2000))
      local r = cjson.decode(body)
      assert.is_table(r.a, tostring(r.a))
      assert.is_table(r.b, tostring(r.b))
      return r
    end

    it("reuses a connection after a complete answer (the control)", function()
      local r = seq("plain")
      assert.equal("/ka/plain/a", r.a.path)
      assert.equal("/ka/plain/b", r.b.path)
      assert.equal(r.a.conn, r.b.conn)
    end)

    it("looks at a pooled connection's socket before reuse (ngx_lua shows its descriptor)", function()
      local r = seq("plain")
      assert.is_true(r.peek, "core.cosocket_peeks() is false inside this nginx: the slower pool rule is in use")
      assert.equal(0, r.stale)
    end)

    it("never hands a stray second answer to the next request, even with no event-loop turn between", function()
      local r = seq("stray", 0.1) -- the stray answer arrives 20 ms after the first, during the busy 100 ms
      assert.equal("/ka/stray/a", r.a.path)
      assert.is_nil(r.b.stray, "the next request got the stray answer")
      assert.equal("/ka/stray/b", r.b.path)
      assert.are_not.equal(r.a.conn, r.b.conn)
      assert.equal(1, r.stale) -- seen on the socket and closed
    end)

    it("never hands a stray second answer to the next request without looking at the socket either", function()
      local r = seq("stray", 0.1, false) -- the fallback: a turn of the event loop (a 1 ms sleep) first
      assert.equal("/ka/stray/a", r.a.path)
      assert.is_nil(r.b.stray, "the next request got the stray answer")
      assert.equal("/ka/stray/b", r.b.path)
      assert.are_not.equal(r.a.conn, r.b.conn)
      assert.equal(0, r.stale)
    end)

    it("sends nothing on a pooled connection the server has closed", function()
      local r = seq("close", 0.1) -- closed 20 ms after the first answer, during the busy 100 ms
      assert.equal("/ka/close/a", r.a.path)
      assert.equal("/ka/close/b", r.b.path)
      assert.are_not.equal(r.a.conn, r.b.conn)
      assert.equal(1, r.stale)
      assert.equal(1, r.b_attempts)
    end)

    it("does not reuse a connection whose answer had both Content-Length and Transfer-Encoding", function()
      local r = seq("clte")
      assert.equal("/ka/clte/a", r.a.path)
      assert.equal("/ka/clte/b", r.b.path)
      assert.are_not.equal(r.a.conn, r.b.conn)
    end)

    it("reads an answer whose last transfer coding is not chunked until the server closes", function()
      local r = call { base = srv:url("tenotlast"), raw = 1 }
      assert.is_true(r.ok, r.message)
      assert.equal(15, r.len) -- "5\r\nhello\r\n0\r\n\r\n" as it came, not "hello"
    end)
  end)

  describe("chunked answers (issue 16 §10)", function()
    it("reports a server that stalls inside a chunk as a timeout, not as a malformed chunk", function()
      local r = call { base = srv:url("chunkstall"), timeout = 1 }
      assert.equal("timeout", r.kind, r.message)
      assert.is_true(r.took < 3, ("took %.2f s"):format(r.took))
    end)

    it("reads an answer of 300000 chunks of 1 byte, every byte in order", function()
      local n = 300000
      local r = call { base = srv:url("tinychunks", n), raw = 1 }
      assert.is_true(r.ok, r.message)
      assert.equal(n, r.len)
      local dir, cleanup = helpers.tmpdir()
      helpers.write(dir .. "/expected", string.rep("0123456789", n // 10))
      local p = io.popen("md5sum < " .. dir .. "/expected")
      local want = p:read("a"):match("%x+")
      p:close()
      cleanup()
      assert.equal(want, r.md5)
    end)
  end)

  describe("download files (issue 16 §8)", function()
    local function mode(path)
      local p = io.popen("stat -c %a " .. path .. " 2>/dev/null")
      local m = p:read("l")
      p:close()
      return m
    end
    local function parts(dir)
      local list = {}
      local p = io.popen("ls -A " .. dir)
      for name in p:lines() do if name:find(".part-", 1, true) then list[#list + 1] = name end end
      p:close()
      return list
    end

    it("writes into a temporary file of mode 0600, removed when the download fails", function()
      local dir, cleanup = helpers.tmpdir()
      local url = ("%s/call?base=%s&deadline=2&output=%s/t.out"):format(app.url, srv:url("trickle"), dir)
      assert(os.execute(("curl -s '%s' > %s/resp &"):format(url, dir)))
      local seen
      for _ = 1, 150 do
        seen = parts(dir)[1]
        if seen then break end
        socket.sleep(0.01)
      end
      local m = seen and mode(dir .. "/" .. seen)
      for _ = 1, 500 do
        if (helpers.read(dir .. "/resp") or "") ~= "" then break end
        socket.sleep(0.01)
      end
      local r = cjson.decode(helpers.read(dir .. "/resp"))
      local left = parts(dir)
      local out = helpers.read(dir .. "/t.out")
      cleanup()
      assert.is_string(seen, "no temporary file seen during the download")
      assert.matches("^t%.out%.part%-", seen)
      assert.equal("600", m)
      assert.equal("timeout", r.kind, r.message)
      assert.same({}, left)
      assert.is_nil(out)
    end)

    it("never writes through a symlink planted where the temporary file would go", function()
      -- before, the name was <output>.part-<worker pid>-<LuaJIT's first math.random(0, 999999)>,
      -- and LuaJIT's generator is unseeded: a fresh worker's first download was predictable
      local fresh = assert(ngx_app.start { workers = 1, locations = LOCATIONS })
      local dir, cleanup = helpers.tmpdir()
      local ok, err = pcall(function()
        local status, body = fresh:get("/call?base=" .. srv:url("ok"))
        assert.equal(200, status, body)
        local pid = math.tointeger(cjson.decode(body).pid)
        local p = io.popen("luajit -e 'io.write(string.format(\"%06d\", math.random(0, 999999)))'")
        local first = p:read("a")
        p:close()
        helpers.write(dir .. "/victim", "victim")
        local planted = ("%s/out.part-%d-%s"):format(dir, pid, first)
        assert(os.execute(("ln -s %s/victim %s"):format(dir, planted)))
        status, body = fresh:get(("/call?base=%s&output=%s/out"):format(srv:url("big", 5000), dir))
        assert.equal(200, status, body)
        local r = cjson.decode(body)
        assert.is_true(r.ok, r.message)
        assert.equal("victim", helpers.read(dir .. "/victim"):sub(1, 20), "the download went through the symlink")
        assert.equal(5000, #helpers.read(dir .. "/out"))
        assert.is_false(os.execute("test -L " .. dir .. "/out") == true, "the output is the planted symlink")
        -- the finished file has the mode any new file of the worker gets: 0666 less its umask
        -- (nginx's daemon sets 0)
        local f = assert(io.open("/proc/" .. pid .. "/status"))
        local umask = f:read("a"):match("\nUmask:%s*(%d+)")
        f:close()
        assert.equal(("%o"):format(0x1b6 & ~tonumber(umask, 8)), mode(dir .. "/out"))
      end)
      fresh:stop()
      cleanup()
      assert(ok, err)
    end)
  end)

  it("lets the next call through after an absurd rate-limit reset", function()
    -- each request makes a new client: the state lives in the answer only; check the wait
    local r = call { base = srv:url("rl", "3600", "1", "429"), retries = 1 }
    assert.equal("rate_limited", r.kind, r.message)
    assert.equal(2, r.attempts)
    assert.is_true(r.took < 3, ("took %.2f s"):format(r.took))
  end)
end)
