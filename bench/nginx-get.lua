--- bench/nginx-get.lua — benchmark "nginx-get" of `make bench` (bench/run.lua): the per-request
-- cost of `client.users:get(id)` inside nginx (issue 19), side by side with a floor written here.
--
-- One application nginx (Debian nginx + ngx_lua on LuaJIT, ONE worker, so that its pid is known;
-- spec/fixtures/ngx_app.lua) in front of the local Hypatos server, two locations:
--   /hypatos  client.users:get(ID) — the client created once in init_worker_by_lua (the default
--             driver inside nginx: cosockets), as the README recommends;
--   /floor    the least a hand-written handler does for the same answer: one fixed request
--             (`GET /v2/users/ID` with the client's token) over a pooled `ngx.socket.tcp`
--             (`setkeepalive`), the status line and the header lines read with `receive("*l")`,
--             the body with `receive(Content-Length)`, then `cjson.decode` (lua-cjson).
-- Both answer the user's id. wrk (one thread, --nginx-get-connections connections, 16 by default)
-- loads one location for --nginx-get-seconds; the worker's CPU (utime + stime from
-- /proc/<pid>/stat) over that window divided by the requests wrk completed is the CPU per
-- request; requests/s is wrk's. Rounds alternate the order of the sides; the ratios checked
-- are medians of the per-round ratios (the two sides of a round saw the same machine).
-- lua-resty-http, the peer the issue names, is not packaged in Debian 12: the floor (raw
-- cosocket + cjson, stricter than lua-resty-http, which does more per request) stands in.
-- Target: hypatos worker CPU per request ≤ 1.0× the floor's.

local lib = require "bench.lib"
local sh, capture, read_file, median, minmax, thousands = lib.sh, lib.capture, lib.read_file, lib.median,
  lib.minmax, lib.thousands

local M = { name = "nginx-get" }

M.options = {
  { "--nginx-get-rounds", "nginx_get_rounds", 5, "rounds of the nginx-get benchmark (both sides each)", min = 1 },
  { "--nginx-get-seconds", "nginx_get_seconds", 4, "seconds of wrk load per side and round (nginx-get)", min = 1 },
  { "--nginx-get-connections", "nginx_get_connections", 16, "wrk connections (nginx-get)", min = 1 },
}

local TARGET = 1.0

-- @ID@, @HOST@, @PORT@, @PATH@ are filled in by M.run.
local LOCATIONS = [[
        location = /hypatos {
            content_by_lua_block {
                local u, err = client.users:get("@ID@")
                if not u then ngx.status = 502 ngx.say(tostring(err)) return end
                ngx.say(u.id)
            }
        }
        location = /floor {
            content_by_lua_block {
                if not floor_request then
                    local tok = assert(client:token())
                    floor_request = "GET @PATH@ HTTP/1.1\r\nHost: @HOST@:@PORT@\r\nAuthorization: Bearer "
                        .. tok.access_token .. "\r\nAccept: application/json\r\n\r\n"
                end
                local sock = ngx.socket.tcp()
                sock:settimeouts(10000, 10000, 10000)
                local ok, err = sock:connect("@HOST@", @PORT@)
                if not ok then ngx.status = 502 ngx.say(err) return end
                sock:send(floor_request)
                local line = sock:receive("*l")
                local status = line and tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
                local len
                while true do
                    local h = sock:receive("*l")
                    if not h then ngx.status = 502 ngx.say("header") return end
                    if h == "" then break end
                    local n = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
                    if n then len = tonumber(n) end
                end
                local body = len and sock:receive(len)
                if status ~= 200 or not body then ngx.status = 502 ngx.say("status ", status) return end
                sock:setkeepalive(60000, 32)
                local u = cjson.decode(body)
                ngx.say(u.id)
            }
        }
]]

local INIT = [[
        cjson = require "cjson"
        client = require("hypatos").new{}
]]

-- CPU seconds (user + sys) of a process, from /proc/<pid>/stat.
local ticks
local function cpu_s(pid)
  local rest = (read_file("/proc/" .. pid .. "/stat") or ""):match("%) (.*)$")
  if not rest then return nil end
  local f = {}
  for x in rest:gmatch("%S+") do f[#f + 1] = x end
  ticks = ticks or tonumber(capture("getconf CLK_TCK 2>/dev/null") or "") or 100
  return (tonumber(f[12]) + tonumber(f[13])) / ticks
end

-- Runs wrk against url → requests completed, requests/s; raises on errors or non-2xx answers.
local function wrk(url, seconds, connections)
  local out = capture(("wrk -t1 -c%d -d%ds %s 2>&1"):format(connections, seconds, sh(url))) or ""
  local n = tonumber(out:match("(%d+) requests in"))
  local rps = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
  if not n or not rps then error("nginx-get: wrk failed: " .. out, 0) end
  if out:find("Non%-2xx") or out:find("Socket errors") then error("nginx-get: wrk saw errors: " .. out, 0) end
  return n, rps
end

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  if not (capture("command -v wrk") or ""):match("wrk") then
    print("benchmark nginx-get: skipped (no wrk: tools/deps.sh --bench installs it)")
    ctx.check("nginx-get: worker CPU per request <= 1.0x the floor", false, "not measured: no wrk")
    return { benchmark = "nginx-get", skipped = "no wrk" }
  end
  local id = lib.first_user(srv)
  local host, port, base = srv.url:match("^http://([^:/]+):(%d+)(/.*)$")
  local locations = LOCATIONS:gsub("@(%u+)@", { ID = id, HOST = host, PORT = port, PATH = base .. "/users/" .. id })

  local app
  local function cleanup()
    if app then app:stop() end
  end

  local function body()
    local wpid
    app, wpid = lib.one_worker_app(srv, INIT, locations, "nginx-get")
    local sides = { { name = "floor (cosocket + cjson)", loc = "/floor" },
      { name = "hypatos users:get", loc = "/hypatos" } }
    for _, s in ipairs(sides) do
      local status, text = app:get(s.loc)
      if status ~= 200 or text:gsub("%s+$", "") ~= id then
        error(("nginx-get: %s: %s %s\n%s"):format(s.loc, tostring(status), tostring(text),
          app:error_log():sub(-2000)), 0)
      end
    end
    print(("benchmark nginx-get: GET %s/users/%s through nginx + ngx_lua (LuaJIT, 1 worker): hypatos"
      .. " users:get (a client from init_worker, cosockets) / the floor (a fixed GET over a pooled"
      .. " ngx.socket.tcp + cjson.decode); wrk, %d connections, %d s per side, %d rounds alternating;"
      .. " the worker's CPU from /proc"):format(srv.url, id, args.nginx_get_connections, args.nginx_get_seconds,
      args.nginx_get_rounds))
    -- warm-up: code compiled, connections pooled, both sides
    for _, s in ipairs(sides) do wrk(app.url .. s.loc, 1, args.nginx_get_connections) end

    for _, s in ipairs(sides) do s.cpu, s.rps, s.upstream = {}, {}, {} end
    for round = 1, args.nginx_get_rounds do
      local order = round % 2 == 1 and { sides[1], sides[2] } or { sides[2], sides[1] }
      for _, s in ipairs(order) do
        local before = srv:stats().requests
        local c0 = cpu_s(wpid)
        local n, rps = wrk(app.url .. s.loc, args.nginx_get_seconds, args.nginx_get_connections)
        local c1 = cpu_s(wpid)
        s.upstream[round] = srv:stats().requests - before - 1 -- the stats request itself
        s.cpu[round] = (c1 - c0) / n * 1e6
        s.rps[round] = rps
        if s.upstream[round] > n + args.nginx_get_connections then
          io.stderr:write(("  note: %s: the server saw %d requests for %d answers\n"):format(s.name,
            s.upstream[round], n))
        end
        io.stderr:write(("  round %d %-26s %8s req/s %7.1f us worker CPU/request\n"):format(round, s.name,
          thousands(rps), s.cpu[round]))
      end
    end
    local floor, hyp = sides[1], sides[2]
    local cpu_pairs, rps_pairs = {}, {}
    for i = 1, args.nginx_get_rounds do
      cpu_pairs[i] = hyp.cpu[i] / floor.cpu[i]
      rps_pairs[i] = hyp.rps[i] / floor.rps[i]
    end
    print(("  %-26s %22s %30s"):format("", "requests/s", "worker CPU us/request"))
    for _, s in ipairs(sides) do
      local rlo, rhi = minmax(s.rps)
      local clo, chi = minmax(s.cpu)
      print(("  %-26s %8s [%6s-%6s] %12.1f [%5.1f-%5.1f]"):format(s.name, thousands(median(s.rps)), thousands(rlo),
        thousands(rhi), median(s.cpu), clo, chi))
    end
    local cpu_ratio, rps_ratio = median(cpu_pairs), median(rps_pairs)
    local clo, chi = minmax(cpu_pairs)
    local rlo, rhi = minmax(rps_pairs)
    print(("ratios hypatos/floor, medians of %d rounds: worker CPU per request %.2fx [%.2f-%.2f], requests/s"
      .. " %.2fx [%.2f-%.2f] (lua-resty-http is not packaged in Debian: the floor stands in, and is stricter)")
      :format(args.nginx_get_rounds, cpu_ratio, clo, chi, rps_ratio, rlo, rhi))
    ctx.check(("nginx-get: worker CPU per request <= %.1fx the floor"):format(TARGET), cpu_ratio <= TARGET,
      ("%.2fx (%.1f / %.1f us); requests/s %.2fx (%s / %s)"):format(cpu_ratio, median(hyp.cpu), median(floor.cpu),
        rps_ratio, thousands(median(hyp.rps)), thousands(median(floor.rps))))
    return { benchmark = "nginx-get", rounds = args.nginx_get_rounds, seconds = args.nginx_get_seconds,
      connections = args.nginx_get_connections, cpu_ratio = cpu_ratio, rps_ratio = rps_ratio,
      hypatos = { cpu_us = median(hyp.cpu), rps = median(hyp.rps) },
      floor = { cpu_us = median(floor.cpu), rps = median(floor.rps) } }
  end

  return lib.finally(body, cleanup)
end

return M
