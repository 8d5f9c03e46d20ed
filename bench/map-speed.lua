--- bench/map-speed.lua — benchmark "map-speed" of `make bench` (bench/run.lua): issue 9,
-- "2,000 enrichment upserts against the local server with 20 ms latency per request".
--
-- The local server answers POST /v2/enrichment/suppliers after 20 ms (a delay fault). Three
-- sides, one child process each (bench/hypatos_map.lua --op upsert: N ×
-- client.enrichment.suppliers:upsert of a small record, every one a new externalId):
--   * loop: a plain `for` loop, one call at a time (today's way);
--   * map 1: client:map(items, fn, {concurrency = 1});
--   * map 16: client:map(items, fn, {concurrency = 16}).
-- The order of the sides is swapped every round (--map-rounds, default 1); medians of the
-- per-round ratios. N = --map-calls (default 2000: about 45 s per sequential side).
-- Targets: map 16 at least 12× faster than the loop; map 1 takes at most 1.05× the loop's time.

local lib = require "bench.lib"
local median = lib.median

local M = { name = "map-speed" }

M.options = {
  { "--map-calls", "map_calls", 2000, "upserts per side of the map-speed benchmark", min = 16 },
  { "--map-rounds", "map_rounds", 1, "rounds of the map-speed benchmark, the order swapped every round", min = 1 },
}

local LATENCY = 0.02

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local n = args.map_calls
  local sides = {
    { name = "loop", concurrency = 0 },
    { name = "map, concurrency 1", concurrency = 1 },
    { name = "map, concurrency 16", concurrency = 16 },
  }
  local function body()
    srv:fault{ method = "POST", path_pattern = "^/v2/enrichment/suppliers$", kind = "delay", delay = LATENCY,
      count = -1 }
    print(("benchmark map-speed: %d × enrichment.suppliers:upsert, %d ms server latency, one process per side,"
      .. " %d round(s)"):format(n, LATENCY * 1000, args.map_rounds))
    -- warm-up, untimed: a short map
    lib.map_child(ctx, "map-speed warm-up", { op = "upsert", calls = 64, concurrency = 16, tag = "W" })
    for _, s in ipairs(sides) do s.results = {} end
    for round = 1, args.map_rounds do
      local order = {}
      for i = 1, #sides do order[i] = sides[round % 2 == 0 and #sides + 1 - i or i] end
      for _, s in ipairs(order) do
        local r = lib.map_child(ctx, "map-speed " .. s.name, { op = "upsert", calls = n,
          concurrency = s.concurrency, tag = ("R%d-%d"):format(round, s.concurrency) })
        s.results[round] = r
        io.stderr:write(("  round %d %-20s %7.2f s %8.1f calls/s\n"):format(round, s.name, r.wall_s, n / r.wall_s))
      end
    end
    local speedup, cost = {}, {}
    for i = 1, args.map_rounds do
      speedup[i] = sides[1].results[i].wall_s / sides[3].results[i].wall_s
      cost[i] = sides[2].results[i].wall_s / sides[1].results[i].wall_s
    end
    print(("  %-20s %9s %10s %12s %12s"):format("", "time", "calls/s", "CPU s", "peak RSS"))
    local summary = { benchmark = "map-speed", calls = n, latency_s = LATENCY, rounds = args.map_rounds }
    for _, s in ipairs(sides) do
      local w, cpu, peak = {}, {}, 0
      for i, r in ipairs(s.results) do w[i], cpu[i], peak = r.wall_s, r.cpu_s, math.max(peak, r.peak_kb) end
      s.wall = median(w)
      print(("  %-20s %7.2f s %10.1f %12.2f %12s"):format(s.name, s.wall, n / s.wall, median(cpu),
        lib.kib(peak, true)))
      summary[s.name] = { wall_s = s.wall, cpu_s = median(cpu), peak_kb = peak }
    end
    local up, c1 = median(speedup), median(cost)
    print(("ratios: loop / map 16 = %.1fx faster; map 1 / loop = %.3fx the time"):format(up, c1))
    ctx.check(("map-speed: %d upserts, concurrency 16 >= 12x loop"):format(n), up >= 12, ("%.1fx (%.2f s vs %.2f s)")
      :format(up, sides[3].wall, sides[1].wall))
    ctx.check("map-speed: concurrency 1 <= 1.05x the loop's time", c1 <= 1.05, ("%.3fx (%.2f s vs %.2f s)")
      :format(c1, sides[2].wall, sides[1].wall))
    summary.speedup = up
    summary.concurrency1_cost = c1
    return summary
  end
  return lib.finally(body, function() pcall(srv.control, srv, "DELETE", "/_mock/faults") end)
end

return M
