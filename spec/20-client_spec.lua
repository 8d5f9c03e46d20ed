-- End to end against the local Hypatos server: tokens, retries, faults, pacing, TLS.
local helpers = require "spec.helpers"
local hypatos = helpers.hypatos

local srv

local function count(stats, route)
  return (stats.by_route or {})[route] or 0
end

describe("client against the local server", function()
  lazy_setup(function() srv = helpers.start_server({ tls = true }) end)
  lazy_teardown(function() if srv then srv:stop() end end)
  before_each(function() srv:reset() end)

  describe("tokens", function()
    it("costs exactly one token request for 1,000 calls", function()
      local c = helpers.server_client(srv)
      for _ = 1, 1000 do
        local page, meta = c.companies:list()
        assert.is_table(page, tostring(meta))
      end
      local stats = srv:stats()
      assert.equal(1, stats.token_requests)
      assert.equal(1001, stats.requests)
      assert.same({ requests = 1000, token_requests = 1 }, c:stats())
    end)

    it("refreshes a token that expires mid-run before using it", function()
      srv:configure({ token_ttl = 2 })
      local c = helpers.server_client(srv)
      local started = helpers.now()
      local calls = 0
      while helpers.now() - started < 2.6 do
        local page, meta = c.companies:list()
        assert.is_table(page, tostring(meta))
        assert.is_table(page.data)
        calls = calls + 1
        require("socket").sleep(0.05)
      end
      local stats = srv:stats()
      assert.equal(2, stats.token_requests)
      assert.is_nil(stats.statuses["401"])
      assert.equal(calls, c:stats().requests)
    end)

    it("replaces a revoked token once and the call succeeds", function()
      local c = helpers.server_client(srv)
      assert(c.companies:list())
      srv:revoke()
      local page, meta = c.companies:list()
      assert.is_table(page)
      assert.equal(2, meta.attempts)
      local stats = srv:stats()
      assert.equal(2, stats.token_requests)
      assert.equal(1, stats.statuses["401"])
    end)

    it("reports refused credentials as auth, without retrying", function()
      local c = hypatos.new({ client_id = "test-client", client_secret = "wrong", base_url = srv.url })
      local v, err = c.users:list()
      assert.is_nil(v)
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert.equal("Invalid client credentials", err.title)
      assert.equal(1, srv:stats().token_requests)
      assert.is_nil(tostring(err):find("wrong", 1, true))
    end)

    it("sends credentials that need form-encoding correctly", function()
      local c = hypatos.new({ client_id = "weird:client id", client_secret = "p@ss:w rd+%", base_url = srv.url })
      local tok = assert(c:token())
      assert.is_string(tok.access_token)
      assert.matches("access_token=<redacted>", tostring(tok))
    end)

    it("gets the scopes it asks for", function()
      local c = helpers.server_client(srv, { scope = { "users.read", "companies.read" } })
      local tok = assert(c:token())
      table.sort(tok.scopes)
      assert.same({ "companies.read", "users.read" }, tok.scopes)
    end)

    it("works when the server omits expires_in", function()
      srv:configure({ omit_expires_in = true })
      local c = helpers.server_client(srv)
      local tok = assert(c:token())
      assert.near(300, tok.expires_in, 1)
    end)

    -- A wrong base_url breaks the token URL derived from it: the error must name
    -- the URL that failed (the token request), not the API call, and say what to check.
    for _, case in ipairs({ { "ending in /v3", "/v3" }, { "without /v2", "" } }) do
      it("names the token URL and base_url when base_url is wrong (" .. case[1] .. ")", function()
        local base = srv.url:gsub("/v2$", "") .. case[2]
        local c = helpers.server_client(srv, { base_url = base, max_retries = 0 })
        local res, err = c:request("GET", "/users")
        assert.is_nil(res)
        assert.equal("auth", err.kind)
        assert.equal("POST", err.method)
        assert.equal(base .. "/auth/token", err.url)
        assert.matches("base_url", err.message, 1, true)
        assert.matches("/v2", err.message, 1, true)
        assert.matches(base .. "/auth/token", tostring(err), 1, true)
        assert.not_matches("/users", tostring(err), 1, true)
        c:close()
      end)
    end

    it("names the token URL when the token request cannot connect", function()
      local c = helpers.server_client(srv, { token_url = "http://127.0.0.1:1/auth/token",
                                             max_retries = 0 })
      local res, err = c:request("GET", "/users")
      assert.is_nil(res)
      assert.equal("http://127.0.0.1:1/auth/token", err.url)
      assert.equal("POST", err.method)
      c:close()
    end)
  end)

  describe("retries", function()
    it("retries a GET after 500, 503 and a dropped connection, and succeeds", function()
      srv:fault({ { method = "GET", path = "/v2/companies", kind = "status", status = 500 },
        { method = "GET", path = "/v2/companies", kind = "status", status = 503 },
        { method = "GET", path = "/v2/companies", kind = "close" } })
      local c = helpers.server_client(srv, { backoff_base = 0.01 })
      local page, meta = c.companies:list()
      assert.is_table(page, tostring(meta))
      assert.is_true(meta.attempts >= 3)
    end)

    it("retries a 503 after the backoff, not after the quota reset it carries", function()
      -- like the real API: a 60 s window, so every answer says the quota resets in up to 60 s
      srv:configure({ window = 60, quota = 100000 })
      srv:fault({ method = "GET", path = "/v2/companies", kind = "status", status = 503, count = 2,
        headers = { ["x-ratelimit-reset"] = 50 } })
      local c = helpers.server_client(srv)
      assert(c:token())
      local started = helpers.now()
      local page, meta = c.companies:list()
      local took = helpers.now() - started
      assert.is_table(page, tostring(meta))
      assert.equal(3, meta.attempts)
      assert.is_true(took < 5, ("took %.1f s"):format(took))
    end)

    it("gets the token after a 503 from the token endpoint without waiting for the quota reset", function()
      srv:configure({ window = 60, quota = 100000 })
      srv:fault({ path = "/v2/auth/token", kind = "status", status = 503 })
      local c = helpers.server_client(srv)
      local started = helpers.now()
      local tok, err = c:token()
      assert.is_table(tok, tostring(err))
      assert.is_true(helpers.now() - started < 5)
      assert.equal(2, srv:stats().token_requests)
    end)

    it("retries a GET whose body is cut off mid-way", function()
      srv:fault({ method = "GET", path = "/v2/users", kind = "close_mid_body" })
      local c = helpers.server_client(srv, { backoff_base = 0.01 })
      local page, meta = c.users:list({ limit = 50 })
      assert.is_table(page, tostring(meta))
      assert.equal(50, #page.data)
      assert.equal(2, meta.attempts)
    end)

    it("reports a 500 on an upload-style POST and does not re-send it", function()
      local c = helpers.server_client(srv, { backoff_base = 0.01 })
      assert(c:token())
      srv:fault({ method = "POST", path = "/v2/users", kind = "status", status = 500 })
      local v, err = c:request("POST", "/users", { body = "%PDF-1.4", content_type = "application/pdf" })
      assert.is_nil(v)
      assert.equal("http", err.kind)
      assert.equal(500, err.status)
      assert.is_false(err.retryable)
      assert.equal(1, count(srv:stats(), "POST /v2/users"))
    end)

    it("reports a dropped connection on an upload-style POST and does not re-send it", function()
      local c = helpers.server_client(srv, { backoff_base = 0.01 })
      assert(c.companies:list()) -- a live keep-alive connection exists now
      srv:fault({ method = "POST", path = "/v2/users", kind = "close" })
      local v, err = c:request("POST", "/users", { body = "%PDF-1.4", content_type = "application/pdf" })
      assert.is_nil(v)
      assert.equal("network", err.kind)
      assert.equal(52, err.code)
      assert.is_false(err.retryable)
      assert.equal(1, count(srv:stats(), "POST /v2/users"))
    end)

    it("retries when the server answers 429, waiting for the reset", function()
      srv:configure({ quota = 3, window = 1 })
      local c = helpers.server_client(srv, { throttle = false })
      for _ = 1, 6 do assert(c.companies:list()) end
      local stats = srv:stats()
      assert.is_true((stats.statuses["429"] or 0) >= 1)
    end)

    it("times out a slow answer and says so", function()
      srv:fault({ method = "GET", path = "/v2/companies", kind = "delay", delay = 2 })
      local c = helpers.server_client(srv, { timeout = 0.3, max_retries = 0 })
      assert(c:token())
      local v, err = c.companies:list()
      assert.is_nil(v)
      assert.equal("timeout", err.kind)
      assert.equal(28, err.code)
      assert.is_true(err.retryable)
    end)

    it("fails as decode on invalid JSON", function()
      srv:fault({ method = "GET", path = "/v2/companies", kind = "invalid_json" })
      local c = helpers.server_client(srv)
      local v, err = c.companies:list()
      assert.is_nil(v)
      assert.equal("decode", err.kind)
      assert.equal(200, err.status)
    end)

    it("bounds the whole call with a deadline", function()
      srv:fault({ method = "GET", path = "/v2/companies", kind = "status", status = 503, count = 100 })
      local c = helpers.server_client(srv, { backoff_base = 0.4, max_retries = 10 })
      assert(c:token())
      local t0 = helpers.now()
      local v, err = c.companies:list(nil, { deadline = 2 })
      assert.is_nil(v)
      assert.equal("timeout", err.kind)
      assert.equal(503, err.status)
      assert.is_true(err.attempts >= 2, "retried within the deadline")
      assert.is_true(helpers.now() - t0 < 2.5)
    end)

    it("reports a refused connection as network after retrying", function()
      local c = hypatos.new({ client_id = "a", client_secret = "b", base_url = "http://127.0.0.1:9/v2",
        backoff_base = 0.01, max_retries = 2 })
      local v, err = c:request("GET", "/users")
      assert.is_nil(v)
      assert.equal("network", err.kind)
      assert.equal(7, err.code)
      assert.is_true(err.retryable)
    end)
  end)

  describe("pacing", function()
    it("spreads 60 calls over a 10/s quota with no 429", function()
      srv:configure({ quota = 10, window = 1 })
      local c = helpers.server_client(srv)
      local t0 = helpers.now()
      for _ = 1, 60 do
        local page, err = c.companies:list()
        assert.is_table(page, tostring(err))
      end
      local took = helpers.now() - t0
      local stats = srv:stats()
      assert.is_nil(stats.statuses["429"])
      -- 61 requests (with the token) at 10/s cannot take less than ~5 s;
      -- pacing must not make it much slower either
      assert.is_true(took > 4.5, "took " .. took)
      assert.is_true(took < 9, "took " .. took)
    end)

    it("exposes the server's quota", function()
      srv:configure({ quota = 100, window = 60 })
      local c = helpers.server_client(srv)
      local _, meta = assert(c.companies:list())
      assert.equal(100, meta.rate_limit.limit)
      assert.equal(98, meta.rate_limit.remaining)
      assert.equal(60, meta.rate_limit.window)
      assert.equal("100, 100;w=60", meta.rate_limit.policy)
      assert.same(meta.rate_limit.remaining, c:rate_limit().remaining)
    end)

    it("keeps each meta's own headers and quota, read late, after later calls and collections", function()
      srv:configure({ quota = 100, window = 60 })
      local c = helpers.server_client(srv)
      local metas = {}
      for i = 1, 20 do metas[i] = select(2, assert(c.companies:list())) end
      collectgarbage()
      collectgarbage()
      for i = 20, 1, -1 do -- newest first: the lazy fields come from each answer, not the last one
        assert.equal(99 - i, metas[i].rate_limit.remaining, "meta " .. i)
        assert.equal("application/json", metas[i].headers["content-type"])
        assert.equal(tostring(99 - i), metas[i].headers["x-ratelimit-remaining"])
      end
    end)
  end)

  describe("transport", function()
    it("verifies TLS with the given CA file", function()
      local c = hypatos.new({ client_id = srv.client_id, client_secret = srv.client_secret,
        base_url = srv.tls_url, ca_file = srv.ca_file })
      assert(c.companies:list())
    end)

    it("tunnels https through a proxy with CONNECT, verifying the server's name", function()
      local proxy = assert(require("spec.fixtures.hostile").start("spec/fixtures/connect_proxy.lua",
        { srv.tls_port }))
      local c = hypatos.new({ client_id = srv.client_id, client_secret = srv.client_secret,
        base_url = ("https://api.hypatos.test:%d/v2"):format(srv.tls_port), ca_file = srv.ca_file,
        proxy = "http://127.0.0.1:" .. proxy.port })
      local v, err = c.companies:list()
      local seen = proxy:requests()
      proxy:stop()
      assert.is_table(v, tostring(err))
      assert.equal(("CONNECT api.hypatos.test:%d HTTP/1.1"):format(srv.tls_port), seen[1])
    end)

    it("refuses a server it cannot verify, without retrying", function()
      local c = hypatos.new({ client_id = srv.client_id, client_secret = srv.client_secret,
        base_url = srv.tls_url, backoff_base = 0.01 })
      local v, err = c.companies:list()
      assert.is_nil(v)
      assert.equal("network", err.kind)
      assert.equal(60, err.code)
      assert.is_false(err.retryable)
      assert.equal(1, c:stats().token_requests) -- the token request was not retried
    end)

    it("streams a response into a file, atomically", function()
      local dir, rm = helpers.tmpdir()
      local c = helpers.server_client(srv)
      local ok, meta = c:request("GET", "/users", { query = { limit = 2 }, output = dir .. "/users.json" })
      assert.is_true(ok)
      assert.equal(200, meta.status)
      local page = hypatos.json.decode(helpers.read(dir .. "/users.json"))
      assert.equal(2, #page.data)
      -- an error answer never lands in the output file
      local v, err = c:request("GET", "/users/{id}", { params = { id = "nope" }, output = dir .. "/user.json" })
      assert.is_nil(v)
      assert.equal(400, err.status)
      assert.is_nil(helpers.read(dir .. "/user.json"))
      local p = io.popen("ls -A " .. dir)
      assert.equal("users.json\n", p:read("a"))
      p:close()
      rm()
    end)

    it("sends a body from a file and reports progress", function()
      local dir, rm = helpers.tmpdir()
      helpers.write(dir .. "/body.bin", string.rep("x", 100000))
      local c = helpers.server_client(srv)
      local seen = 0
      local v, meta = c:request("POST", "/_echo", { body_file = dir .. "/body.bin",
        content_type = "application/octet-stream",
        progress = function(_, _, ulnow) seen = math.max(seen, ulnow) end })
      assert.equal(string.rep("x", 100000), v, tostring(meta))
      assert.equal(100000, seen)
      rm()
    end)

    it("stops at once on Ctrl-C (SIGINT) during a transfer or a wait, as an error pcall catches", function()
      local dir, rm = helpers.tmpdir()
      finally(rm)
      helpers.write(dir .. "/slow.lua", ([[
        local hypatos = require "hypatos"
        local c = hypatos.new{ client_id = %q, client_secret = %q, base_url = %q,
          backoff_base = 20, random = function() return 0.9 end }
        assert(c:token())
        io.stdout:write("ready\n"); io.stdout:flush()
        local ok, err
        if arg[1] == "sleep" then
          ok, err = pcall(function() hypatos.sleep(20) end)
        elseif arg[1] == "coroutine" then -- the interpreter hooks the main thread: seen from a coroutine too
          ok, err = coroutine.resume(coroutine.create(function() local v = c:request("GET", "/companies") return v end))
        else
          ok, err = pcall(function() local v = c:request("GET", arg[1]) return v end)
        end
        io.stdout:write("caught ", tostring(ok), " ", tostring(err), "\n")
        local ids = {}
        for u in c.users:each({ limit = 2 }) do ids[#ids + 1] = u.id if #ids == 2 then break end end
        io.stdout:write("after ", #ids, "\n") -- the client goes on working
      ]]):format(srv.client_id, srv.client_secret, srv.url))
      local luajit_env = "LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/luajit/?.so;;'"
      for _, run in ipairs({ { "lua5.4", helpers.lua_env_words() }, { "luajit", luajit_env } }) do
        for _, path in ipairs({ "/companies", "/users", "sleep", "coroutine" }) do
          -- /companies: the answer takes 20 s (also from a coroutine); /users: a 503, then an 18 s backoff;
          -- sleep: hypatos.sleep(20)
          if path == "/companies" or path == "coroutine" then
            srv:fault({ { method = "GET", path = "/v2/companies", kind = "delay", delay = 20, count = 1 } })
          elseif path == "/users" then
            srv:fault({ { method = "GET", path = "/v2/users", kind = "status", status = 503, count = 1 } })
          end
          local cmd = ("cd %s && (%s %s %s/slow.lua %s > %s/out 2>&1 & pid=$!; " ..
            "while ! grep -q ready %s/out 2>/dev/null; do sleep 0.05; done; sleep 0.5; " ..
            "t0=$(date +%%s.%%N); kill -INT $pid; wait $pid; rc=$?; t1=$(date +%%s.%%N); " ..
            "echo \"rc=$rc t0=$t0 t1=$t1\")"):format(os.getenv("PWD") or ".", run[2], run[1], dir, path, dir, dir)
          local p = io.popen(cmd)
          local line = p:read("a")
          p:close()
          srv:control("DELETE", "/_mock/faults")
          local what = run[1] .. " " .. path
          local rc, t0, t1 = line:match("rc=(%d+) t0=([%d.]+) t1=([%d.]+)")
          assert.is_not_nil(rc, what .. ": " .. line)
          local took = tonumber(t1) - tonumber(t0)
          assert.is_true(tonumber(took) < 2.5, what .. " took " .. tostring(took))
          local out = helpers.read(dir .. "/out")
          assert.matches("\ncaught false hypatos: interrupted\nafter 2\n$", out, 1, false, what)
          assert.equal("0", rc, what .. ": " .. out)
        end
      end
    end)

    it("raises an error from a progress function after cleaning up", function()
      local c = helpers.server_client(srv)
      assert(c:token())
      assert.has_error(function()
        c:request("GET", "/users", { progress = function() error("stop here") end })
      end)
      assert(c.companies:list())
    end)
  end)
end)
