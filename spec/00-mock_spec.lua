-- spec/00-mock_spec.lua — specs for the local fake Hypatos server itself (mock/): launcher
-- lifecycle, control API, token endpoint, bearer check and scopes, rate limiting, fault
-- injection, users and companies endpoints, stats and TLS. The other resource groups
-- have their own spec/01-mock_*_spec.lua files. The client is luasocket (and
-- curl through io.popen/os.execute where a broken transfer must be observed), never the
-- library under test.

local launcher = require "mock.launcher"
local testclient = require "mock.testclient"
local mime = require "mime"
local socket = require "socket"
local cjson = require "cjson"

local srv -- the server shared by this file (TLS enabled)

-- Quote for /bin/sh.
local function sh(s)
  return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'"
end

-- application/x-www-form-urlencoded encoding of one component.
local function form(s)
  return (s:gsub("[^%w%-%._~ ]", function(c) return ("%%%02X"):format(c:byte()) end):gsub(" ", "+"))
end

-- HTTP request to the server (mock/testclient.lua). `path` is relative to /v2 unless it
-- starts with "/_mock" or opts.raw_path is set. Returns status, decoded JSON (or nil),
-- headers, body text.
local function request(method, path, opts)
  return testclient.new(srv):request(method, path, opts)
end

-- Ask for a token; returns status, JSON, headers.
local function token_request(id, secret, extra, ctype)
  local hdrs = { ["Content-Type"] = ctype or "application/x-www-form-urlencoded" }
  if id then hdrs["Authorization"] = "Basic " .. mime.b64(form(id) .. ":" .. form(secret)) end
  return request("POST", "/auth/token", { headers = hdrs, body = "grant_type=client_credentials" .. (extra or "") })
end

-- A fresh access token (asserts success).
local function get_token(id, secret, scope)
  local status, json = token_request(id or "test-client", secret or "test-secret",
    scope and ("&scope=" .. form(scope)) or nil)
  assert.equal(200, status)
  return json.access_token
end

-- Exit code of a shell command.
local function exit_code(cmd)
  local _, _, code = os.execute(cmd)
  return code
end

-- True while pid exists and is not a zombie.
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local st = f:read("l"):match("%) (%a)")
  f:close()
  return st ~= "Z" and st ~= "X"
end

-- True when the directory exists.
local function dir_exists(path)
  return os.execute("test -d " .. sh(path)) == true
end

-- Sleep until just after the start of a new second (1 s rate-limit windows).
local function align_to_second()
  local now = socket.gettime()
  socket.sleep(math.floor(now) + 1.02 - now)
end

describe("mock server", function()
  lazy_setup(function()
    local err
    srv, err = launcher.start{ tls = true }
    assert(srv, err)
  end)

  lazy_teardown(function()
    if srv then
      local pid, prefix = srv.pid, srv.prefix
      srv:stop()
      assert.is_false(alive(pid))
      assert.is_false(dir_exists(prefix))
    end
  end)

  before_each(function()
    srv:reset()
  end)

  describe("launcher", function()
    it("exposes ports, URLs, pid, prefix and credentials", function()
      assert.is_number(srv.port)
      assert.equal("http://127.0.0.1:" .. srv.port .. "/v2", srv.url)
      assert.equal("http://127.0.0.1:" .. srv.port, srv.control_url)
      assert.equal("https://localhost:" .. srv.tls_port .. "/v2", srv.tls_url)
      assert.equal(srv.prefix .. "/cert.pem", srv.ca_file)
      assert.equal("test-client", srv.client_id)
      assert.equal("test-secret", srv.client_secret)
      assert.is_true(alive(srv.pid))
      assert.is_true(dir_exists(srv.prefix))
    end)

    it("starts and stops a server leaving no process and no prefix dir", function()
      local s = assert(launcher.start{ config = { quota = 7 } })
      local pid, worker, prefix = s.pid, s.worker_pid, s.prefix
      assert.is_true(alive(pid))
      assert.is_true(alive(worker))
      assert.is_nil(s.tls_url)
      assert.equal(7, s:control("GET", "/_mock/config").quota)
      assert.is_true(s:stop())
      assert.is_false(alive(pid))
      assert.is_false(alive(worker))
      assert.is_false(dir_exists(prefix))
      assert.is_true(s:stop()) -- idempotent
    end)

    it("stops a server held in a <close> variable", function()
      local pid, prefix
      do
        local s <close> = assert(launcher.start())
        pid, prefix = s.pid, s.prefix
      end
      assert.is_false(alive(pid))
      assert.is_false(dir_exists(prefix))
    end)

    it("returns nil and a message for an invalid start-up config", function()
      local s, err = launcher.start{ config = { quota = 0 } }
      assert.is_nil(s)
      assert.matches("quota must be a positive integer", err)
    end)

    it("raises on unknown options", function()
      assert.has_error(function() launcher.start{ bogus = 1 } end, "launcher.start: unknown option 'bogus'")
    end)

    it("keeps the start-up config across reset", function()
      local s = assert(launcher.start{ config = { quota = 9, window = 2 } })
      s:configure{ quota = 100 }
      assert.equal(100, s:control("GET", "/_mock/config").quota)
      s:reset()
      local cfg = s:control("GET", "/_mock/config")
      s:stop()
      assert.equal(9, cfg.quota)
      assert.equal(2, cfg.window)
    end)
  end)

  describe("control API", function()
    it("answers health", function()
      local status, json = request("GET", "/_mock/health")
      assert.equal(200, status)
      assert.is_true(json.ok)
    end)

    it("reports the seed", function()
      local seed = srv:control("GET", "/_mock/seed")
      assert.equal("Hypatos Demo GmbH", seed.tenant.name)
      assert.equal(57, seed.users.total)
      assert.equal(46, seed.users.active)
    end)

    it("reports projects, documents and files of the seed", function()
      local seed = srv:control("GET", "/_mock/seed")
      assert.equal(4, #seed.projects)
      assert.equal("automatic", seed.projects[2].completion)
      assert.equal(seed.projects[2].id, seed.automatic_project.id)
      assert.equal(25, #seed.documents)
      local n = 0
      for _, count in pairs(seed.document_states) do n = n + count end
      assert.equal(25, n)
      assert.equal("application/pdf", seed.files.first.contentType)
      assert.equal("invoice-2025-0001.pdf", seed.files.first.filename)
      assert.equal(seed.documents[1].fileId, seed.files.first.id)
    end)

    it("has processing_time and fail_every config keys", function()
      local cfg = srv:control("GET", "/_mock/config")
      assert.equal(1, cfg.processing_time)
      assert.equal(0, cfg.fail_every)
      cfg = srv:configure{ processing_time = 0.25, fail_every = 3 }
      assert.equal(0.25, cfg.processing_time)
      assert.equal(3, cfg.fail_every)
      assert.has_error(function() srv:configure{ processing_time = -1 } end)
      assert.has_error(function() srv:configure{ fail_every = 1.5 } end)
      srv:reset()
      assert.equal(1, srv:control("GET", "/_mock/config").processing_time)
    end)

    it("rejects an invalid config and an invalid fault with 400", function()
      assert.has_error(function() srv:configure{ window = -1 } end)
      assert.has_error(function() srv:fault{ kind = "explode" } end)
      local status, json = request("POST", "/_mock/config", { body = "{nope" })
      assert.equal(400, status)
      assert.equal("Invalid JSON", json.title)
    end)

    it("answers 404 and 405 for unknown control calls", function()
      assert.equal(404, (request("GET", "/_mock/nothing")))
      assert.equal(405, (request("DELETE", "/_mock/stats")))
    end)

    it("counts live tokens and revokes them", function()
      get_token()
      get_token()
      assert.equal(2, srv:control("GET", "/_mock/tokens").count)
      assert.equal(2, srv:revoke().revoked)
      assert.equal(0, srv:control("GET", "/_mock/tokens").count)
    end)
  end)

  describe("token endpoint", function()
    it("issues a bearer token for good credentials", function()
      local status, json, h = token_request("test-client", "test-secret")
      assert.equal(200, status)
      assert.equal("Bearer", json.token_type)
      assert.equal(3600, json.expires_in)
      assert.is_true(#json.access_token >= 32)
      assert.matches("users.read", json.scope, 1, true)
      local n = 0
      for _ in json.scope:gmatch("%S+") do n = n + 1 end
      assert.equal(12, n)
      assert.equal("no-store", h["cache-control"])
      assert.equal("no-cache", h["pragma"])
      assert.equal("application/json;charset=UTF-8", h["content-type"])
    end)

    it("rejects bad and missing credentials with 401", function()
      local status, json = token_request("test-client", "wrong")
      assert.equal(401, status)
      assert.same({ title = "Invalid client credentials",
                    detail = "The provided client credentials are not valid", status = 401 }, json)
      status = token_request(nil)
      assert.equal(401, status)
      status = token_request("nobody", "test-secret")
      assert.equal(401, status)
    end)

    it("form-decodes client id and secret (RFC 6749 2.3.1)", function()
      local status, json = token_request("weird:client id", "p@ss:w rd+%")
      assert.equal(200, status)
      assert.is_string(json.access_token)
      -- The same credentials without form-encoding must fail.
      local hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded",
                     ["Authorization"] = "Basic " .. mime.b64("weird:client id:p@ss:w rd+%") }
      status = request("POST", "/auth/token", { headers = hdrs, body = "grant_type=client_credentials" })
      assert.equal(401, status)
    end)

    it("grants a requested subset of scopes", function()
      local status, json = token_request("test-client", "test-secret", "&scope=users.read+companies.read")
      assert.equal(200, status)
      assert.equal("users.read companies.read", json.scope)
    end)

    it("rejects a scope the client does not have", function()
      local status, json = token_request("readonly-client", "readonly-secret", "&scope=files.write")
      assert.equal(400, status)
      assert.equal("Invalid scope", json.title)
      assert.equal(400, json.status)
    end)

    it("gives the readonly client its three scopes", function()
      local status, json = token_request("readonly-client", "readonly-secret")
      assert.equal(200, status)
      assert.equal("companies.read users.read documents.read", json.scope)
    end)

    it("rejects other grant types and content types with 400", function()
      local hdrs = { ["Content-Type"] = "application/x-www-form-urlencoded",
                     ["Authorization"] = "Basic " .. mime.b64("test-client:test-secret") }
      local status, json = request("POST", "/auth/token", { headers = hdrs, body = "grant_type=password" })
      assert.equal(400, status)
      assert.equal("Unsupported grant type", json.title)
      status = token_request("test-client", "test-secret", nil, "application/json")
      assert.equal(400, status)
    end)

    it("honours token_ttl and omit_expires_in", function()
      srv:configure{ token_ttl = 120 }
      local _, json = token_request("test-client", "test-secret")
      assert.equal(120, json.expires_in)
      srv:configure{ omit_expires_in = true }
      _, json = token_request("test-client", "test-secret")
      assert.is_nil(json.expires_in)
      assert.is_string(json.access_token)
    end)

    it("answers 405 to GET", function()
      assert.equal(405, (request("GET", "/auth/token")))
    end)
  end)

  describe("bearer check", function()
    it("rejects a missing token", function()
      local status, json, h = request("GET", "/users")
      assert.equal(401, status)
      assert.equal("Invalid token", json.title)
      assert.equal(401, json.status)
      assert.is_string(json.detail)
      assert.is_string(h["x-ratelimit-limit"])
    end)

    it("rejects an unknown token", function()
      local status, json = request("GET", "/users", { token = "not-a-token" })
      assert.equal(401, status)
      assert.equal("Invalid token", json.title)
    end)

    it("rejects a revoked token", function()
      local tok = get_token()
      assert.equal(200, (request("GET", "/users", { token = tok })))
      srv:revoke()
      assert.equal(401, (request("GET", "/users", { token = tok })))
    end)

    it("rejects an expired token", function()
      srv:configure{ token_ttl = 1 }
      local tok = get_token()
      assert.equal(200, (request("GET", "/companies", { token = tok })))
      socket.sleep(1.1)
      local status, json = request("GET", "/companies", { token = tok })
      assert.equal(401, status)
      assert.matches("expired", json.detail)
    end)

    it("answers 403 when the token lacks the scope", function()
      srv:configure{ clients = { ["users-only"] = { secret = "s3cret", scopes = { "users.read" } } } }
      local tok = get_token("users-only", "s3cret")
      assert.equal(200, (request("GET", "/users", { token = tok })))
      local status, json = request("GET", "/companies", { token = tok })
      assert.equal(403, status)
      assert.same({ title = "Forbidden", detail = "Not enough privileges to perform an action on a resource",
                    status = 403 }, json)
      -- The configured clients replaced the defaults.
      assert.equal(401, (token_request("test-client", "test-secret")))
    end)

    it("answers 403 for a token limited by the scope parameter", function()
      local tok = get_token("test-client", "test-secret", "companies.read")
      assert.equal(200, (request("GET", "/companies", { token = tok })))
      assert.equal(403, (request("GET", "/users", { token = tok })))
    end)
  end)

  describe("rate limiting", function()
    it("sends the headers on every /v2 response", function()
      for _, path in ipairs{ "/users", "/nowhere" } do
        local _, _, h = request("GET", path)
        assert.equal("1000000, 1000000;w=1", h["x-ratelimit-limit"])
        assert.matches("^%d+$", h["x-ratelimit-remaining"])
        assert.equal("1", h["x-ratelimit-reset"])
        assert.is_nil(h["ratelimit"])
      end
      local _, _, h = request("GET", "/_mock/health")
      assert.is_nil(h["x-ratelimit-limit"])
    end)

    it("sends them on token answers, errors and injected faults too (like the real API)", function()
      local function has_headers(h, what)
        assert.equal("1000000, 1000000;w=1", h["x-ratelimit-limit"], what)
        assert.is_truthy(tostring(h["x-ratelimit-remaining"]):match("^%d+$"), what)
        assert.is_truthy(tostring(h["x-ratelimit-reset"]):match("^%d+$"), what)
      end
      local status, _, h = token_request("test-client", "test-secret")
      assert.equal(200, status)
      has_headers(h, "token 200")
      status, _, h = token_request("test-client", "wrong")
      assert.equal(401, status)
      has_headers(h, "token 401")
      local tok = get_token()
      srv:fault{ path = "/v2/users", kind = "status", status = 503 }
      status, _, h = request("GET", "/users", { token = tok })
      assert.equal(503, status)
      has_headers(h, "injected 503")
      srv:fault{ path = "/v2/auth/token", kind = "status", status = 500 }
      status, _, h = token_request("test-client", "test-secret")
      assert.equal(500, status)
      has_headers(h, "injected token 500")
      srv:fault{ path = "/v2/users", kind = "invalid_json" }
      status, _, h = request("GET", "/users", { token = tok })
      assert.equal(200, status)
      has_headers(h, "injected invalid JSON")
      status, _, h = request("DELETE", "/users", { token = tok })
      assert.equal(405, status)
      has_headers(h, "405")
    end)

    it("counts down and answers 429 past the quota within a 1 s window", function()
      local tok = get_token()
      srv:configure{ quota = 3, window = 1 }
      align_to_second()
      local remaining = {}
      for i = 1, 3 do
        local status, _, h = request("GET", "/companies", { token = tok })
        assert.equal(200, status)
        remaining[i] = h["x-ratelimit-remaining"]
        assert.equal("3, 3;w=1", h["x-ratelimit-limit"])
        assert.equal("1", h["x-ratelimit-reset"])
      end
      assert.same({ "2", "1", "0" }, remaining)
      local status, json, h = request("GET", "/companies", { token = tok })
      assert.equal(429, status)
      assert.equal("Too Many Requests", json.title)
      assert.equal(429, json.status)
      assert.equal("0", h["x-ratelimit-remaining"])
      assert.equal("1", h["x-ratelimit-reset"])
      -- Token requests and unauthenticated calls are limited too.
      assert.equal(429, (token_request("test-client", "test-secret")))
      assert.equal(429, (request("GET", "/users")))
      -- The next window starts afresh.
      align_to_second()
      status, json, h = request("GET", "/companies", { token = tok })
      assert.equal(200, status)
      assert.equal("2", h["x-ratelimit-remaining"])
      assert.equal(3, #json.data)
    end)

    it("gives an upper bound for reset in longer windows", function()
      srv:configure{ quota = 100, window = 60 }
      local before = socket.gettime()
      local _, _, h = request("GET", "/users")
      local reset = tonumber(h["x-ratelimit-reset"])
      assert.is_true(reset >= 1 and reset <= 60)
      local window_end = math.floor(before / 60) * 60 + 60
      assert.is_true(before + reset >= window_end - 0.01)
    end)

    it("sends IETF headers when asked and formats fractional windows", function()
      srv:configure{ quota = 100, window = 60, ietf_headers = true }
      local _, _, h = request("GET", "/users")
      assert.equal("100, 100;w=60", h["x-ratelimit-limit"])
      assert.matches("^limit=100, remaining=%d+, reset=%d+$", h["ratelimit"])
      assert.equal("100;w=60", h["ratelimit-policy"])
      srv:configure{ window = 0.5, ietf_headers = false }
      _, _, h = request("GET", "/users")
      assert.equal("100, 100;w=0.5", h["x-ratelimit-limit"])
    end)

    it("sends no rate-limit headers with rate_headers = false", function()
      srv:configure{ rate_headers = false, ietf_headers = true }
      local _, _, h = request("GET", "/users")
      assert.is_nil(h["x-ratelimit-limit"])
      assert.is_nil(h["x-ratelimit-remaining"])
      assert.is_nil(h["x-ratelimit-reset"])
      assert.is_nil(h["ratelimit"])
    end)
  end)

  describe("faults", function()
    local tok
    before_each(function() tok = get_token() end)

    it("status: answers the given status count times, then normally", function()
      srv:fault{ kind = "status", status = 503, path = "/v2/companies", count = 2 }
      for _ = 1, 2 do
        local status, json, h = request("GET", "/companies", { token = tok })
        assert.equal(503, status)
        assert.same({ title = "Service Unavailable", detail = "Service Unavailable", status = 503 }, json)
        assert.is_string(h["x-ratelimit-limit"])
      end
      assert.equal(200, (request("GET", "/companies", { token = tok })))
    end)

    it("status: with custom body and headers, matching method and path pattern", function()
      srv:fault{ kind = "status", status = 500, method = "POST", body = { title = "Boom", detail = "x", status = 500 } }
      srv:fault{ kind = "status", status = 502, path_pattern = "^/v2/users/%x+$", headers = { ["X-Test"] = "yes" } }
      assert.equal(200, (request("GET", "/users", { token = tok }))) -- neither matches
      local status, json, h = request("GET", "/users/642481be7a3cd6803f112201", { token = tok })
      assert.equal(502, status)
      assert.equal("Bad Gateway", json.title)
      assert.equal("yes", h["x-test"])
      status, json = token_request("test-client", "test-secret")
      assert.equal(500, status)
      assert.equal("Boom", json.title)
    end)

    it("rate_limit: 429 with reset and Retry-After as given", function()
      srv:fault{ { kind = "rate_limit", reset = 5, retry_after = 7 },
                 { kind = "rate_limit", retry_after = "Wed, 21 Oct 2015 07:28:00 GMT" },
                 { kind = "rate_limit" } }
      local status, json, h = request("GET", "/users", { token = tok })
      assert.equal(429, status)
      assert.equal("Too Many Requests", json.title)
      assert.equal("0", h["x-ratelimit-remaining"])
      assert.equal("5", h["x-ratelimit-reset"])
      assert.equal("7", h["retry-after"])
      assert.equal("1000000, 1000000;w=1", h["x-ratelimit-limit"])
      status, json, h = request("GET", "/users", { token = tok })
      assert.equal(429, status)
      assert.equal(429, json.status)
      assert.equal("Wed, 21 Oct 2015 07:28:00 GMT", h["retry-after"])
      assert.equal("1", h["x-ratelimit-reset"])
      status, json, h = request("GET", "/users", { token = tok })
      assert.equal(429, status)
      assert.is_nil(h["retry-after"])
      assert.equal("Too Many Requests", json.title)
      assert.equal(200, (request("GET", "/users", { token = tok })))
    end)

    it("close: drops the connection without an answer (curl exit 52)", function()
      srv:fault{ kind = "close", path = "/v2/users" }
      local code = exit_code(("curl -s -o /dev/null -H %s -d %s %s"):format(
        sh("Authorization: Bearer " .. tok), sh('{"a":1}'), sh(srv.url .. "/users")))
      assert.equal(52, code)
      assert.equal(200, (request("GET", "/users", { token = tok })))
    end)

    it("close_mid_body: sends half the announced body (curl exit 18)", function()
      srv:fault{ kind = "close_mid_body" }
      local p = io.popen(("curl -s -H %s %s; rc=$?; echo; echo rc=$rc"):format(
        sh("Authorization: Bearer " .. tok), sh(srv.url .. "/companies")))
      local out = p:read("a")
      p:close()
      assert.matches("rc=18", out)
      assert.matches('^{"', out)
      -- Also for a tiny answer (padded so there is something to cut).
      srv:fault{ kind = "close_mid_body" }
      assert.equal(18, exit_code("curl -s -o /dev/null " .. sh(srv.url .. "/users")))
    end)

    it("delay: answers normally after the delay", function()
      srv:fault{ kind = "delay", delay = 0.3 }
      local t0 = socket.gettime()
      local status = request("GET", "/companies", { token = tok })
      assert.equal(200, status)
      assert.is_true(socket.gettime() - t0 >= 0.3)
    end)

    it("invalid_json: 200 with a body that is not JSON", function()
      srv:fault{ kind = "invalid_json" }
      local status, json, h, text = request("GET", "/users", { token = tok })
      assert.equal(200, status)
      assert.is_nil(json)
      assert.equal("application/json", h["content-type"])
      assert.is_false((pcall(cjson.decode, text)))
    end)

    it("revoke: invalidates all tokens before handling", function()
      srv:fault{ kind = "revoke" }
      local status, json = request("GET", "/users", { token = tok })
      assert.equal(401, status)
      assert.equal("Invalid token", json.title)
      assert.equal(401, (request("GET", "/users", { token = tok })))
      assert.equal(200, (request("GET", "/users", { token = get_token() })))
    end)

    it("expire: marks all tokens expired before handling", function()
      srv:fault{ kind = "expire", path = "/v2/companies" }
      local status, json = request("GET", "/companies", { token = tok })
      assert.equal(401, status)
      assert.matches("expired", json.detail)
    end)

    it("applies to the token endpoint and shows in faults_pending", function()
      srv:fault{ { kind = "status", status = 503, path = "/v2/auth/token" }, { kind = "delay", delay = 0, count = 3 } }
      assert.equal(2, srv:stats().faults_pending)
      assert.equal(503, (token_request("test-client", "test-secret")))
      assert.equal(1, srv:stats().faults_pending)
      for _ = 1, 3 do request("GET", "/users", { token = tok }) end
      assert.equal(0, srv:stats().faults_pending)
    end)
  end)

  describe("users", function()
    local tok
    before_each(function() tok = get_token() end)

    it("lists the first page with defaults", function()
      local status, json, h, text = request("GET", "/users", { token = tok })
      assert.equal(200, status)
      assert.equal(20, #json.data)
      assert.equal(57, json.totalCount)
      assert.equal(20, json.limit)
      assert.equal(0, json.offset)
      assert.equal("application/json", h["content-type"])
      assert.equal(tostring(#text), h["content-length"])
    end)

    it("serves users in the documented shape", function()
      local _, json = request("GET", "/users?limit=50", { token = tok })
      for _, u in ipairs(json.data) do
        assert.matches("^%x+$", u.id)
        assert.equal(24, #u.id)
        assert.is_string(u.email)
        assert.is_string(u.name)
        assert.is_boolean(u.active)
        assert.is_boolean(u.isInternal)
        assert.is_true(#u.companiesAccess >= 1)
        for _, a in ipairs(u.companiesAccess) do
          assert.is_string(a.companyId)
          assert.is_string(a.companyName)
          assert.is_boolean(a.active)
          assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$", a.createdAt)
          assert.is_true(#a.roles >= 1)
        end
      end
    end)

    it("clamps limit to 50 and pages through all users", function()
      local _, json = request("GET", "/users?limit=1000", { token = tok })
      assert.equal(50, #json.data)
      assert.equal(50, json.limit)
      local seen, n, offset = {}, 0, 0
      repeat
        local _, page = request("GET", "/users?limit=50&offset=" .. offset, { token = tok })
        for _, u in ipairs(page.data) do
          assert.is_nil(seen[u.id])
          seen[u.id] = true
          n = n + 1
        end
        offset = offset + #page.data
      until #page.data < 50
      assert.equal(57, n)
    end)

    it("answers limit=0 with an empty array", function()
      local status, json, _, text = request("GET", "/users?limit=0", { token = tok })
      assert.equal(200, status)
      assert.matches('"data":[]', text, 1, true)
      assert.equal(57, json.totalCount)
      _, _, _, text = request("GET", "/users?offset=1000", { token = tok })
      assert.matches('"data":[]', text, 1, true)
    end)

    it("rejects bad limit and offset with 400", function()
      for _, q in ipairs{ "limit=-1", "limit=abc", "limit=1.5", "limit=", "limit" } do
        local status, json = request("GET", "/users?" .. q, { token = tok })
        assert.equal(400, status, q)
        assert.same({ title = "Limit out of range", detail = "Limit is out of range", status = 400 }, json)
      end
      for _, q in ipairs{ "offset=-1", "offset=x", "offset=2.0" } do
        local status, json = request("GET", "/users?" .. q, { token = tok })
        assert.equal(400, status, q)
        assert.same({ title = "Offset out of range", detail = "The provided offset is out of range",
                      status = 400 }, json)
      end
    end)

    it("filters by active", function()
      local _, json = request("GET", "/users?active=true&limit=50", { token = tok })
      assert.equal(46, json.totalCount)
      for _, u in ipairs(json.data) do assert.is_true(u.active) end
      _, json = request("GET", "/users?active=false", { token = tok })
      assert.equal(11, json.totalCount)
      for _, u in ipairs(json.data) do assert.is_false(u.active) end
      assert.equal(400, (request("GET", "/users?active=yes", { token = tok })))
    end)

    it("searches names and emails case-insensitively", function()
      local _, json = request("GET", "/users?search=NORDLICHT&limit=50", { token = tok })
      assert.is_true(json.totalCount > 0 and json.totalCount < 57)
      for _, u in ipairs(json.data) do assert.matches("nordlicht", u.email, 1, true) end
      local _, a = request("GET", "/users?search=oliver", { token = tok })
      local _, b = request("GET", "/users?search=OLIVER", { token = tok })
      assert.is_true(a.totalCount > 0)
      assert.same(a, b)
      _, json = request("GET", "/users?search=" .. form("Jürgen"), { token = tok })
      assert.is_true(json.totalCount > 0)
      for _, u in ipairs(json.data) do assert.matches("Jürgen", u.name, 1, true) end
      _, json = request("GET", "/users?search=zzzzzz", { token = tok })
      assert.equal(0, json.totalCount)
    end)

    it("filters by repeated roles keys", function()
      local function has(u, set)
        for _, a in ipairs(u.companiesAccess) do
          for _, r in ipairs(a.roles) do if set[r] then return true end end
        end
        return false
      end
      local _, one = request("GET", "/users?roles=installationAdmin&limit=50", { token = tok })
      assert.is_true(one.totalCount > 0)
      for _, u in ipairs(one.data) do assert.is_true(has(u, { installationAdmin = true })) end
      local _, two = request("GET", "/users?roles=installationAdmin&roles=manager&limit=50", { token = tok })
      assert.is_true(two.totalCount > one.totalCount)
      for _, u in ipairs(two.data) do assert.is_true(has(u, { installationAdmin = true, manager = true })) end
      local status, json = request("GET", "/users?roles=admin&roles=boss", { token = tok })
      assert.equal(400, status)
      assert.equal("Invalid role", json.title)
    end)

    it("gets one user by id", function()
      local _, list = request("GET", "/users?limit=1", { token = tok })
      local first = list.data[1]
      local status, json = request("GET", "/users/" .. first.id, { token = tok })
      assert.equal(200, status)
      assert.same(first, json)
      assert.equal(srv:control("GET", "/_mock/seed").users.first.id, json.id)
    end)

    it("answers 400 for a malformed id and 404 for an unknown one", function()
      local status, json = request("GET", "/users/123", { token = tok })
      assert.equal(400, status)
      assert.equal("Invalid user ID", json.title)
      status = request("GET", "/users/..%2Fcompanies", { token = tok })
      assert.equal(400, status)
      status, json = request("GET", "/users/ffffffffffffffffffffffff", { token = tok })
      assert.equal(404, status)
      assert.equal("User does not exist", json.title)
      assert.equal(404, json.status)
    end)
  end)

  describe("companies", function()
    local tok
    before_each(function() tok = get_token("readonly-client", "readonly-secret") end)

    it("lists the three companies, tenant first", function()
      local status, json = request("GET", "/companies", { token = tok })
      assert.equal(200, status)
      assert.equal(3, #json.data)
      assert.equal(3, json.totalCount)
      assert.equal(20, json.limit)
      assert.equal(0, json.offset)
      assert.equal("Hypatos Demo GmbH", json.data[1].name)
      for _, c in ipairs(json.data) do
        assert.equal(24, #c.id)
        assert.is_boolean(c.active)
        assert.is_string(c.createdAt)
      end
      assert.equal(srv:control("GET", "/_mock/seed").tenant.id, json.data[1].id)
    end)

    it("is not paginated, like the real API: every company whatever limit and offset say", function()
      local _, all = request("GET", "/companies", { token = tok })
      local _, json = request("GET", "/companies?limit=1&offset=1", { token = tok })
      assert.same(all.data, json.data)
      assert.equal(1, json.limit)   -- echoed as asked
      assert.equal(1, json.offset)
      assert.equal(#all.data, json.totalCount)
      assert.equal(400, (request("GET", "/companies?limit=-5", { token = tok })))
    end)

    it("gets one company; 400 for malformed, 404 for unknown ids", function()
      local _, all = request("GET", "/companies", { token = tok })
      local status, json = request("GET", "/companies/" .. all.data[1].id, { token = tok })
      assert.equal(200, status)
      assert.same(all.data[1], json)
      status, json = request("GET", "/companies/not-an-id", { token = tok })
      assert.equal(400, status)
      assert.equal("Invalid company ID", json.title)
      status, json = request("GET", "/companies/000000000000000000000000", { token = tok })
      assert.equal(404, status)
      assert.equal("Company does not exists", json.title)
    end)
  end)

  describe("routing", function()
    it("answers unknown paths with a JSON 404", function()
      local status, json, h = request("GET", "/nothing/here")
      assert.equal(404, status)
      assert.equal("Not found", json.title)
      assert.equal("application/json", h["content-type"])
      status, json = request("GET", "/elsewhere", { raw_path = true })
      assert.equal(404, status)
      assert.equal("Not found", json.title)
    end)

    it("answers a known path with the wrong method with a JSON 405", function()
      local status, json, h = request("DELETE", "/users", { token = get_token() })
      assert.equal(405, status)
      assert.equal(405, json.status)
      assert.equal("GET", h["allow"])
    end)
  end)

  describe("stats", function()
    it("counts API requests by route and status, not control calls", function()
      local tok = get_token()
      request("GET", "/users", { token = tok })
      request("GET", "/users?limit=5&roles=admin&roles=clerk", { token = tok, headers = { ["User-Agent"] = "spec/1.0" } })
      request("GET", "/users/642481be7a3cd6803f112201", { token = tok, headers = { ["X-Hy-Filename"] = "a b.pdf" } })
      request("GET", "/nope")
      srv:control("GET", "/_mock/health")
      local st = srv:stats()
      assert.equal(5, st.requests)
      assert.equal("5", tostring(st.requests)) -- whole numbers as integers (Lua 5.3+), not 5.0
      assert.equal("200", tostring(st.log[3].status))
      assert.equal(1, st.token_requests)
      assert.equal(1, st.by_route["POST /v2/auth/token"])
      assert.equal(2, st.by_route["GET /v2/users"])
      assert.equal(1, st.by_route["GET /v2/users/{id}"])
      assert.equal(1, st.by_route["GET /v2/nope"])
      assert.equal(4, st.statuses["200"])
      assert.equal(1, st.statuses["404"])
      assert.equal(0, st.faults_pending)
      assert.equal(5, #st.log)
      local t, q, f, n = st.log[1], st.log[3], st.log[4], st.log[5]
      assert.equal("POST", t.method)
      assert.equal("/v2/auth/token", t.path)
      assert.equal("basic", t.authorization)
      assert.equal("application/x-www-form-urlencoded", t.content_type)
      assert.equal(29, t.content_length)
      assert.equal("limit=5&roles=admin&roles=clerk", q.query)
      assert.equal("spec/1.0", q.user_agent)
      assert.equal("bearer", q.authorization)
      assert.equal(200, q.status)
      assert.is_number(q.at)
      assert.equal("a b.pdf", f.x_hy_filename)
      assert.equal("none", n.authorization)
      assert.equal(404, n.status)
      -- No secret ever shows up.
      local text = cjson.encode(st)
      assert.is_nil(text:find(tok, 1, true))
      assert.is_nil(text:find("test-secret", 1, true))
    end)

    it("keeps only the last 500 requests in the log", function()
      assert.equal(0, exit_code("curl -s " .. sh(srv.url .. "/x[1-510]") .. " >/dev/null"))
      local st = srv:stats()
      assert.equal(510, st.requests)
      assert.equal(500, #st.log)
      assert.equal("/v2/x11", st.log[1].path)
      assert.equal("/v2/x510", st.log[500].path)
    end)

    it("logs the fault that applied and 444 for dropped connections", function()
      srv:fault{ kind = "close" }
      exit_code("curl -s -o /dev/null " .. sh(srv.url .. "/users"))
      local st = srv:stats()
      assert.equal(1, st.statuses["444"])
      assert.equal("close", st.log[1].fault)
    end)
  end)

  describe("TLS", function()
    it("serves the same API over TLS verified with the test CA", function()
      local p = io.popen(("curl -s --cacert %s %s"):format(sh(srv.ca_file), sh(srv.tls_url .. "/companies")))
      local out = p:read("a")
      local ok = p:close()
      assert.is_true(ok)
      assert.equal("Invalid token", cjson.decode(out).title)
      p = io.popen(("curl -s --cacert %s %s"):format(sh(srv.ca_file),
        sh("https://127.0.0.1:" .. srv.tls_port .. "/_mock/health")))
      out = p:read("a")
      p:close()
      assert.is_true(cjson.decode(out).ok)
    end)

    it("is refused without the CA file", function()
      assert.equal(60, exit_code("curl -s -o /dev/null " .. sh(srv.tls_url .. "/companies")))
    end)
  end)
end)
