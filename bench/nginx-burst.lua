--- bench/nginx-burst.lua — benchmark "nginx-burst" of `make bench` (bench/run.lua): the
-- OpenResty use of issue 8 §3, blocking libcurl against the cosocket driver, side by side.
--
-- One application nginx (Debian nginx + ngx_lua on LuaJIT, 2 workers; spec/fixtures/ngx_app.lua)
-- in front of the local Hypatos server, which answers GET /v2/users/{id} after 0.5 s (a delay
-- fault). Each worker creates two clients in init_worker_by_lua:
--   * blocking: hypatos.new{ driver = "curl" } (libcurl, blocks the worker), location /blocking;
--   * cosocket: hypatos.new{ token_cache = hypatos.ngx.token_cache("hypatos") } (the default
--     driver inside nginx), location /cosocket.
-- A burst: 20 concurrent requests (curl processes started at once), each making one
-- client.users:get(id); 0.25 s later one GET /ping (a location without the library). Reported
-- per side: the burst's total time (start to the last answer) and /ping's time during the burst;
-- medians over --burst-rounds rounds, the order of the sides swapped every round, after a
-- warm-up (tokens and connections in both workers, without latency).
-- Targets: cosocket burst < 1.5 s, /ping < 50 ms during the burst (blocking: about 5 s and
-- seconds, 10 × 0.5 s per worker).

local lib = require "bench.lib"
local sh, read_file, median = lib.sh, lib.read_file, lib.median
local ngx_app = require "spec.fixtures.ngx_app"

local M = { name = "nginx-burst" }

M.options = {
  { "--burst-rounds", "burst_rounds", 3, "rounds of the nginx-burst benchmark (each about 6 s)", min = 1 },
}

local LATENCY, CONCURRENT = 0.5, 20

local LOCATIONS = [[
        location = /blocking {
            content_by_lua_block {
                local u, err = blocking.users:get(ngx.var.arg_id)
                if not u then ngx.status = 502 ngx.say(tostring(err)) return end
                ngx.say(u.id)
            }
        }
        location = /cosocket {
            content_by_lua_block {
                local u, err = client.users:get(ngx.var.arg_id)
                if not u then ngx.status = 502 ngx.say(tostring(err)) return end
                ngx.say(u.id)
            }
        }
]]

local INIT = [[
        local hypatos = require "hypatos"
        blocking = hypatos.new{ driver = "curl" }
        client = hypatos.new{ token_cache = require("hypatos.ngx").token_cache("hypatos") }
]]

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local hypatos = require "hypatos"
  local c = hypatos.new({ client_id = srv.client_id, client_secret = srv.client_secret, base_url = srv.url })
  local id = assert(c.users:list({ limit = 1 })).data[1].id
  c:close()

  local app, dir
  local function cleanup()
    pcall(srv.control, srv, "DELETE", "/_mock/faults")
    if app then app:stop() end
    if dir then os.execute("rm -rf " .. sh(dir)) end
  end

  local function body()
    dir = lib.mktemp_dir("burst")
    app = assert(ngx_app.start{ workers = 2, http = "    lua_shared_dict hypatos 1m;", init_worker = INIT,
      locations = LOCATIONS, env = { HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id,
        HYPATOS_CLIENT_SECRET = srv.client_secret } })
    -- warm-up: tokens and keep-alive connections in both workers (HTTP/1.0: a new connection
    -- per request, which nginx hands to either worker)
    for _ = 1, 12 do
      for _, loc in ipairs({ "/blocking", "/cosocket" }) do
        local status, text = app:get(loc .. "?id=" .. id)
        if status ~= 200 then error(("nginx-burst: warm-up %s: %s %s"):format(loc, tostring(status), text), 0) end
      end
    end
    srv:fault{ path_pattern = "^/v2/users/", kind = "delay", delay = LATENCY, count = -1 }

    local function burst(loc)
      os.execute("rm -f " .. sh(dir) .. "/*")
      local script = ("t0=$(date +%%s.%%N); for i in $(seq %d); do curl -s -o /dev/null -w '%%{http_code}\\n'"
        .. " '%s%s?id=%s' >> %s/codes & done; sleep 0.25; curl -s -o /dev/null -w '%%{time_total}\\n' '%s/ping'"
        .. " > %s/ping; wait; echo $(date +%%s.%%N) $t0 > %s/total"):format(CONCURRENT, app.url, loc, id, dir,
        app.url, dir, dir)
      if os.execute(script) ~= true then error("nginx-burst: the burst script failed", 0) end
      local codes = read_file(dir .. "/codes") or ""
      local n200 = select(2, codes:gsub("200", ""))
      if n200 ~= CONCURRENT then error(("nginx-burst: %s: %d of %d answered 200: %s"):format(loc, n200,
        CONCURRENT, codes), 0) end
      local t1, t0 = (read_file(dir .. "/total") or ""):match("([%d.]+) ([%d.]+)")
      return tonumber(t1) - tonumber(t0), tonumber(read_file(dir .. "/ping"))
    end

    local sides = { { name = "blocking (libcurl)", loc = "/blocking" }, { name = "cosocket", loc = "/cosocket" } }
    print(("benchmark nginx-burst: nginx + ngx_lua (LuaJIT), 2 workers, a client per worker from init_worker;"
      .. " %d concurrent requests of one users:get each, %.1f s server latency; /ping 0.25 s into the burst;"
      .. " %d rounds alternating"):format(CONCURRENT, LATENCY, args.burst_rounds))
    for _, s in ipairs(sides) do s.total, s.ping = {}, {} end
    for round = 1, args.burst_rounds do
      local order = round % 2 == 1 and { sides[1], sides[2] } or { sides[2], sides[1] }
      for _, s in ipairs(order) do
        local total, ping = burst(s.loc)
        s.total[round], s.ping[round] = total, ping
        io.stderr:write(("  round %d %-20s burst %6.2f s, /ping %8.1f ms\n"):format(round, s.name, total, ping * 1e3))
      end
    end
    for _, s in ipairs(sides) do s.total_m, s.ping_m = median(s.total), median(s.ping) end
    local b, n = sides[1], sides[2]
    print(("  %-20s %10s %14s"):format("", "burst", "/ping"))
    for _, s in ipairs(sides) do print(("  %-20s %8.2f s %11.1f ms"):format(s.name, s.total_m, s.ping_m * 1e3)) end
    print(("ratios blocking/cosocket, medians of %d rounds: burst %.1fx, /ping %.0fx"):format(args.burst_rounds,
      b.total_m / n.total_m, b.ping_m / n.ping_m))
    ctx.check("nginx-burst: cosocket burst of 20 < 1.5 s", n.total_m < 1.5,
      ("%.2f s (blocking %.2f s, %.1fx)"):format(n.total_m, b.total_m, b.total_m / n.total_m))
    ctx.check("nginx-burst: cosocket /ping during the burst < 50 ms", n.ping_m < 0.05,
      ("%.1f ms (blocking %.0f ms)"):format(n.ping_m * 1e3, b.ping_m * 1e3))
    return { benchmark = "nginx-burst", rounds = args.burst_rounds, latency_s = LATENCY, concurrent = CONCURRENT,
      blocking = { burst_s = b.total_m, ping_s = b.ping_m }, cosocket = { burst_s = n.total_m, ping_s = n.ping_m },
      burst_ratio = b.total_m / n.total_m }
  end

  return lib.finally(body, cleanup)
end

return M
