--- bench/fleet.lua — benchmark "fleet" of `make bench` (bench/run.lua): issue 17, "1/2/4/8
-- processes with and without the store: 429s, failed calls, token requests, quota used, and the
-- latency the store adds per call".
--
-- The local server's quota is set to 20 requests per 1 s window (restored afterwards); a
-- redis-server of its own (spec/fixtures/redis_server.lua) is started for the benchmark and
-- stopped by pid at the end, also on error.
--
-- Fleet: N = --fleet-calls (default 400) users:get split evenly over P = 1, 2, 4, 8 processes
-- (bench/hypatos_map.lua --op get --no-prefetch: the calls race for the token), the total
-- concurrency 32 split across them (client:map at 32, 16, 8, 4 each), all started at once. Two
-- sides per P, each in a fresh server window (and, with the store, a FLUSHALL before):
--   * without the store: `store = false` (--no-store), each process paces alone on the headers
--     (what the library did before the store);
--   * with the store: HYPATOS_REDIS_URL in the processes' environment, as any program joins.
-- Per side: 429 answers and token requests as the server counted them; calls failed after their
-- retries; quota use = calls that succeeded / (span × 20), the span from the first process's
-- first call to the last one's end; and the server-side measure of spec/85: the answers other
-- than 429 in the server windows the run spanned whole (not the first, nor the last two: the run
-- starts and thins out in them) / (windows × 20), from the server's request log (polled every
-- second: it holds the last 500).
--
-- Latency: one process, a loop of LATENCY_CALLS sequential users:get after one untimed call
-- (--warm), server quota 100000 per second and no server latency, without and with the store,
-- LATENCY_ROUNDS rounds alternating (after one untimed round of each, so that the store knows the
-- quota), each process in a fresh server window; each call timed alone. The store adds the
-- difference of the medians (over the rounds) of the mean time per call; p50 and p99 shown too.
--
-- Targets, with the store at every P: 429s ≤ 1 % of the calls, no failed call, exactly 1 token
-- request, quota use ≥ 95 %; the latency the store adds per call ≤ 1 ms (a guideline: one
-- EVALSHA round trip to a local Redis, ~0.2 ms, is what is expected). Without the store the
-- figures are reported, not checked: they show the problem the store solves.

local lib = require "bench.lib"
local redis_server = require "spec.fixtures.redis_server"

local M = { name = "fleet" }

M.options = {
  { "--fleet-calls", "fleet_calls", 400, "calls per side of the fleet benchmark (20 per second), split over"
    .. " the processes", min = 40 },
}

local QUOTA = 20
local CONCURRENCY = 32
local PROCESSES = { 1, 2, 4, 8 }
local LATENCY_CALLS, LATENCY_ROUNDS = 2000, 5
local QUIET_QUOTA, DEFAULT_QUOTA = 100000, 1000000000

-- Whether pid is a live process (not a zombie).
local function alive(pid)
  local st = (lib.read_file("/proc/" .. pid .. "/stat") or ""):match("%) (%a)")
  return st ~= nil and st ~= "Z" and st ~= "X"
end

--- The server's request log from now on, however long: poll() every second or so takes what is
-- new since the last poll (the log keeps the last 500); entries() → the API requests logged since
-- the start, and how many went by unseen between two polls.
local function log_follower(srv)
  local seen = srv:stats().requests
  local entries, lost = {}, 0
  local self = {}
  function self.poll()
    local st = srv:stats()
    local new, log = math.tointeger(st.requests - seen), st.log
    if new > #log then lost, new = lost + new - #log, #log end
    for i = #log - new + 1, #log do entries[#entries + 1] = log[i] end
    seen = st.requests
    return st
  end
  function self.entries() return entries, lost end
  return self
end

-- The server-side quota use: answers other than 429 in the windows the run spanned whole (the
-- first one and the last two left out), / (windows × QUOTA); nil when there are none.
local function whole_window_use(entries)
  local per, first, last = {}, math.huge, -math.huge
  for _, e in ipairs(entries) do
    local w = math.floor(e.at)
    if e.status ~= 429 then per[w] = (per[w] or 0) + 1 end
    first, last = math.min(first, w), math.max(last, w)
  end
  local n, windows = 0, 0
  for w = first + 1, last - 2 do n, windows = n + (per[w] or 0), windows + 1 end
  if windows == 0 then return nil end
  return n / (windows * QUOTA), windows
end

--- Starts `procs` child processes at once (each lib.map_argv(ctx, opts[i]) with env[i]) in the
-- background, output to dir; returns their pids. A shell per child writes its exit status.
local function launch(ctx, dir, envs, opts)
  local parts = {}
  for i = 1, #opts do
    local out = dir .. "/p" .. i
    parts[#parts + 1] = ("(%s > %s 2>&1 & echo $! > %s; wait $!; echo $? > %s) &"):format(
      lib.command(lib.creds(ctx.srv, envs[i]), lib.map_argv(ctx, opts[i])), lib.sh(out), lib.sh(out .. ".pid"),
      lib.sh(out .. ".rc"))
  end
  os.execute(table.concat(parts, "\n") .. "\n")
  local pids = {}
  for i = 1, #opts do
    local t0 = lib.monotime()
    while not pids[i] do
      pids[i] = tonumber(lib.read_file(dir .. "/p" .. i .. ".pid") or "")
      if not pids[i] then
        if lib.monotime() - t0 > 10 then error("bench fleet: process " .. i .. " did not start", 0) end
        lib.sleep(0.01)
      end
    end
  end
  return pids
end

--- One side: P processes, with or without the store; returns the figures.
local function side(ctx, st, p, with_store)
  local srv, n = ctx.srv, ctx.args.fleet_calls
  if with_store then st.redis:cli("FLUSHALL") end
  lib.sleep(1.1) -- a fresh window: the first call must not find it partly used by the previous side
  local envs, opts = {}, {}
  for i = 1, p do
    envs[i] = with_store and { HYPATOS_REDIS_URL = st.redis.url } or {}
    opts[i] = { op = "get", id = st.id, calls = n // p + (i <= n % p and 1 or 0), concurrency = CONCURRENCY // p,
      prefetch = false, no_store = not with_store }
  end
  os.execute("rm -f " .. lib.sh(st.dir) .. "/p*")
  local follow = log_follower(srv)
  local before = follow.poll()
  st.pids = launch(ctx, st.dir, envs, opts)
  local t0, last_poll, limit = lib.monotime(), lib.monotime(), n / QUOTA * 6 + 60
  -- process i's result once it has exited (nil before); raises at once when it failed
  local results = {}
  local function result(i)
    local out = st.dir .. "/p" .. i
    local rc = (lib.read_file(out .. ".rc") or ""):match("^(%d+)")
    if rc and not results[i] then
      results[i] = lib.child_result(("fleet %d processes, process %d"):format(p, i), lib.read_file(out) or "",
        rc == "0", "exit", rc)
    end
    return results[i]
  end
  local running = p
  while running > 0 do
    lib.sleep(0.1)
    running = 0
    for i = 1, p do
      if not result(i) then running = running + 1 end
    end
    if lib.monotime() - last_poll >= 1 then follow.poll(); last_poll = lib.monotime() end
    if lib.monotime() - t0 > limit then error(("bench fleet: %d processes still running after %.0f s"):format(
      running, limit), 0) end
  end
  st.pids = nil
  local after = follow.poll()
  local r = { processes = p, store = with_store, calls = n, failures = 0, store_waits = 0, store_failures = 0,
    started_at = math.huge, ended_at = -math.huge }
  for i = 1, p do
    local c = results[i]
    local failed = math.tointeger(c.failures)
    r.failures = r.failures + failed
    r.first_error = r.first_error or (failed > 0 and c.first_error or nil)
    r.started_at, r.ended_at = math.min(r.started_at, c.started_at), math.max(r.ended_at, c.ended_at)
    if with_store then
      local s = c.store
      if type(s) ~= "table" then error("bench fleet: a process with HYPATOS_REDIS_URL has no store", 0) end
      r.store_waits = r.store_waits + math.tointeger(s.waits)
      r.store_failures = r.store_failures + math.tointeger(s.failures)
    end
  end
  r.span_s = r.ended_at - r.started_at
  r.server_requests = math.tointeger(after.requests - before.requests)
  r.token_requests = math.tointeger(after.token_requests - before.token_requests)
  r.server_429 = math.tointeger((after.statuses["429"] or 0) - (before.statuses["429"] or 0))
  r.quota_use = (n - r.failures) / (r.span_s * QUOTA)
  local entries, lost = follow.entries()
  r.log_lost = lost
  r.window_use, r.windows = whole_window_use(entries)
  return r
end

-- "98.5 %", or "-" for nil.
local function pct(x) return x and ("%.1f %%"):format(x * 100) or "-" end

-- The fleet part: every P, both sides; prints a line per side; returns the sides.
local function fleet(ctx, st)
  local n = ctx.args.fleet_calls
  print(("benchmark fleet: server quota %d requests per second; %d × users:get per side, split over 1, 2, 4, 8"
    .. " processes (client:map, concurrency %d in all); Redis %s (ideal: %.0f s a side)"):format(QUOTA, n,
    CONCURRENCY, st.redis_version, n / QUOTA))
  print(("  %-14s %-6s %8s %6s %7s %7s %10s %14s %9s %12s"):format("processes", "store", "time", "429s", "failed",
    "tokens", "quota use", "whole windows", "requests", "store waits"))
  local rows = {}
  for _, p in ipairs(PROCESSES) do
    for _, with_store in ipairs({ false, true }) do
      local r = side(ctx, st, p, with_store)
      rows[#rows + 1] = r
      print(("  %-14s %-6s %6.1f s %6d %7d %7d %10s %14s %9d %12s"):format(("%d × %d"):format(p, CONCURRENCY // p),
        with_store and "redis" or "none", r.span_s, r.server_429, r.failures, r.token_requests, pct(r.quota_use),
        pct(r.window_use) .. (r.log_lost > 0 and "*" or ""), r.server_requests,
        with_store and tostring(r.store_waits) or "-"))
      if r.failures > 0 then print("    first failure: " .. tostring(r.first_error)) end
      if r.store_failures > 0 then print(("    the store failed %d times (fallback)"):format(r.store_failures)) end
      if r.log_lost > 0 then print(("    * %d requests went by between two polls of the log"):format(r.log_lost)) end
    end
  end
  return rows
end

-- The latency part: returns {none = {mean_us, p50_us, p99_us}, store = {…}} (medians over the rounds).
local function latency(ctx, st)
  ctx.srv:configure({ quota = QUIET_QUOTA, window = 1, latency = 0 })
  st.redis:cli("FLUSHALL")
  print(("latency: one process, %d sequential users:get after one untimed call, quota %d per second, no server"
    .. " latency; %d rounds alternating, medians"):format(LATENCY_CALLS, QUIET_QUOTA, LATENCY_ROUNDS))
  local sides = { { name = "none", no_store = true, env = {} },
    { name = "store", env = { HYPATOS_REDIS_URL = st.redis.url } } }
  local res = {}
  for round = 0, LATENCY_ROUNDS do -- round 0: untimed (the store learns the quota)
    for _, s in ipairs(sides) do
      -- a fresh server window: the calls without the store, seen by the store as someone else using
      -- the tenant, would push its next slot out (a wait of tens of ms, once per process)
      lib.sleep(1.1)
      local r = lib.map_child(ctx, "fleet latency " .. s.name, { op = "get", id = st.id, calls = LATENCY_CALLS,
        concurrency = 0, warm = true, latency = true, no_store = s.no_store, env = s.env })
      if round > 0 then
        res[s.name] = res[s.name] or { mean = {}, p50 = {}, p99 = {}, waits = 0, wait_s = 0 }
        local t = res[s.name]
        t.mean[round], t.p50[round], t.p99[round] = r.wall_s / r.calls * 1e6, r.p50_us, r.p99_us
        if s.name == "store" then
          t.waits, t.wait_s = t.waits + math.tointeger(r.store.waits), t.wait_s + r.store.wait_seconds
        end
      end
    end
  end
  local out = {}
  print(("  %-6s %16s %10s %10s"):format("store", "mean per call", "p50", "p99"))
  for _, s in ipairs(sides) do
    local t = res[s.name]
    local lo, hi = lib.minmax(t.mean)
    out[s.name] = { mean_us = lib.median(t.mean), p50_us = lib.median(t.p50), p99_us = lib.median(t.p99),
      mean_min_us = lo, mean_max_us = hi, store_waits = t.waits, store_wait_s = t.wait_s }
    local o = out[s.name]
    print(("  %-6s %10.0f µs %10.0f µs %7.0f µs   (means %.0f–%.0f µs)"):format(s.name == "none" and "none" or "redis",
      o.mean_us, o.p50_us, o.p99_us, lo, hi))
  end
  out.added_us = out.store.mean_us - out.none.mean_us
  out.ratio = out.store.mean_us / out.none.mean_us
  print(("  the store adds %.0f µs per call (mean; p50 %+.0f µs): %.2fx the time per call without it%s"):format(
    out.added_us, out.store.p50_us - out.none.p50_us, out.ratio,
    out.store.store_waits > 0 and (" (the limiter made %d calls wait, %.1f ms in all)"):format(out.store.store_waits,
      out.store.store_wait_s * 1000) or ""))
  return out
end

-- "a / b / c / d" of f(r) over the rows with (or without) the store.
local function per_p(rows, with_store, f)
  local t = {}
  for _, r in ipairs(rows) do
    if r.store == with_store then t[#t + 1] = f(r) end
  end
  return table.concat(t, " / ")
end

local function checks(ctx, rows, lat)
  local function all(f)
    for _, r in ipairs(rows) do
      if r.store and not f(r) then return false end
    end
    return true
  end
  local tag = "fleet: with the store at 1/2/4/8 processes, "
  ctx.check(tag .. "429s <= 1 % of calls", all(function(r) return r.server_429 <= r.calls * 0.01 end),
    per_p(rows, true, function(r) return r.server_429 end) .. " (without: "
      .. per_p(rows, false, function(r) return r.server_429 end) .. ")")
  ctx.check(tag .. "no failed call", all(function(r) return r.failures == 0 end),
    per_p(rows, true, function(r) return r.failures end) .. " (without: "
      .. per_p(rows, false, function(r) return r.failures end) .. ")")
  ctx.check(tag .. "exactly 1 token", all(function(r) return r.token_requests == 1 end),
    per_p(rows, true, function(r) return r.token_requests end) .. " (without: "
      .. per_p(rows, false, function(r) return r.token_requests end) .. ")")
  local function use(r) return ("%.1f%%"):format(r.quota_use * 100) end
  ctx.check(tag .. ">= 95% of the quota used", all(function(r) return r.quota_use >= 0.95 end),
    per_p(rows, true, use) .. " (without: " .. per_p(rows, false, use) .. ")")
  ctx.check("fleet: the store adds <= 1 ms per call (a guideline)", lat.added_us <= 1000,
    ("%.0f µs (%.0f / %.0f µs per call, %.2fx)"):format(lat.added_us, lat.store.mean_us, lat.none.mean_us, lat.ratio))
end

function M.run(ctx)
  local srv = ctx.srv
  local st = { id = lib.first_user(srv), dir = lib.mktemp_dir("fleet") }
  local function body()
    st.redis = assert(redis_server.start())
    st.redis_version = st.redis:cli("INFO", "server"):match("redis_version:([%d.]+)") or "?"
    srv:configure({ quota = QUOTA, window = 1, latency = 0 })
    local rows = fleet(ctx, st)
    local lat = latency(ctx, st)
    checks(ctx, rows, lat)
    local summary = { benchmark = "fleet", calls = ctx.args.fleet_calls, quota = QUOTA, concurrency = CONCURRENCY,
      latency = lat }
    for _, r in ipairs(rows) do
      summary[("%d %s"):format(r.processes, r.store and "redis" or "none")] = { span_s = r.span_s,
        server_429 = r.server_429, failures = r.failures, token_requests = r.token_requests, quota_use = r.quota_use,
        window_use = r.window_use, server_requests = r.server_requests, store_waits = r.store_waits }
    end
    return summary
  end
  return lib.finally(body, function()
    for _, pid in ipairs(st.pids or {}) do
      if alive(pid) then os.execute("kill " .. pid .. " 2>/dev/null") end
    end
    if st.redis then st.redis:stop() end
    os.execute("rm -rf " .. lib.sh(st.dir))
    srv:configure({ quota = DEFAULT_QUOTA, window = 1 })
  end)
end

return M
