--- bench/hypatos_map.lua — the hypatos side of the map benchmarks of `make bench`
-- (bench/map-speed.lua, map-quota.lua, map-uploads.lua, map-token.lua) and of the fleet
-- (bench/fleet.lua): many calls from one process, either one at a time in a plain loop or
-- through client:map, with this process's time and resident memory measured.
--
--   HYPATOS_CLIENT_ID=… HYPATOS_CLIENT_SECRET=… HYPATOS_BASE_URL=http://127.0.0.1:PORT/v2 \
--     lua5.4 bench/hypatos_map.lua --op OP --calls N [--concurrency C] [--id USER_ID] [--file PATH]
--       [--tag TAG] [--no-prefetch] [--warm] [--no-store] [--latency] [--keep]
--
-- --op: upsert (client.enrichment.suppliers:upsert of a small record, externalId TAG-i),
--   get (client.users:get(USER_ID)) or upload (client.files:upload{path = PATH}).
-- --concurrency: 0 (default) = a plain loop, today's way; C ≥ 1 = client:map(items, fn,
--   {concurrency = C}).
-- Before the timed part: the client gets its token (unless --no-prefetch: then the calls race
-- for it), a full GC, VmRSS read as the baseline and the kernel's high-water mark reset (writing
-- 5 to /proc/self/clear_refs; hwm_reset = false when that fails, the peak is then an upper
-- bound). --warm: one untimed call before that (the client then knows the rate-limit
-- headers). After: peak_kb = VmHWM - baseline, wall_s (monotonic), cpu_s (os.clock),
-- started_at/ended_at (the timed part's bounds, epoch seconds: comparable across processes),
-- store (client:stats().store: null without a store).
-- The client takes its store from HYPATOS_REDIS_URL, as any program; --no-store: store = false.
-- --latency (a loop only): each call timed alone, p50_us and p99_us reported.
-- --keep (a loop only): the loop keeps every result in an array, as client:map returns them
--   (the garbage collector then traverses them: the fair peer of map).
-- Every call must succeed (failures counted, the first one's text reported; the process still
-- prints its line). Prints one JSON line on stdout.

local hypatos = require "hypatos"

local function fail(fmt, ...)
  io.stderr:write("hypatos_map: ", fmt:format(...), "\n")
  os.exit(1)
end

local args = { concurrency = 0, tag = "B", prefetch = true }
do
  local i = 1
  while i <= #arg do
    local k, v = arg[i], arg[i + 1]
    if k == "--no-prefetch" then args.prefetch = false; i = i + 1
    elseif k == "--keep" then args.keep = true; i = i + 1
    elseif k == "--warm" then args.warm = true; i = i + 1
    elseif k == "--no-store" then args.no_store = true; i = i + 1
    elseif k == "--latency" then args.latency = true; i = i + 1
    elseif k == "--op" and v then args.op = v; i = i + 2
    elseif k == "--calls" and v then args.calls = math.tointeger(tonumber(v)); i = i + 2
    elseif k == "--concurrency" and v then args.concurrency = math.tointeger(tonumber(v)); i = i + 2
    elseif k == "--id" and v then args.id = v; i = i + 2
    elseif k == "--file" and v then args.file = v; i = i + 2
    elseif k == "--tag" and v then args.tag = v; i = i + 2
    else fail("usage: lua bench/hypatos_map.lua --op upsert|get|upload --calls N [--concurrency C] [--id ID]"
      .. " [--file PATH] [--tag TAG] [--no-prefetch] [--warm] [--no-store] [--latency] [--keep]") end
  end
end
if not args.calls or args.calls < 1 or not args.concurrency or args.concurrency < 0 then
  fail("--calls N (>= 1) is required; --concurrency is >= 0")
end
if args.op == "get" and not args.id then fail("--op get needs --id") end
if args.op == "upload" and not args.file then fail("--op upload needs --file") end
if args.op ~= "get" and args.op ~= "upload" and args.op ~= "upsert" then fail("--op: upsert, get or upload") end
if args.latency and args.concurrency ~= 0 then fail("--latency times a loop: --concurrency 0") end

local proc = require "bench.proc"
local monotime, reset_hwm = proc.monotime, proc.reset_hwm
local epoch = require("socket").gettime

-- VmRSS, VmHWM in KiB.
local function rss()
  local r, h = proc.rss()
  if not r then fail("no /proc/self/status: this benchmark needs Linux") end
  return r, h
end


-- Options (credentials, base URL) come from the HYPATOS_* environment variables.
local opts = {}
if args.no_store then opts.store = false end
local c = hypatos.new(opts)
if args.prefetch then
  local tok, terr = c:token()
  if not tok then fail("token: %s", tostring(terr)) end
end

-- One call: item i → value, err.
local call
if args.op == "upsert" then
  local suppliers = c.enrichment.suppliers
  call = function(i)
    return suppliers:upsert({ externalId = args.tag .. "-" .. i, name = "Supplier " .. i, city = "Berlin",
      countryCode = "DE" })
  end
elseif args.op == "get" then
  local users, id = c.users, args.id
  call = function() return users:get(id) end
else
  local files, path = c.files, args.file
  call = function() return files:upload({ path = path, content_type = "application/pdf" }) end
end

if args.warm then
  local v, err = call(0)
  if v == nil then fail("warm-up call: %s", tostring(err)) end
end

local items = {}
for i = 1, args.calls do items[i] = i end
collectgarbage("collect")
local base_rss = rss()
local hwm_reset = reset_hwm()

local failures, first_error = 0, nil
local took = {} -- --latency: seconds per call
local started_at, c0, t0 = epoch(), os.clock(), monotime()
if args.concurrency == 0 then
  local timed = args.latency
  local kept = args.keep and {} -- --keep: the loop collects its results, as client:map does
  for i = 1, args.calls do
    local s = timed and monotime()
    local v, err = call(i)
    if kept then kept[i] = v end
    if timed then took[i] = monotime() - s end
    if v == nil then
      failures = failures + 1
      first_error = first_error or tostring(err)
    end
  end
else
  local results, errors = c:map(items, function(i) return call(i) end, { concurrency = args.concurrency })
  for i = 1, args.calls do
    if results[i] == nil then
      failures = failures + 1
      first_error = first_error or tostring(errors[i])
    end
  end
end
local t1, c1, ended_at = monotime(), os.clock(), epoch()
local now_rss, now_hwm = rss()

-- The p-th percentile of `took` in microseconds (nearest rank; null without --latency).
local function percentile(p)
  if #took == 0 then return hypatos.json.null end
  table.sort(took)
  return took[math.max(1, math.ceil(#took * p / 100))] * 1e6
end

local stats = c:stats()
print(hypatos.json.encode({
  ok = true, op = args.op, calls = args.calls, concurrency = args.concurrency,
  wall_s = t1 - t0, cpu_s = c1 - c0, failures = failures, first_error = first_error or hypatos.json.null,
  rss_base_kb = base_rss, peak_kb = now_hwm - base_rss, final_kb = now_rss - base_rss, hwm_kb = now_hwm,
  hwm_reset = hwm_reset, requests = stats.requests, token_requests = stats.token_requests,
  lua_kb = math.floor(collectgarbage("count")),
  started_at = started_at, ended_at = ended_at, store = stats.store or hypatos.json.null,
  p50_us = percentile(50), p99_us = percentile(99),
}))
c:close()
