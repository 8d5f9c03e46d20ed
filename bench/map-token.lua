--- bench/map-token.lua — benchmark "map-token" of `make bench` (bench/run.lua): issue 9,
-- "10,000 calls through map cost exactly 1 token request".
--
-- Two sides, one child process each (bench/hypatos_map.lua --op get --no-prefetch: N ×
-- client.users:get(id) with no token yet, so that the first calls race for it), no latency:
--   * map 16: client:map(items, fn, {concurrency = 16});
--   * loop: a plain `for` loop.
-- Token requests are counted at the server (/_mock/stats token_requests) around each process.
-- N = --token-calls (default 10000).
-- Target: exactly 1 token request for map 16 (throughput map/loop printed as well).

local lib = require "bench.lib"

local M = { name = "map-token" }

M.options = {
  { "--token-calls", "token_calls", 10000, "calls per side of the map-token benchmark", min = 1 },
}

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local n = args.token_calls
  local id = lib.first_user(srv)
  print(("benchmark map-token: %d × users:get per side from a client without a token, no latency, one"
    .. " process each"):format(n))
  local sides = { { name = "map, concurrency 16", concurrency = 16 }, { name = "loop", concurrency = 0 } }
  print(("  %-20s %9s %10s %15s %10s"):format("", "time", "calls/s", "token requests", "requests"))
  local summary = { benchmark = "map-token", calls = n }
  for _, s in ipairs(sides) do
    local r = lib.map_child(ctx, "map-token " .. s.name, { op = "get", id = id, calls = n,
      concurrency = s.concurrency, prefetch = false })
    s.r = r
    print(("  %-20s %7.2f s %10.0f %15d %10d"):format(s.name, r.wall_s, n / r.wall_s, r.server_token_requests,
      r.server_requests))
    summary[s.name] = { wall_s = r.wall_s, token_requests = r.server_token_requests,
      server_requests = r.server_requests }
  end
  local m, l = sides[1], sides[2]
  print(("ratio: map 16 / loop throughput %.2fx"):format(l.r.wall_s / m.r.wall_s))
  ctx.check(("map-token: %d calls through map, exactly 1 token"):format(n), m.r.server_token_requests == 1,
    ("server counted %d (loop %d)"):format(m.r.server_token_requests, l.r.server_token_requests))
  return summary
end

return M
