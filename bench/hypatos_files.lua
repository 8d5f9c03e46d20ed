--- bench/hypatos_files.lua — the hypatos side of the "files" benchmark of `make bench`:
-- one upload of a big file from disk and one download of it back to disk, with the
-- interpreter's resident memory measured around each.
--
--   HYPATOS_CLIENT_ID=… HYPATOS_CLIENT_SECRET=… HYPATOS_BASE_URL=http://127.0.0.1:PORT/v2 \
--     lua5.4 bench/hypatos_files.lua --in PATH --out PATH [--progress]
--
-- Baseline: after require "hypatos", creating the client and getting its token, a full GC,
-- then VmRSS and VmHWM from /proc/self/status. Before each phase the kernel's high-water
-- mark is reset to the current RSS (writing 5 to /proc/self/clear_refs, Linux >= 4.0), so
-- the VmHWM read after the phase is the peak of that phase alone; where that write fails
-- the peak includes start-up's (an upper bound; hwm_reset = false says so).
-- Per phase: peak_kb = VmHWM - baseline VmRSS (the most the interpreter grew at any moment),
-- final_kb = VmRSS - baseline VmRSS once the call returned, wall_s (monotonic clock), cpu_s
-- (os.clock: user + sys of this process; user_s and sys_s split it, in clock ticks), lua_kb
-- (the Lua heap, collectgarbage "count").
-- Phases: upload client.files:upload{path = IN, content_type = "application/pdf"} (the type is
-- a label: the server stores any bytes), then client.files:download(id, {path = OUT}).
-- --progress passes a progress function that formats a status line on every call (garbage,
-- as a real progress bar makes) and checks the counts reach the file's size.
-- Prints one JSON line on stdout; exits 1 on any failed call. The bytes are compared by the
-- runner (cmp IN OUT).

local hypatos = require "hypatos"

local function fail(fmt, ...)
  io.stderr:write("hypatos_files: ", fmt:format(...), "\n")
  os.exit(1)
end

local args = { progress = false }
do
  local i = 1
  while i <= #arg do
    local k, v = arg[i], arg[i + 1]
    if k == "--in" and v then args.input = v; i = i + 2
    elseif k == "--out" and v then args.output = v; i = i + 2
    elseif k == "--progress" then args.progress = true; i = i + 1
    else fail("usage: lua bench/hypatos_files.lua --in PATH --out PATH [--progress]") end
  end
end
if not args.input or not args.output then fail("--in and --out are required") end

local proc = require "bench.proc"
local monotime, reset_hwm = proc.monotime, proc.reset_hwm

-- VmRSS, VmHWM in KiB.
local function rss()
  local r, h = proc.rss()
  if not r then fail("no /proc/self/status: this benchmark needs Linux") end
  return r, h
end

-- User and system CPU seconds of this process (clock ticks of /proc/self/stat).
local ticks = 100
do
  local p = io.popen("getconf CLK_TCK 2>/dev/null")
  if p then ticks = tonumber(p:read("l") or "") or 100; p:close() end
end
local function user_sys()
  local f = io.open("/proc/self/stat", "rb")
  if not f then return nil end
  local rest = f:read("a"):match("%) (.*)$")
  f:close()
  local fields = {}
  for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
  return tonumber(fields[12]) / ticks, tonumber(fields[13]) / ticks
end


local size
do
  local f = io.open(args.input, "rb")
  if not f then fail("cannot open %s", args.input) end
  size = f:seek("end")
  f:close()
end

-- Options (credentials, base URL) come from the HYPATOS_* environment variables.
local c = hypatos.new({})
local tok, terr = c:token()
if not tok then fail("token: %s", tostring(terr)) end
collectgarbage("collect")
local base_rss, base_hwm = rss()

local hwm_reset = true

-- A progress function for one phase and its record.
local function tracker()
  local t = { calls = 0, max_now = 0, max_total = 0 }
  t.fn = function(dlnow, dltotal, ulnow, ultotal) -- hypatos' order (not libcurl's)
    t.calls = t.calls + 1
    local total, now = dltotal, dlnow
    if ultotal > 0 then total, now = ultotal, ulnow end
    if now > t.max_now then t.max_now = now end
    if total > t.max_total then t.max_total = total end
    -- what a progress bar would build (and drop) on every call
    t.line = ("\r%6.1f%%  %d / %d bytes"):format(total > 0 and now * 100 / total or 0, now, total)
  end
  return t
end

-- Runs one phase: fn() → value, meta | nil, err; returns the value and the figures.
local function phase(name, fn)
  if not reset_hwm() then hwm_reset = false end
  local u0, s0 = user_sys()
  local c0, t0 = os.clock(), monotime()
  local value, meta = fn()
  local t1, c1 = monotime(), os.clock()
  local u1, s1 = user_sys()
  if value == nil then fail("%s: %s", name, tostring(meta)) end
  local now_rss, now_hwm = rss()
  return value, {
    wall_s = t1 - t0, cpu_s = c1 - c0, user_s = u0 and u1 - u0, sys_s = s0 and s1 - s0,
    peak_kb = now_hwm - base_rss, final_kb = now_rss - base_rss,
    hwm_kb = now_hwm, lua_kb = math.floor(collectgarbage("count")),
  }
end

local up_progress = args.progress and tracker() or nil
local file, up = phase("upload", function()
  return c.files:upload({ path = args.input, content_type = "application/pdf",
    progress = up_progress and up_progress.fn })
end)
if type(file) ~= "table" or type(file.id) ~= "string" then fail("upload: no file id in the answer") end

local down_progress = args.progress and tracker() or nil
local _, down = phase("download", function()
  return c.files:download(file.id, { path = args.output, progress = down_progress and down_progress.fn })
end)

local got
do
  local f = io.open(args.output, "rb")
  if not f then fail("download: %s was not written", args.output) end
  got = f:seek("end")
  f:close()
end
if got ~= size then fail("download: %s holds %d bytes, not %d", args.output, got, size) end

for _, p in ipairs({ { up_progress, up, "upload" }, { down_progress, down, "download" } }) do
  local t, figures, name = p[1], p[2], p[3]
  if t then
    if t.max_now ~= size or t.max_total ~= size then
      fail("%s: progress reached %d of %d bytes, not %d", name, t.max_now, t.max_total, size)
    end
    figures.progress_calls = t.calls
  end
end

local stats = c:stats()
print(hypatos.json.encode({
  impl = "hypatos", ok = true, bytes = size, progress = args.progress, id = file.id,
  rss_base_kb = base_rss, hwm_base_kb = base_hwm, hwm_reset = hwm_reset,
  upload = up, download = down,
  requests = stats.requests, token_requests = stats.token_requests,
  lua = (jit and jit.version) or _VERSION,
}))
c:close()
