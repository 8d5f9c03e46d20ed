--- bench/map-quota.lua — benchmark "map-quota" of `make bench` (bench/run.lua): issue 9,
-- "quota 10 per second, 300 calls with concurrency 16: no 429 at all, and at least 95 % of the
-- quota used".
--
-- The local server's quota is set to 10 requests per 1 s window (config quota, window; restored
-- afterwards), announced in the x-ratelimit-* headers of every answer. Two sides, one child
-- process each (bench/hypatos_map.lua --op get: N × client.users:get(id), after the token):
--   * map 16: client:map(items, fn, {concurrency = 16}), started cold (no answer with the
--     rate-limit headers seen yet: what a script does);
--   * map 16, warm: the same after one untimed call (the headers known when the map starts);
--   * loop: a plain `for` loop, one call at a time (the polite baseline).
-- The server counts the 429s (/_mock/stats statuses) per side; quota use = calls that succeeded /
-- (elapsed × 10), elapsed being the child's time for the N calls. N = --quota-calls (default 300: about
-- 30 s per side).
-- A call that fails in the end (a 429 after its last retry) is counted, not fatal: it is what
-- this benchmark looks for.
-- Targets (map 16, cold): no 429 and no failed call; quota use ≥ 95 %.

local lib = require "bench.lib"

local M = { name = "map-quota" }

M.options = {
  { "--quota-calls", "quota_calls", 300, "calls per side of the map-quota benchmark (10 per second)", min = 20 },
}

local QUOTA = 10

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local n = args.quota_calls
  local id = lib.first_user(srv)
  local function body()
    srv:configure({ quota = QUOTA, window = 1 })
    print(("benchmark map-quota: server quota %d requests per second; %d × users:get per side, one process"
      .. " each (ideal: %.0f s)"):format(QUOTA, n, n / QUOTA))
    local sides = { { name = "map, concurrency 16", concurrency = 16 },
      { name = "map 16, warm", concurrency = 16, warm = true }, { name = "loop", concurrency = 0 } }
    print(("  %-20s %9s %8s %11s %10s %7s"):format("", "time", "429s", "quota use", "requests", "failed"))
    local summary = { benchmark = "map-quota", calls = n, quota = QUOTA }
    for _, s in ipairs(sides) do
      -- a fresh window: the first call must not find it partly used by the previous side
      lib.sleep(1.1)
      local r = lib.map_child(ctx, "map-quota " .. s.name, { op = "get", id = id, calls = n,
        concurrency = s.concurrency, warm = s.warm, allow_failures = true })
      s.r, s.use = r, (n - r.failures) / (r.wall_s * QUOTA) -- calls that succeeded
      print(("  %-20s %7.1f s %8d %10.1f%% %10d %7d"):format(s.name, r.wall_s, r.server_429, s.use * 100,
        r.server_requests, r.failures))
      if r.failures > 0 then print("    first failure: " .. tostring(r.first_error)) end
      summary[s.name] = { wall_s = r.wall_s, server_429 = r.server_429, quota_use = s.use,
        server_requests = r.server_requests, failures = r.failures }
    end
    local m, w, l = sides[1], sides[2], sides[3]
    ctx.check(("map-quota: %d calls at concurrency 16, no 429"):format(n), m.r.server_429 == 0,
      ("%d (warm %d, loop %d)"):format(m.r.server_429, w.r.server_429, l.r.server_429))
    ctx.check("map-quota: every call succeeds", m.r.failures == 0,
      ("%d failed (warm %d, loop %d)"):format(m.r.failures, w.r.failures, l.r.failures))
    ctx.check("map-quota: >= 95% of the quota used", m.use >= 0.95,
      ("%.1f%% in %.1f s (warm %.1f%%, loop %.1f%%)"):format(m.use * 100, m.r.wall_s,
        w.use * 100, l.use * 100))
    return summary
  end
  return lib.finally(body, function() srv:configure({ quota = 1000000000, window = 1 }) end)
end

return M
