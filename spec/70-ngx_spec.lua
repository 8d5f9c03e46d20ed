-- spec/70-ngx_spec.lua — the OpenResty driver in a real nginx (Debian nginx + ngx_lua on
-- LuaJIT, 2 workers) in front of the local Hypatos server: the README's configuration, calls
-- that never block the worker, retries with ngx.sleep, the no-re-send rule, streamed files,
-- TLS, and the clear error outside cosocket phases.
local helpers = require "spec.helpers"
local ngx_app = require "spec.fixtures.ngx_app"
local cjson = require "cjson"

local HANDLERS = [[
        location = /u {
            content_by_lua_block {
                local u, err = client.users:get(ngx.var.arg_id)
                if not u then ngx.status = 502 ngx.say(tostring(err)) return end
                ngx.say(require("cjson").encode({ id = u.id, email = u.email }))
            }
        }
        location = /users {
            content_by_lua_block {
                local n = 0
                for _ in client.users:each({ limit = 20 }) do n = n + 1 end
                ngx.say(n)
            }
        }
        location = /call {
            content_by_lua_block {
                local args = ngx.req.get_uri_args()
                local v, meta = client:request(args.method or "GET", args.path)
                if v == nil then
                  ngx.say(require("cjson").encode({ kind = meta.kind, message = meta.message,
                    attempts = meta.attempts, status = meta.status }))
                else
                  ngx.say(require("cjson").encode({ ok = true, attempts = meta.attempts, status = meta.status,
                    elapsed = meta.elapsed }))
                end
            }
        }
        location = /files {
            content_by_lua_block {
                local args = ngx.req.get_uri_args()
                local f, err = client.files:upload{ path = args.src }
                if not f then ngx.say(require("cjson").encode({ kind = err.kind, message = err.message })) return end
                local ok, derr = client.files:download(f.id, { path = args.dst })
                ngx.say(require("cjson").encode({ id = f.id, ok = ok and true or false,
                  err = derr and derr.kind }))
            }
        }
        location = /upload {
            content_by_lua_block {
                local f, err = client.files:upload{ data = "%PDF-1.4 x", filename = "a.pdf" }
                ngx.say(require("cjson").encode(f and { id = f.id } or { kind = err.kind, message = err.message,
                  outcome = err.outcome, status = err.status }))
            }
        }
        location = /wait {
            content_by_lua_block {
                local doc, err = client.documents:wait(ngx.var.arg_id, { timeout = 5, interval = 0.05 })
                ngx.say(doc and doc.state or tostring(err))
            }
        }
        location = /map {
            content_by_lua_block {
                local ids = {}
                for u in client.users:each({ limit = 10 }) do ids[#ids + 1] = u.id if #ids == 10 then break end end
                local t0 = ngx.now()
                local results, errors = client:map(ids, function(id) return client.users:get(id) end,
                  { concurrency = 10 })
                local ok, errs = 0, 0
                for i = 1, #ids do
                  if results[i] and results[i].id == ids[i] then ok = ok + 1 end
                  if errors[i] ~= nil then errs = errs + 1 end
                end
                ngx.say(require("cjson").encode({ ok = ok, errs = errs, n = results.n, took = ngx.now() - t0 }))
            }
        }
        location = /uploads {
            content_by_lua_block {
                local ok = 0
                for i = 1, tonumber(ngx.var.arg_n) do
                  if client.files:upload{ data = "%PDF-1.4 " .. i, filename = "a.pdf" } then ok = ok + 1 end
                end
                ngx.say(ok)
            }
        }
        location = /initerr {
            content_by_lua_block { ngx.say(init_error or "none") }
        }
        location = /progress {
            content_by_lua_block {
                -- a client of its own (no token yet, no cache): its first call fetches one
                local c = require("hypatos").new{}
                local totals, calls = {}, 0
                local v, err = c:request("GET", "/users", { query = { limit = 3 },
                  progress = function(dlnow, dltotal)
                    calls = calls + 1
                    if dltotal > 0 then totals[tostring(dltotal)] = true end
                  end })
                c:close()
                local seen = {}
                for k in pairs(totals) do seen[#seen + 1] = k end
                ngx.say(require("cjson").encode({ ok = v ~= nil, err = err and tostring(err), calls = calls,
                  totals = table.concat(seen, ",") }))
            }
        }
        location = /token {
            content_by_lua_block {
                local t, err = client:token()
                ngx.say(t and "token" or tostring(err))
            }
        }
]]

local INIT = [[
        client = require("hypatos").new{ token_cache = require("hypatos.ngx").token_cache("hypatos"),
          backoff_base = 0.05 }
        local ok, err = pcall(function() return client.users:get("x") end)
        init_error = not ok and tostring(err) or "no error"
]]

describe("OpenResty driver", function()
  local srv, app
  lazy_setup(function()
    srv = helpers.start_server()
    app = assert(ngx_app.start{
      workers = 2,
      http = "    lua_shared_dict hypatos 1m;",
      init_worker = INIT,
      locations = HANDLERS,
      env = { HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id,
        HYPATOS_CLIENT_SECRET = srv.client_secret },
    })
  end)
  lazy_teardown(function()
    if app then app:stop() end
    if srv then srv:stop() end
  end)
  before_each(function() srv:reset() end)

  local function json_get(path)
    local status, body = app:get(path)
    assert.equal(200, status, body)
    return cjson.decode(body)
  end

  it("serves the README's configuration: a client from init_worker, a call per request", function()
    local seed = srv:control("GET", "/_mock/seed")
    local id = seed.users.ids and seed.users.ids[1] or assert(helpers.server_client(srv).users:list()).data[1].id
    local status, body = app:get("/u?id=" .. id)
    assert.equal(200, status, body)
    assert.equal(id, cjson.decode(body).id)
    local _, n = app:get("/users")
    assert.equal("57", n:match("%d+"))
  end)

  it("never blocks the worker: 20 requests with 0.5 s latency overlap, /ping stays fast", function()
    local dir, cleanup = helpers.tmpdir()
    local id = assert(helpers.server_client(srv).users:list()).data[1].id
    app:get("/u?id=" .. id) -- both workers may now hold a token; warm connections
    app:get("/u?id=" .. id)
    srv:fault{ path_pattern = "^/v2/users/", kind = "delay", delay = 0.5, count = -1 }
    local script = ("t0=$(date +%%s.%%N); for i in $(seq 20); do curl -s -o /dev/null -w '%%{http_code}\\n' "
      .. "'%s/u?id=%s' >> %s/codes & done; sleep 0.25; curl -s -o /dev/null -w '%%{time_total}\\n' '%s/ping' > %s/ping;"
      .. " wait; echo $(date +%%s.%%N) $t0 > %s/total"):format(app.url, id, dir, app.url, dir, dir)
    assert(os.execute(script))
    srv:control("DELETE", "/_mock/faults")
    local codes = helpers.read(dir .. "/codes")
    local ping = tonumber(helpers.read(dir .. "/ping"))
    local t1, t0 = helpers.read(dir .. "/total"):match("([%d.]+) ([%d.]+)")
    cleanup()
    local n200 = select(2, codes:gsub("200", ""))
    assert.equal(20, n200, codes)
    -- sequentially per worker this takes 5 s (10 × 0.5 s); overlapped about 0.5 s
    assert.is_true(tonumber(t1) - tonumber(t0) < 1.5, "burst took " .. (tonumber(t1) - tonumber(t0)) .. " s")
    assert.is_true(ping < 0.05, "/ping took " .. ping .. " s during the burst")
  end)

  it("counts the answer's time in meta.elapsed (the engine is told the time after the attempt)", function()
    local id = assert(helpers.server_client(srv).users:list()).data[1].id
    app:get("/u?id=" .. id) -- a token and a connection first
    srv:fault{ path_pattern = "^/v2/users/", kind = "delay", delay = 0.3, count = -1 }
    local r = json_get("/call?path=/users/" .. id)
    srv:control("DELETE", "/_mock/faults")
    assert.is_true(r.ok, r.message)
    -- nginx's clock counts milliseconds: 0.3 s may read as 0.2999…
    assert.is_true(r.elapsed >= 0.29 and r.elapsed < 2, "meta.elapsed = " .. tostring(r.elapsed))
  end)

  it("waits out a 429 with ngx.sleep and retries a 503", function()
    srv:fault{ { path = "/v2/companies", kind = "rate_limit", reset = 1 },
      { path = "/v2/companies", kind = "status", status = 503 } }
    local r = json_get("/call?path=/companies")
    assert.is_true(r.ok, cjson.encode(r))
    local seen = {}
    for _, e in ipairs(srv:stats().log) do
      if e.route == "GET /v2/companies" and e.status ~= 401 then seen[#seen + 1] = e.status end
    end
    assert.same({ 429, 503, 200 }, seen) -- (a 401 first when this worker's token predates the reset)
  end)

  it("never re-sends an upload that may have reached the server", function()
    srv:fault{ method = "POST", path = "/v2/files", kind = "close" }
    local r = json_get("/upload")
    assert.equal("network", r.kind, cjson.encode(r))
    assert.equal("unknown", r.outcome) -- the request went out, no status came back
    assert.equal(1, srv:stats().by_route["POST /v2/files"])
    r = json_get("/upload")
    assert.is_string(r.id, cjson.encode(r))
    local before = srv:stats().by_route["POST /v2/files"]
    srv:fault{ method = "POST", path = "/v2/files", kind = "close_mid_body" } -- stored, answer cut
    r = json_get("/upload")
    assert.equal("done", r.outcome, cjson.encode(r))
    assert.equal(201, r.status)
    assert.equal(before + 1, srv:stats().by_route["POST /v2/files"])
  end)

  it("leaves no idle connection behind an upload: 200 uploads, no more connections (issue 16 §2)", function()
    -- an upload (not idempotent) goes on a new connection of its own; before, each one was then
    -- kept alive in a pool named after it, where nothing would ever reuse it
    local port = tonumber(srv.url:match("^https?://[^/]-:(%d+)"))
    local function established()
      local n = 0
      for _, file in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
        local f = io.open(file)
        if f then
          for line in f:lines() do
            local rport, st = line:match("^%s*%d+: %x+:%x+ %x+:(%x+) (%x%x)")
            if rport and tonumber(rport, 16) == port and st == "01" then n = n + 1 end
          end
          f:close()
        end
      end
      return n
    end
    assert.equal(200, app:get("/uploads?n=1")) -- a token in the cache, the pools warm
    local before = established()
    local status, body = app:get("/uploads?n=200", 60)
    assert.equal(200, status, body)
    assert.equal("200", body:match("%d+"))
    local after = established()
    assert.is_true(after - before <= 4, ("%d connections to the server before, %d after"):format(before, after))
  end)

  it("streams an upload from a path and a download to a path", function()
    local dir, cleanup = helpers.tmpdir()
    local data = {}
    for i = 1, 40000 do data[i] = ("%07d\n"):format(i) end -- 320 kB
    data = "%PDF-1.4\n" .. table.concat(data)
    helpers.write(dir .. "/in.pdf", data)
    local r = json_get("/files?src=" .. dir .. "/in.pdf&dst=" .. dir .. "/out.pdf")
    assert.is_true(r.ok, cjson.encode(r))
    assert.equal(data, helpers.read(dir .. "/out.pdf"))
    cleanup()
  end)

  it("waits on a document with ngx.sleep", function()
    local c = helpers.server_client(srv)
    local doc = assert(c.documents:list({ state = { "done" } })).data[1]
    c:close()
    local _, body = app:get("/wait?id=" .. doc.id)
    assert.equal("done", body:match("%S+"))
  end)

  it("gives a call's progress its own transfer only, never the token request's", function()
    local r = json_get("/progress")
    assert.is_true(r.ok, r.err)
    assert.equal(1, srv:stats().token_requests) -- the call did fetch a token first
    assert.is_true(r.calls > 0)
    assert.matches("^%d+$", r.totals) -- one transfer's size only (the token answer's would add one)
  end)

  it("gets a token through client:token()", function()
    local _, body = app:get("/token")
    assert.equal("token", body:match("%S+"))
  end)

  it("runs client:map on ngx.thread: 10 calls with 0.3 s latency overlap", function()
    srv:fault{ path_pattern = "^/v2/users/", kind = "delay", delay = 0.3, count = -1 }
    local r = json_get("/map")
    srv:control("DELETE", "/_mock/faults")
    assert.equal(10, r.ok)
    assert.equal(0, r.errs) -- nil, err: the successes' meta is no error
    assert.equal(10, r.n)
    assert.is_true(r.took < 1.5, "took " .. r.took) -- 3 s one after another
  end)

  it("runs examples/openresty (what make demo-openresty shows)", function()
    local cmd = ("HYPATOS_BASE_URL=%s HYPATOS_CLIENT_ID=%s HYPATOS_CLIENT_SECRET=%s sh examples/openresty/demo.sh 2>&1")
      :format(srv.url, srv.client_id, srv.client_secret)
    local p = io.popen(cmd)
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.matches('"name":"Hypatos Demo GmbH"', out, 1, true)
    assert.matches('GET /users/%x+\n{[^\n]*"email":"[^"]+@', out)
    assert.matches('GET /user %(no id%)\n{[^\n]*"error":"bad_request"[^\n]*}\nHTTP 400\n', out)
  end)

  --- Runs a shell command in dir with only PATH and the server's three variables in its
  -- environment; returns whether it exited 0 and its output (stdout only with `stdout_only`).
  local function sh_in(dir, cmd, stdout_only)
    local function q(v) return "'" .. tostring(v):gsub("'", "'\\''") .. "'" end
    local p = io.popen(("cd %s && env -i PATH=%s HYPATOS_BASE_URL=%s HYPATOS_CLIENT_ID=%s HYPATOS_CLIENT_SECRET=%s " ..
      "sh -c %s %s"):format(q(dir), q(os.getenv("PATH")), q(srv.url), q(srv.client_id), q(srv.client_secret), q(cmd),
      stdout_only and "2>/dev/null" or "2>&1"))
    local out = p:read("a")
    return p:close(), out
  end

  --- GET http://127.0.0.1:port/path → status, body.
  local function get(port, path)
    local socket = require "socket"
    local c = socket.tcp()
    c:settimeout(10)
    if not c:connect("127.0.0.1", port) then return nil end
    c:send("GET " .. path .. " HTTP/1.0\r\nHost: x\r\n\r\n")
    local text, _, partial = c:receive("*a")
    c:close()
    text = text or partial
    return tonumber(text:match("^HTTP/%d%.%d (%d+)")), text:match("\r\n\r\n(.*)$")
  end

  --- Waits until a fixed port of a printed configuration is free (another run may hold it).
  local function wait_free(port)
    local socket = require "socket"
    for _ = 1, 300 do
      local s = socket.bind("127.0.0.1", port)
      if s then s:close() return end
      socket.sleep(0.1)
    end
    error("port " .. port .. " stayed busy")
  end

  --- Starts nginx with `start` in dir (as printed), then `check()`, then stops it with `stop`
  -- (as printed); the master is killed by its pid from `pidfile` if it is still there, then
  -- `cleanup()` runs (busted keeps one `finally` per test: this one replaces the caller's).
  local function printed_nginx(dir, start, stop, pidfile, port, check, cleanup)
    wait_free(port)
    local ok, out = sh_in(dir, start)
    local pid = tonumber(helpers.read(dir .. "/" .. pidfile) or "")
    finally(function()
      if pid and helpers.alive(pid) then os.execute("kill -QUIT " .. pid) end
      for _ = 1, 100 do -- gone before its directory is removed
        if not (pid and helpers.alive(pid)) then break end
        require("socket").sleep(0.05)
      end
      cleanup()
    end)
    assert.is_true(ok, start .. ": " .. out)
    assert.is_number(pid, "no pid file " .. pidfile)
    for _ = 1, 100 do
      if get(port, "/") then break end
      require("socket").sleep(0.05)
    end
    check()
    ok, out = sh_in(dir, stop)
    assert.is_true(ok, stop .. ": " .. out)
    for _ = 1, 100 do
      if not helpers.alive(pid) then break end
      require("socket").sleep(0.05)
    end
    assert.is_false(helpers.alive(pid), "nginx stopped by: " .. stop)
  end

  -- issue 18: the README's configuration was a fragment (no main context, no HYPATOS_BASE_URL,
  -- no resolver); now it is complete. Only /path/to/hypatos is replaced, as the README says.
  it("runs the README's nginx configuration and commands as printed, against the local server", function()
    local readme = assert(helpers.read("README.md"))
    local at = assert(readme:find("<!-- spec/70 extracts this configuration", 1, true), "the README's marker")
    local _, conf_end, conf = readme:find("```nginx\n(.-\n)```\n", at)
    assert.is_string(conf, "an nginx block after the marker")
    local cmds_at, _, cmds = readme:find("```sh\n(.-\n)```\n", conf_end)
    assert.equal(conf_end + 2, cmds_at, "the commands follow the configuration")
    local lines = {}
    for l in cmds:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    assert.matches("^mkdir %-p logs && nginx %-p ", lines[1])
    assert.matches("^curl ", lines[2])
    assert.matches("^kill %-QUIT ", lines[3])
    local root = io.popen("pwd"):read("*l")
    local dir, rm = helpers.tmpdir()
    finally(rm) -- until printed_nginx takes it over
    local n
    conf, n = conf:gsub("/path/to/hypatos", root)
    assert.is_true(n >= 3, "lua_package_path and lua_package_cpath name the checkout")
    helpers.write(dir .. "/hypatos.conf", conf)
    local port = tonumber(conf:match("listen 127%.0%.0%.1:(%d+);"))
    printed_nginx(dir, lines[1], lines[3], "logs/nginx.pid", port, function()
      local ok, out = sh_in(dir, lines[2], true) -- the README's curl line: a user of the seed data
      assert.is_true(ok, out)
      assert.equal("oliver.ivanova@hypatos.ai\n", out)
      local status, body = get(port, "/u")        -- no ?id=: 400, not the 500 of a raised misuse
      assert.equal(400, status, body)
      assert.matches("id= is missing", body, 1, true)
      status, body = get(port, "/u?id=aaaaaaaaaaaaaaaaaaaaaaaa")
      assert.equal(404, status, body)
      assert.matches("hypatos: http 404", body, 1, true)
    end, rm)
  end)

  -- issue 18: `nginx -p "$PWD/" -c examples/openresty/nginx.conf` on a fresh clone failed with
  -- mkdir() ".../logs/tmp" failed: the header's commands, as printed, in a fresh checkout
  it("starts examples/openresty/nginx.conf in a fresh checkout as its header says; misuse answers 400", function()
    local text = assert(helpers.read("examples/openresty/nginx.conf"))
    local start = assert(text:match("\n#   ([^\n]*nginx %-p [^\n]*)\n"), "the header's start command")
    start = start:gsub("%s%s+%(.*%)$", "") -- a remark after the command, "   (from the repository root)"
    local stop = text:match("\n#   (kill %-QUIT [^\n]*)\n") or "echo 'the header prints no stop command'; false"
    local base, rm = helpers.tmpdir()
    finally(rm) -- until printed_nginx takes it over
    -- the files a clone has (tracked, and new ones git does not ignore: no logs/, no build/); `make`
    -- is replaced by a copy of what it builds that the example loads; readable by nginx's workers
    -- (started as root, they run as nobody)
    local dir = base .. "/hypatos"
    assert.is_true(os.execute(("chmod 755 %s && mkdir -p %s/build/luajit/hypatos && git ls-files -z --cached " ..
      "--others --exclude-standard | tar --null -T - -cf - | tar -xf - -C %s && cp %s/hypatos/core.so " ..
      "%s/build/luajit/hypatos/"):format(base, dir, dir, "build/luajit", dir)))
    assert.is_nil(helpers.read(dir .. "/logs/openresty-example.pid"))
    local seed_id = assert(helpers.server_client(srv).users:list({ limit = 1 })).data[1].id
    printed_nginx(dir, start, stop, "logs/openresty-example.pid", 8931, function()
      local status, body = get(8931, "/companies")
      assert.equal(200, status, body)
      assert.matches('"name":"Hypatos Demo GmbH"', body, 1, true)
      status, body = get(8931, "/user?id=" .. seed_id)
      assert.equal(200, status, body)
      assert.equal(seed_id, cjson.decode(body).id)
      status, body = get(8931, "/user")           -- users:get(nil) would raise: the handler answers 400
      assert.equal(400, status, body)
      assert.equal('query parameter "id" is missing: GET /user?id=<user id>', cjson.decode(body).message)
      status, body = get(8931, "/user?id=zz")
      assert.equal(400, status, body)
      status, body = get(8931, "/user?id=aaaaaaaaaaaaaaaaaaaaaaaa")
      assert.equal(404, status, body)
      assert.equal("http", cjson.decode(body).error)
    end, rm)
    assert.is_nil(helpers.read(dir .. "/logs/openresty-example.pid"), "nginx removed its pid file")
  end)

  it("refuses a call from init_worker with an error that says where to call from", function()
    local _, body = app:get("/initerr")
    assert.matches("cannot run in nginx's init_worker phase", body, 1, true)
    assert.matches("content_by_lua", body, 1, true)
  end)
end)

describe("OpenResty driver over TLS", function()
  local srv
  lazy_setup(function() srv = helpers.start_server({ tls = true }) end)
  lazy_teardown(function() if srv then srv:stop() end end)
  before_each(function() srv:reset() end)

  local function app_with(http, init, base_url)
    return assert(ngx_app.start{
      workers = 1, http = http,
      init_worker = "        client = require('hypatos').new{" .. (init or "") .. "}",
      locations = HANDLERS,
      env = { HYPATOS_BASE_URL = base_url or srv.tls_url, HYPATOS_CLIENT_ID = srv.client_id,
        HYPATOS_CLIENT_SECRET = srv.client_secret },
    })
  end

  describe("through a proxy", function()
    local hostile = require "spec.fixtures.hostile"
    local proxy
    before_each(function()
      proxy = assert(hostile.start("spec/fixtures/connect_proxy.lua", { srv.tls_port }))
    end)
    after_each(function() if proxy then proxy:stop() end end)

    it("tunnels https with CONNECT (the proxy option), verifying the server's name", function()
      -- api.hypatos.test is not loopback (and not resolvable): only the proxy can reach it
      local base = ("https://api.hypatos.test:%d/v2"):format(srv.tls_port)
      local app = app_with("    lua_ssl_trusted_certificate " .. srv.ca_file .. ";",
        ("proxy = 'http://127.0.0.1:%d'"):format(proxy.port), base)
      local ok, err = pcall(function()
        local status, body = app:get("/call?path=/companies")
        assert.equal(200, status)
        assert.is_true(cjson.decode(body).ok, body)
        local seen = proxy:requests()
        assert.is_true(#seen >= 1)
        for _, line in ipairs(seen) do
          assert.equal(("CONNECT api.hypatos.test:%d HTTP/1.1"):format(srv.tls_port), line)
        end
      end)
      app:stop()
      assert(ok, err)
    end)

    it("never sends loopback traffic to the proxy", function()
      local app = app_with("    lua_ssl_trusted_certificate " .. srv.ca_file .. ";",
        ("proxy = 'http://127.0.0.1:%d'"):format(proxy.port))
      local ok, err = pcall(function()
        local status, body = app:get("/call?path=/companies")
        assert.equal(200, status)
        assert.is_true(cjson.decode(body).ok, body)
        assert.same({}, proxy:requests())
      end)
      app:stop()
      assert(ok, err)
    end)
  end)

  it("never shows a proxy's user info or query in an error (issue 16 §7)", function()
    -- the proxy environment of the workers (api.hypatos.test is not loopback: proxies apply)
    local base = ("https://api.hypatos.test:%d/v2"):format(srv.tls_port)
    local cases = {
      { "http://user:SECRET@127.0.0.1:9", "a proxy with user info is refused" },
      { "user:SECRET@127.0.0.1:9", "a proxy with user info is refused" },
      { "socks5://user:SECRET@127.0.0.1:9", "a proxy with user info is refused" },
      { "socks5://127.0.0.1:9/?token=SECRET", "only http:// proxies are supported inside nginx, got socks5://127.0.0.1:9/" },
    }
    for _, case in ipairs(cases) do
      local app = assert(ngx_app.start{
        workers = 1, locations = HANDLERS,
        init_worker = "        client = require('hypatos').new{ max_retries = 0 }",
        env = { HYPATOS_BASE_URL = base, HYPATOS_CLIENT_ID = srv.client_id,
          HYPATOS_CLIENT_SECRET = srv.client_secret, https_proxy = case[1] },
      })
      local ok, err = pcall(function()
        local status, body = app:get("/call?path=/companies")
        assert.equal(200, status, body)
        local r = cjson.decode(body)
        assert.equal("network", r.kind, body)
        assert.is_nil(body:find("SECRET", 1, true), body)
        assert.matches(case[2], r.message, 1, true)
      end)
      app:stop()
      assert(ok, err)
    end
  end)

  it("verifies the server against lua_ssl_trusted_certificate", function()
    local app = app_with("    lua_ssl_trusted_certificate " .. srv.ca_file .. ";")
    local ok, err = pcall(function()
      local status, body = app:get("/call?path=/companies")
      assert.equal(200, status)
      assert.is_true(cjson.decode(body).ok, body)
    end)
    app:stop()
    assert(ok, err)
  end)

  it("fails at once as a TLS error without a trusted certificate", function()
    local app = app_with("")
    local ok, err = pcall(function()
      local _, body = app:get("/call?path=/companies")
      local okj, r = pcall(cjson.decode, body)
      assert.equal(0, srv:stats().token_requests) -- refused before anything was sent
      assert(okj, body .. "\n" .. app:error_log())
      assert.equal("network", r.kind, body) -- the token request is the first to fail
      -- ngx_lua says why ("18: self-signed certificate"), except when it reports the failed
      -- verification as a closed socket
      assert.matches("TLS handshake failed: ", r.message, 1, true)
      assert.truthy(r.message:find("self-signed certificate", 1, true)
        or r.message:find("did not verify", 1, true), r.message)
    end)
    app:stop()
    assert(ok, err)
  end)
end)

describe("OpenResty token cache across workers", function()
  -- 4 workers share one lua_shared_dict: fetches are single-flight across them
  local LOCATIONS = [[
        location = /u {
            content_by_lua_block {
                local u, err = client.users:get(ngx.var.arg_id)
                ngx.say(u and "ok" or tostring(err))
            }
        }
        location = /yield {
            content_by_lua_block {
                local u, err = yclient.users:get(ngx.var.arg_id)
                ngx.say(u and ("ok " .. hooks) or tostring(err))
            }
        }
        location = /wrong {
            content_by_lua_block {
                local u, err = wrong.users:get(ngx.var.arg_id)
                ngx.say(u and "ok" or tostring(err))
            }
        }
        location = /many {
            content_by_lua_block {
                -- 10 clients of this worker with the same credentials, at once
                local hypatos, threads, ok = require("hypatos"), {}, 0
                for i = 1, 10 do
                    local c = hypatos.new{ token_cache = require("hypatos.ngx").token_cache("hypatos") }
                    threads[i] = ngx.thread.spawn(function() return c.users:get(ngx.var.arg_id) end)
                end
                for i = 1, 10 do
                    local _, u = ngx.thread.wait(threads[i])
                    if u then ok = ok + 1 end
                end
                ngx.say(ok)
            }
        }
        location = /dict {
            content_by_lua_block {
                local dict = ngx.shared.hypatos
                if ngx.var.arg_flush then dict:flush_all() dict:flush_expired() ngx.say("flushed") return end
                for _, k in ipairs(dict:get_keys(0)) do ngx.say(k, " ", tostring(dict:get(k))) end
            }
        }
]]
  local SHARED_INIT = [[
        client = require("hypatos").new{ token_cache = require("hypatos.ngx").token_cache("hypatos") }
        -- the same client id with a wrong secret, on the same dict
        wrong = require("hypatos").new{ client_secret = "wrong-secret",
          client_id = os.getenv("HYPATOS_CLIENT_ID"), token_cache = require("hypatos.ngx").token_cache("hypatos") }
        -- a cache and hooks that yield (ngx.sleep) in every call: they run in Lua, between steps
        local store = {}
        hooks = 0
        yclient = require("hypatos").new{
          token_cache = {
            get = function(key) ngx.sleep(0.001) return store[key] end,
            set = function(key, token) ngx.sleep(0.001) store[key] = token end,
          },
          on_request = function() ngx.sleep(0) hooks = hooks + 1 end,
          on_response = function() ngx.sleep(0) hooks = hooks + 1 end,
        }
]]
  local srv, app, id
  lazy_setup(function()
    srv = helpers.start_server()
    id = assert(helpers.server_client(srv).users:list()).data[1].id
    srv:reset()
    app = assert(ngx_app.start{
      workers = 4,
      http = "    lua_shared_dict hypatos 1m;",
      init_worker = SHARED_INIT,
      locations = LOCATIONS,
      env = { HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id,
        HYPATOS_CLIENT_SECRET = srv.client_secret },
    })
  end)
  lazy_teardown(function()
    if app then app:stop() end
    if srv then srv:stop() end
  end)

  --- n concurrent GETs of path on the app (curl, in the background); returns the bodies.
  local function burst(n, path)
    local dir, cleanup = helpers.tmpdir()
    local script = ("for i in $(seq %d); do curl -s '%s%s' > %s/out.$i & done; wait")
      :format(n, app.url, path, dir)
    assert(os.execute(script))
    local bodies = {}
    for i = 1, n do bodies[i] = helpers.read(dir .. "/out." .. i) end
    cleanup()
    return bodies
  end

  it("makes exactly one token request for a burst at start-up, and one after a revocation", function()
    srv:fault{ path = "/v2/auth/token", kind = "delay", delay = 0.3 } -- the fetch is slow: all wait for it
    for _, b in ipairs(burst(40, "/u?id=" .. id)) do assert.equal("ok\n", b) end
    assert.equal(1, srv:stats().token_requests)
    srv:control("POST", "/_mock/revoke")
    srv:fault{ path = "/v2/auth/token", kind = "delay", delay = 0.3 }
    for _, b in ipairs(burst(20, "/u?id=" .. id)) do assert.equal("ok\n", b) end
    local st = srv:stats()
    if st.token_requests ~= 2 then -- 20 concurrent 401s, one new token; else say what happened
      local trace = {}
      for _, e in ipairs(st.log) do
        trace[#trace + 1] = ("%.3f %s %s %s"):format(e.at, e.method, e.path, tostring(e.status))
      end
      error(("%d token requests in all (2 expected); the server's log:\n%s"):format(st.token_requests,
        table.concat(trace, "\n")))
    end
  end)

  --- Empties the shared dict and the server's stats (a fresh start for a test).
  local function fresh()
    srv:reset()
    assert.equal(200, (app:get("/dict?flush=1")))
  end

  it("never gives a token to a client whose secret is wrong, and keeps secrets out of the dict", function()
    fresh()
    for _, b in ipairs(burst(4, "/wrong?id=" .. id)) do assert.matches("auth 401", b) end
    for _, b in ipairs(burst(4, "/u?id=" .. id)) do assert.equal("ok\n", b) end -- the right client caches a token
    for _, b in ipairs(burst(8, "/wrong?id=" .. id)) do assert.matches("auth 401", b) end
    local _, dump = app:get("/dict")
    assert.matches("hypatos%-token:v1:%x+ ", dump)
    assert.is_nil(dump:find(srv.client_secret, 1, true), dump)
    assert.is_nil(dump:find("wrong-secret", 1, true), dump)
    assert.is_nil(dump:find(srv.client_id, 1, true), dump)
  end)

  it("makes one token request for 10 clients of one worker that start together", function()
    fresh()
    srv:fault{ path = "/v2/auth/token", kind = "delay", delay = 0.3 }
    local _, body = app:get("/many?id=" .. id)
    assert.equal("10\n", body)
    assert.equal(1, srv:stats().token_requests)
  end)

  it("releases the lock of a refused fetch at once and remembers the refusal", function()
    fresh()
    srv:fault{ path = "/v2/auth/token", kind = "delay", delay = 0.3 }
    local t0 = helpers.now()
    local bodies = burst(12, "/wrong?id=" .. id) -- spread over the 4 workers
    local took = helpers.now() - t0
    for _, b in ipairs(bodies) do assert.matches("auth 401", b) end
    assert.equal(1, srv:stats().token_requests) -- one refusal, shared
    assert.is_true(took < 3, ("the others waited for the lock's TTL: %.2f s"):format(took))
    local _, again = app:get("/wrong?id=" .. id)
    assert.matches("remembered by the token cache", again)
    assert.equal(1, srv:stats().token_requests)
  end)

  it("lets a token cache and hooks yield", function()
    local bodies = burst(4, "/yield?id=" .. id)
    for _, b in ipairs(bodies) do assert.matches("^ok %d+\n$", b) end
    assert.is_nil(app:error_log():find("yield across", 1, true))
  end)
end)
