-- spec/72-quota_pressure_spec.lua — every driver makes progress under quota pressure
-- (issue 16 §0). Inside nginx a wait shorter than a millisecond became ngx.sleep(0),
-- which only yields, and ngx.now() (the event loop's cached time) did not move: requests
-- spun at 100 % CPU forever, writing "ngx.sleep(0) called without delayed events patch"
-- to the error log in a tight loop. Here the load that showed it — a 2-worker nginx with
-- the shared-dict token cache, 400 requests 32 at a time, each a users:get, against a
-- quota of 20 requests/s — must finish with every request answered within the client's
-- deadline and without that warning; and so must the blocking driver (4 processes) and
-- client:map (32 tasks) under the same quota.
local helpers = require "spec.helpers"
local ngx_app = require "spec.fixtures.ngx_app"

local DEADLINE = 40 -- the client's deadline per call (seconds); 400 calls at 20/s take 20 s

describe("under quota pressure (20 requests/s)", function()
  local srv, id
  lazy_setup(function()
    srv = helpers.start_server{ config = { quota = 20, window = 1 } }
    id = assert(helpers.server_client(srv).users:list{ limit = 1 }).data[1].id
  end)
  lazy_teardown(function() if srv then srv:stop() end end)
  before_each(function() srv:reset() end) -- back to the start-up config: 20 per 1 s window

  it("nginx, 2 workers, 400 requests 32 at a time: all answered in time, no ngx.sleep(0)", function()
    local app = assert(ngx_app.start{
      workers = 2,
      http = "    lua_shared_dict hypatos 1m;",
      init_worker = ([[
        client = require("hypatos").new{ token_cache = require("hypatos.ngx").token_cache("hypatos"),
          deadline = %d }
      ]]):format(DEADLINE),
      locations = [[
        location = /u { content_by_lua_block {
          local u, err = client.users:get(ngx.var.arg_id)
          if not u then ngx.status = 502 ngx.say(tostring(err)) return end
          ngx.say(u.id)
        } }
      ]],
      env = { HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id,
        HYPATOS_CLIENT_SECRET = srv.client_secret },
    })
    local dir, cleanup = helpers.tmpdir()
    -- curl gives up 10 s after the client's deadline: a request still running then is stuck.
    -- The load runs in the background while the error log is watched: a worker that spins
    -- writes gigabytes of warnings, so nginx is stopped at once when the log grows past 8 MiB.
    local cmd = ("(seq 400 | xargs -P 32 -I{} curl -s -m %d -o /dev/null -w '%%{http_code} %%{time_total}\\n' "
      .. "'%s/u?id=%s' > %s/out; touch %s/done) &"):format(DEADLINE + 10, app.url, id, dir, dir)
    local t0 = helpers.now()
    os.execute(cmd)
    local runaway
    while not helpers.read(dir .. "/done") do
      if app:error_log_size() > 8 * 1048576 then
        runaway = app:error_log(2000)
        app:stop() -- the stuck requests end with nginx; the load generator finishes
      end
      os.execute("sleep 0.5")
    end
    local took = helpers.now() - t0
    local out = helpers.read(dir .. "/out") or ""
    cleanup()
    local log = runaway or app:error_log()
    app:stop()
    assert.is_nil(runaway, "the error log grew past 8 MiB: " .. tostring(runaway))
    local codes, slowest = {}, 0
    for code, t in out:gmatch("(%d+) ([%d.]+)") do
      codes[code] = (codes[code] or 0) + 1
      slowest = math.max(slowest, tonumber(t))
    end
    assert.equal(400, codes["200"], ("answers %s after %.1f s"):format(out:gsub("%d+ [%d.]+\n", ""), took))
    assert.is_true(slowest < DEADLINE, "a request took " .. slowest .. " s")
    assert.is_nil(log:find("ngx.sleep(0)", 1, true), "the error log warns about ngx.sleep(0)")
    assert.is_nil(log:find("[error]", 1, true), log:sub(1, 2000))
  end)

  it("nginx, 2 workers on hypatos.ngx.store: one token and one quota, no 429", function()
    local app = assert(ngx_app.start{
      workers = 2,
      http = "    lua_shared_dict hypatos 1m;",
      init_worker = ([[
        client = require("hypatos").new{ store = require("hypatos.ngx").store("hypatos"), deadline = %d }
      ]]):format(DEADLINE),
      locations = [[
        location = /u { content_by_lua_block {
          local u, err = client.users:get(ngx.var.arg_id)
          if not u then ngx.status = 502 ngx.say(tostring(err)) return end
          ngx.say(u.id)
        } }
      ]],
      env = { HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id,
        HYPATOS_CLIENT_SECRET = srv.client_secret },
    })
    local dir, cleanup = helpers.tmpdir()
    os.execute(("seq 200 | xargs -P 32 -I{} curl -s -m %d -o /dev/null -w '%%{http_code}\\n' '%s/u?id=%s' > %s/out")
      :format(DEADLINE + 10, app.url, id, dir))
    local out = helpers.read(dir .. "/out") or ""
    cleanup()
    app:stop()
    assert.equal(200, select(2, out:gsub("200", "")), out)
    local st = srv:stats()
    assert.is_nil(st.statuses["429"]) -- each worker alone drew dozens
    assert.equal(1, st.token_requests)
  end)

  --- Runs `procs` load_client.lua processes at once; returns their output lines.
  local function run_clients(procs, mode, n, concurrency)
    local dir, cleanup = helpers.tmpdir()
    local env = helpers.lua_env_words() .. (" HYPATOS_BASE_URL='%s' HYPATOS_CLIENT_ID='%s' HYPATOS_CLIENT_SECRET='%s'")
      :format(srv.url, srv.client_id, srv.client_secret)
    local parts = {}
    for p = 1, procs do
      parts[#parts + 1] = ("%s lua5.4 spec/fixtures/load_client.lua %s %d %d %d %s > %s/%d 2>&1 &")
        :format(env, mode, n, concurrency, DEADLINE, id, dir, p)
    end
    os.execute(table.concat(parts, " ") .. " wait")
    local lines = {}
    for p = 1, procs do lines[p] = helpers.read(dir .. "/" .. p) or "" end
    cleanup()
    return lines
  end

  it("the blocking driver: 4 processes, 50 calls each, all answered in time", function()
    for _, line in ipairs(run_clients(4, "blocking", 50, 1)) do
      assert.truthy(line:find("^ok=50 failed=0"), line)
      assert.is_true(tonumber(line:match("slowest=([%d.]+)")) < DEADLINE, line)
    end
  end)

  it("client:map: 200 calls at concurrency 32, all answered in time", function()
    local line = run_clients(1, "map", 200, 32)[1]
    assert.truthy(line:find("^ok=200 failed=0"), line)
    assert.is_true(tonumber(line:match("slowest=([%d.]+)")) < DEADLINE, line)
  end)
end)
