--- bench/map-token.lua — benchmark "map-token" of `make bench` (bench/run.lua): issue 9,
-- "10,000 calls through map cost exactly 1 token request", and issue 19, "client:map at zero
-- latency reaches ≥ 0.95× a plain loop's calls per second".
--
-- Two sides, one child process each per round (bench/hypatos_map.lua --op get --no-prefetch: N ×
-- client.users:get(id) with no token yet, so that the first calls race for it), no latency:
--   * map 16: client:map(items, fn, {concurrency = 16});
--   * loop, results kept: a plain `for` loop that keeps its results in an array (--keep), as
--     map returns them: the peer of the target (the same work but the bookkeeping);
--   * loop: a plain `for` loop that drops them (reported: the cost of keeping 10,000 users,
--     which the garbage collector traverses again and again, is part of the difference).
-- Token requests are counted at the server (/_mock/stats token_requests) around each process.
-- N = --token-calls (default 10000); --token-rounds rounds (default 5), the order of the sides
-- swapped every round; the throughput ratio map/loop checked is the median of the per-round
-- ratios (the two processes of a round ran back to back).
-- Targets: exactly 1 token request for every map 16 process (issue 9); map 16 ≥ 0.95× the
-- calls per second of the loop that keeps its results (issue 19: the map's bookkeeping costs
-- little at zero latency).

local lib = require "bench.lib"

local M = { name = "map-token" }

M.options = {
  { "--token-calls", "token_calls", 10000, "calls per side of the map-token benchmark", min = 1 },
  { "--token-rounds", "token_rounds", 5, "rounds of the map-token benchmark, the order swapped every round",
    min = 1 },
}

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local n, rounds = args.token_calls, args.token_rounds
  local id = lib.first_user(srv)
  print(("benchmark map-token: %d × users:get per side from a client without a token, no latency, one"
    .. " process each, %d rounds alternating"):format(n, rounds))
  local map = { name = "map, concurrency 16", concurrency = 16, results = {} }
  local loop = { name = "loop, results kept", concurrency = 0, keep = true, results = {} }
  local drop = { name = "loop", concurrency = 0, results = {} }
  local ratios, cpu_ratios, drop_ratios, tokens, tokens_ok = {}, {}, {}, {}, true
  for round = 1, rounds do
    for _, s in ipairs(round % 2 == 1 and { map, loop, drop } or { drop, loop, map }) do
      local r = lib.map_child(ctx, "map-token " .. s.name, { op = "get", id = id, calls = n,
        concurrency = s.concurrency, prefetch = false, keep = s.keep })
      s.results[round] = r
      io.stderr:write(("  round %d %-20s %7.3f s %9.0f calls/s %6.1f us CPU/call, %d token request(s), %d requests\n")
        :format(round, s.name, r.wall_s, n / r.wall_s, r.cpu_s / n * 1e6, r.server_token_requests, r.server_requests))
    end
    ratios[round] = loop.results[round].wall_s / map.results[round].wall_s
    cpu_ratios[round] = map.results[round].cpu_s / loop.results[round].cpu_s
    drop_ratios[round] = drop.results[round].wall_s / map.results[round].wall_s
    tokens[round] = tostring(map.results[round].server_token_requests)
    if map.results[round].server_token_requests ~= 1 then tokens_ok = false end
  end
  print(("  %-20s %9s %10s %12s %15s %10s   (medians of %d processes)"):format("", "time", "calls/s", "CPU us/call",
    "token requests", "requests", rounds))
  local summary = { benchmark = "map-token", calls = n, rounds = rounds }
  for _, s in ipairs({ map, loop, drop }) do
    local wall, cpu, tok, req = {}, {}, {}, {}
    for i, r in ipairs(s.results) do
      wall[i], cpu[i], tok[i], req[i] = r.wall_s, r.cpu_s / n * 1e6, r.server_token_requests, r.server_requests
    end
    s.wall = lib.median(wall)
    print(("  %-20s %7.3f s %10s %12.1f %15s %10s"):format(s.name, s.wall, lib.thousands(n / s.wall), lib.median(cpu),
      lib.thousands(lib.median(tok)), lib.thousands(lib.median(req))))
    summary[s.name] = { wall_s = s.wall, cpu_us_per_call = lib.median(cpu), token_requests = lib.median(tok),
      server_requests = lib.median(req) }
  end
  local ratio = lib.median(ratios)
  local lo, hi = lib.minmax(ratios)
  summary.throughput_ratio = ratio
  local cpu_ratio = lib.median(cpu_ratios)
  summary.cpu_ratio = cpu_ratio
  summary.throughput_ratio_drop = lib.median(drop_ratios)
  print(("ratio map 16 / loop with its results calls per second, median of %d per-round ratios: %.2fx"
    .. " [%.2f-%.2f] (ratio of the medians %.2fx); CPU per call %.2fx; map 16 / the loop that drops its"
    .. " results: %.2fx"):format(rounds, ratio, lo, hi, loop.wall / map.wall, cpu_ratio, summary.throughput_ratio_drop))
  ctx.check(("map-token: %d calls through map, exactly 1 token"):format(n), tokens_ok,
    ("server counted %s over %d processes"):format(table.concat(tokens, ", "), rounds))
  ctx.check("map-token: map 16 >= 0.95x the calls/s of a loop keeping its results", ratio >= 0.95,
    ("%.2fx [%.2f-%.2f]"):format(ratio, lo, hi))
  return summary
end

return M
