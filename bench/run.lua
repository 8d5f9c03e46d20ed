--- bench/run.lua — `make bench`: benchmarks of hypatos against the local Hypatos server,
-- each side by side with a baseline, printed as a table of ratios against the targets.
--
--   make bench BENCH_ARGS="--calls 5000 --rounds 5"
--   (or, from the repository root after `make all`:
--    LUA_PATH="lua/?.lua;lua/?/init.lua;./?.lua;;" LUA_CPATH="build/5.4/?.so;;" lua5.4 bench/run.lua …)
--
-- Options:
--   --calls N      timed GET calls per client process (default 2000)
--   --rounds R     processes per side, raw and hypatos back to back, the order swapped every
--                  round; medians are reported (default 15)
--   --warmup W     untimed calls at the start of every process (default 200)
--   --only NAMES   comma-separated benchmarks to run (default: all; see BENCHMARKS below)
--   --raw-setup    also time raw_get --per-call-setup (curl_easy_reset + every option set
--                  again before each call, as csrc/transport.c does): isolates that cost
--   --luajit       also time the hypatos side under LuaJIT (build/luajit/hypatos/core.so)
--   --callgrind N  also count user-space instructions per call of every side under valgrind
--                  (N calls, about 10 s per 1000 calls): a noise-free view of client work
--   --file-mib M   size of the file the "files" benchmark moves, in MiB (default 1024)
--   --file-rounds R  rounds of the "files" benchmark, the order of the sides swapped every
--                  round; medians of speed, the largest memory figures (default 1; 15-25 s per
--                  round of 1 GiB on 2 cores, after a 5-10 s warm-up)
--   --curl-data-binary  also upload with `curl --data-binary @file` (which reads the whole file
--                  into memory first; curl 7.88 refuses a file of 1 GiB or more: "out of memory")
--
-- Benchmark "get": the same N × GET /v2/users/{id} (a ~600-byte user) through
--   * raw: bench/raw_get.c, libcurl used directly, nothing decoded (built here into
--     build/bench/raw_get with `cc … $(pkg-config --cflags --libs libcurl)`);
--   * hypatos: bench/hypatos_get.lua, client.users:get(id), the answer decoded to Lua tables.
-- Both keep one connection alive; each process reports its wall time and its own CPU time
-- (user + sys) over the timed calls only. One server (nginx, one worker) serves every run.
-- The ratios checked are the medians of the per-round ratios (each round runs raw and hypatos
-- back to back), which resists the speed swings of a shared machine better than the ratio of
-- the per-side medians (printed as well).
-- Targets: hypatos ≥ 0.8× raw throughput, ≤ 1.4× raw CPU per call, exactly one token
-- request per hypatos process.
--
-- Benchmark "files": one M MiB file (pseudo-random bytes, written by build/bench/files_util
-- from bench/files_util.c) uploaded with POST /files and downloaded back to disk with
-- GET /files/{id}, the bytes compared with cmp after every download:
--   * hypatos: bench/hypatos_files.lua, client.files:upload{path=…} then
--     client.files:download(id, {path=…}); it reads its own VmRSS/VmHWM (/proc/self/status)
--     after require + client + token (the baseline) and after each phase, the high-water mark
--     reset before each phase, and reports the growth: peak (VmHWM - baseline) and final;
--   * hypatos + progress: the same with a progress function (one status line built per call);
--   * curl: the command-line tool streaming both ways (curl -X POST -T file, curl -o file),
--     its peak RSS (ru_maxrss) taken by `files_util run` (wait4), the same as /usr/bin/time -v
--     prints, minus the peak of a small GET with curl (what curl needs anyway).
-- An untimed curl upload and download come first (warm-up), and the server's stored copies
-- are dropped (reset) after every side, so that each side starts alike.
-- Needs 3 × M MiB free in $TMPDIR (or /tmp): the file, the server's copy, the download;
-- everything is removed at the end, also after a failure.
-- Target: the 1 GiB upload and the download each add < 16 MiB to the interpreter's RSS
-- (the worse of the runs with and without a progress function).
--
-- A missed target prints MISS and still exits 0; a failed call, a crash or a server that
-- does not start exits 1. Benchmark goals, not tests.

local cjson = require "cjson"
local launcher = require "mock.launcher"

local BUILD_DIR = "build/bench"
local RAW_BIN = BUILD_DIR .. "/raw_get"
local FILES_UTIL = BUILD_DIR .. "/files_util"

------------------------------------------------------------------ helpers

local function sh(s) return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'" end

local function capture(cmd)
  local p = io.popen(cmd)
  if not p then return nil end
  local out = p:read("a")
  p:close()
  return out
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local n = #t
  if n == 0 then return 0 / 0 end
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

local function minmax(list)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(list) do
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  return lo, hi
end

-- 12345.6 → "12,346"
local function thousands(x)
  local s = string.format("%d", math.floor(x + 0.5))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local function parse_args(argv)
  local a = { calls = 2000, rounds = 15, warmup = 200, raw_setup = false, luajit = false, file_mib = 1024,
    file_rounds = 1, curl_data_binary = false }
  local i = 1
  local function num(name)
    local v = tonumber(argv[i + 1])
    if not v or v < 0 or v % 1 ~= 0 then error("bench: " .. name .. " needs a non-negative integer", 0) end
    i = i + 1
    return math.tointeger(v)
  end
  while i <= #argv do
    local k = argv[i]
    if k == "--calls" then a.calls = num(k)
    elseif k == "--rounds" then a.rounds = num(k)
    elseif k == "--warmup" then a.warmup = num(k)
    elseif k == "--only" and argv[i + 1] then
      a.only = {}
      for name in argv[i + 1]:gmatch("[^,%s]+") do a.only[name] = true end
      i = i + 1
    elseif k == "--raw-setup" then a.raw_setup = true
    elseif k == "--luajit" then a.luajit = true
    elseif k == "--callgrind" then a.callgrind = num(k)
    elseif k == "--file-mib" then a.file_mib = num(k)
    elseif k == "--file-rounds" then a.file_rounds = num(k)
    elseif k == "--curl-data-binary" then a.curl_data_binary = true
    else
      error("bench: unknown argument " .. tostring(k) .. " (use --calls N --rounds R --warmup W --only NAMES"
        .. " --raw-setup --luajit --callgrind N --file-mib M --file-rounds R --curl-data-binary)", 0)
    end
    i = i + 1
  end
  if a.calls < 1 or a.rounds < 1 then error("bench: --calls and --rounds must be at least 1", 0) end
  if a.file_mib < 1 or a.file_rounds < 1 then error("bench: --file-mib and --file-rounds must be at least 1", 0) end
  return a
end

------------------------------------------------------------------ machine

local function machine(lua_cmd)
  local cpuinfo = read_file("/proc/cpuinfo") or ""
  local model = cpuinfo:match("model name%s*:%s*([^\n]+)") or "unknown CPU"
  local cores = 0
  for _ in cpuinfo:gmatch("\nprocessor%s*:") do cores = cores + 1 end
  if cpuinfo:match("^processor%s*:") then cores = cores + 1 end
  local kernel = (capture("uname -sr 2>/dev/null") or ""):gsub("%s+$", "")
  local curl = cjson.decode(capture(sh(RAW_BIN) .. " --version") or "{}")
  local lua = (capture(sh(lua_cmd) .. " -v 2>&1") or _VERSION):match("^(%S+ %S+)") or _VERSION
  local mem = (read_file("/proc/meminfo") or ""):match("MemTotal:%s*(%d+)")
  return ("%s, %d cores%s, %s, libcurl %s (%s), %s"):format(model, cores,
    mem and (", %.0f GiB RAM"):format(tonumber(mem) / 1048576) or "", kernel,
    curl.libcurl or "?", curl.ssl or "?", lua)
end

------------------------------------------------------------------ context

-- Everything a benchmark needs: options, the server, child-process runner, check recorder.
local function new_context(args, srv, lua_cmd)
  local ctx = { args = args, srv = srv, lua = lua_cmd, checks = {}, failed = false }

  -- CPU seconds (user + sys) the server's worker has used so far (nil when unknown).
  local ticks
  function ctx.server_cpu()
    local stat = srv.worker_pid and read_file("/proc/" .. srv.worker_pid .. "/stat")
    local rest = stat and stat:match("%) (.*)$")
    if not rest then return nil end
    local f = {}
    for x in rest:gmatch("%S+") do f[#f + 1] = x end
    ticks = ticks or tonumber(capture("getconf CLK_TCK") or "") or 100
    return (tonumber(f[12]) + tonumber(f[13])) / ticks -- utime, stime (fields 14, 15 of stat)
  end

  -- Runs a child process (env: table of variables, argv: list) and returns its JSON line,
  -- decoded; raises when it exits non-zero or prints no {"ok":true} line.
  function ctx.run_child(label, env, argv)
    local parts = {}
    for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. sh(v) end
    for _, a in ipairs(argv) do parts[#parts + 1] = sh(a) end
    local p = assert(io.popen(table.concat(parts, " ")))
    local out = p:read("a")
    local ok, how, code = p:close()
    local line = out:match("(%b{})%s*$")
    local okj, res = pcall(cjson.decode, line or "")
    if not ok or not okj or type(res) ~= "table" or res.ok ~= true then
      error(("%s failed (%s %s): %s"):format(label, tostring(how), tostring(code), out), 0)
    end
    return res
  end

  -- Records a target: PASS/MISS; a MISS does not fail the run.
  function ctx.check(name, pass, detail)
    ctx.checks[#ctx.checks + 1] = { name = name, pass = pass, detail = detail }
  end

  return ctx
end

------------------------------------------------------------------ benchmark: get

-- Builds the C helpers: raw_get (libcurl) and files_util (libc only).
local function build_raw()
  os.execute("mkdir -p " .. sh(BUILD_DIR))
  local cc = os.getenv("CC") or "cc"
  local cmds = {
    { RAW_BIN, ("%s -std=c99 -O2 -g -Wall -Wextra $(pkg-config --cflags libcurl) bench/raw_get.c -o %s"
      .. " $(pkg-config --libs libcurl)"):format(cc, sh(RAW_BIN)) },
    { FILES_UTIL, ("%s -std=c99 -O2 -g -Wall -Wextra bench/files_util.c -o %s"):format(cc, sh(FILES_UTIL)) },
  }
  for _, c in ipairs(cmds) do
    if os.execute(c[2]) ~= true then error("bench: cannot build " .. c[1] .. " (" .. c[2] .. ")", 0) end
  end
end

-- The user whose JSON is closest to 600 bytes, the client's token and its User-Agent.
local function pick_target(srv)
  local hypatos = require "hypatos"
  local c = hypatos.new({ client_id = srv.client_id, client_secret = srv.client_secret, base_url = srv.url })
  local page = assert(c.users:list({ limit = 100 }))
  local best, best_d
  for _, u in ipairs(page.data) do
    local d = math.abs(#hypatos.json.encode(u) - 600)
    if not best or d < best_d then best, best_d = u, d end
  end
  assert(best, "the mock has no users")
  local tok = assert(c:token())
  local log = srv:stats().log or {}
  local ua = log[#log] and log[#log].user_agent
  c:close()
  return best.id, tok.access_token, ua
end

local function bench_get(ctx)
  local args, srv = ctx.args, ctx.srv
  local id, token, ua = pick_target(srv)
  local url = srv.url .. "/users/" .. id
  local creds = { HYPATOS_CLIENT_ID = srv.client_id, HYPATOS_CLIENT_SECRET = srv.client_secret,
    HYPATOS_BASE_URL = srv.url }

  local function with_prefix(prefix, argv)
    if not prefix then return argv end
    local out = {}
    for _, a in ipairs(prefix) do out[#out + 1] = a end
    for _, a in ipairs(argv) do out[#out + 1] = a end
    return out
  end

  -- the sides: name, run(calls [, command prefix, warmup]) → one process's JSON result, and
  -- hypatos = true for hypatos runs; sides[1] (raw) and sides[2] (hypatos) are the two the
  -- targets compare, any others are extra rows
  local sides = {}
  local function raw_side(name, extra)
    return { name = name, run = function(calls, prefix, warmup)
      local argv = with_prefix(prefix, { RAW_BIN, "--url", url, "--calls", tostring(calls),
        "--warmup", tostring(warmup or args.warmup) })
      if ua then argv[#argv + 1] = "--user-agent"; argv[#argv + 1] = ua end
      if extra then argv[#argv + 1] = extra end
      return ctx.run_child(name, { HYPATOS_BENCH_TOKEN = token }, argv)
    end }
  end
  local function hyp_side(name, lua_cmd, cpath)
    return { name = name, hypatos = true, run = function(calls, prefix, warmup)
      local env = {}
      for k, v in pairs(creds) do env[k] = v end
      if cpath then env.LUA_CPATH = cpath end
      local before = srv:stats()
      local r = ctx.run_child(name, env, with_prefix(prefix, { lua_cmd, "bench/hypatos_get.lua", "--id", id,
        "--calls", tostring(calls), "--warmup", tostring(warmup or args.warmup) }))
      local after = srv:stats()
      r.server_token_requests = math.tointeger(after.token_requests - before.token_requests)
      r.server_requests = math.tointeger(after.requests - before.requests)
      return r
    end }
  end
  sides[1] = raw_side("raw libcurl")
  sides[2] = hyp_side("hypatos", ctx.lua)
  if args.raw_setup then sides[#sides + 1] = raw_side("raw, per-call setup", "--per-call-setup") end
  if args.luajit then
    sides[#sides + 1] = hyp_side("hypatos (LuaJIT)", os.getenv("LUAJIT") or "luajit", "build/luajit/?.so;;")
  end

  print(("benchmark get: GET %s/users/{id}, %d timed calls per process (+%d warm-up), %d rounds"
    .. " alternating, one keep-alive connection per process"):format(srv.url, args.calls, args.warmup, args.rounds))

  -- warm-up: one short process per side (server code paths, page cache, CPU frequency)
  for _, s in ipairs(sides) do s.run(math.max(200, args.calls // 10)) end

  for _, s in ipairs(sides) do s.results = {} end
  for round = 1, args.rounds do
    local order = {}
    for i = 1, #sides do order[i] = sides[i] end
    if round % 2 == 0 then -- reverse every other round so drift hits both sides alike
      for i = 1, #order // 2 do order[i], order[#order + 1 - i] = order[#order + 1 - i], order[i] end
    end
    for _, s in ipairs(order) do
      local cpu0 = ctx.server_cpu()
      local r = s.run(args.calls)
      local cpu1 = ctx.server_cpu()
      r.server_cpu_s = cpu0 and cpu1 and (cpu1 - cpu0) or nil
      s.results[#s.results + 1] = r
      io.stderr:write(("  round %d %-20s %8.0f calls/s %7.1f us CPU/call\n"):format(round, s.name,
        r.calls / r.wall_s, r.cpu_s / r.calls * 1e6))
    end
  end

  -- medians
  for _, s in ipairs(sides) do
    local tput, cpu, srv_cpu, user, sys = {}, {}, {}, {}, {}
    for i, r in ipairs(s.results) do
      tput[i] = r.calls / r.wall_s
      cpu[i] = r.cpu_s / r.calls * 1e6
      if r.server_cpu_s then srv_cpu[#srv_cpu + 1] = r.server_cpu_s / r.calls * 1e6 end
      if r.user_s and r.sys_s then
        user[#user + 1] = r.user_s / r.calls * 1e6
        sys[#sys + 1] = r.sys_s / r.calls * 1e6
      end
    end
    s.tput, s.cpu = median(tput), median(cpu)
    s.srv_cpu = #srv_cpu > 0 and median(srv_cpu) or nil
    s.user, s.sys = #user > 0 and median(user) or nil, #sys > 0 and median(sys) or nil
    s.tput_lo, s.tput_hi = minmax(tput)
    s.cpu_lo, s.cpu_hi = minmax(cpu)
  end
  local raw, hyp = sides[1], sides[2]
  local body = raw.results[1].body_bytes / raw.results[1].calls

  print(("user %s, %d-byte JSON body; medians of %d processes per side (min-max in brackets)")
    :format(id, math.floor(body + 0.5), args.rounds))
  print(("  %-20s %24s %26s %13s %14s"):format("", "calls/s", "client CPU us/call", "user/sys", "server us/call"))
  for _, s in ipairs(sides) do
    print(("  %-20s %9s [%6s-%6s] %9.1f [%6.1f-%6.1f] %13s %14s"):format(s.name, thousands(s.tput),
      thousands(s.tput_lo), thousands(s.tput_hi), s.cpu, s.cpu_lo, s.cpu_hi,
      s.user and ("%.0f/%.0f"):format(s.user, s.sys) or "?",
      s.srv_cpu and ("%.1f"):format(s.srv_cpu) or "?"))
  end

  -- The ratios checked are medians of per-round pairs (raw and hypatos ran back to back, so
  -- both saw the same machine: on a shared host the speed drifts by 2x within seconds);
  -- the ratios of the per-side medians above are printed too.
  local tput_pairs, cpu_pairs = {}, {}
  for i = 1, #hyp.results do
    local rr, hr = raw.results[i], hyp.results[i]
    tput_pairs[i] = (hr.calls / hr.wall_s) / (rr.calls / rr.wall_s)
    cpu_pairs[i] = (hr.cpu_s / hr.calls) / (rr.cpu_s / rr.calls)
  end
  local tput_ratio, cpu_ratio = median(tput_pairs), median(cpu_pairs)
  local tput_lo, tput_hi = minmax(tput_pairs)
  local cpu_lo, cpu_hi = minmax(cpu_pairs)
  local tokens, per_process_ok = {}, true
  for _, s in ipairs(sides) do
    for i, r in ipairs(s.hypatos and s.results or {}) do
      if s == hyp then tokens[i] = tostring(r.server_token_requests) end
      if r.server_token_requests ~= 1 or r.token_requests ~= 1 then per_process_ok = false end
      if r.server_requests ~= r.calls + r.warmup + 1 then -- e.g. a retried call
        io.stderr:write(("  note: %s, process %d: the server saw %s requests, expected %d\n"):format(s.name, i,
          tostring(r.server_requests), r.calls + r.warmup + 1))
      end
    end
  end
  for _, r in ipairs(raw.results) do
    if r.new_connections ~= 0 then
      io.stderr:write("  note: raw_get opened ", r.new_connections, " connection(s) during timed calls\n")
    end
  end
  print(("ratios hypatos/raw, median of %d rounds: throughput %.2fx [%.2f-%.2f], CPU per call %.2fx [%.2f-%.2f]")
    :format(#tput_pairs, tput_ratio, tput_lo, tput_hi, cpu_ratio, cpu_lo, cpu_hi))
  print(("  (ratios of the medians above: %.2fx, %.2fx; about 1.2x CPU is the floor: decoding the user into"
    .. " Lua tables)"):format(hyp.tput / raw.tput, hyp.cpu / raw.cpu))
  ctx.check("get: throughput >= 0.80x raw", tput_ratio >= 0.8, ("%.2fx"):format(tput_ratio))
  ctx.check("get: CPU per call <= 1.40x raw", cpu_ratio <= 1.4, ("%.2fx"):format(cpu_ratio))
  ctx.check("get: exactly 1 token request per hypatos process", per_process_ok,
    "server counted " .. table.concat(tokens, ", ") .. " over " .. #hyp.results .. " processes")

  local summary = { benchmark = "get", calls = args.calls, rounds = args.rounds, body_bytes = body,
    throughput_ratio = tput_ratio, cpu_ratio = cpu_ratio }
  if args.callgrind then
    -- user-space instructions per call: deterministic, unlike time on a shared machine (the
    -- kernel's share, about half of raw's CPU time here, is not counted). Two runs per side,
    -- 1 and N+1 timed calls after the same warm-up; the difference is N calls.
    local n = args.callgrind
    local out = os.tmpname()
    local function instructions(side, calls)
      side.run(calls, { "valgrind", "-q", "--tool=callgrind", "--callgrind-out-file=" .. out }, 20)
      local text = read_file(out) or ""
      os.remove(out)
      return tonumber(text:match("\ntotals:%s*(%d+)") or text:match("\nsummary:%s*(%d+)")) or 0 / 0
    end
    print(("user-space instructions per call (valgrind callgrind, %d calls):"):format(n))
    for _, side in ipairs(sides) do
      side.instr = (instructions(side, n + 1) - instructions(side, 1)) / n
      print(("  %-20s %9.1fk%s"):format(side.name, side.instr / 1000,
        side == raw and "" or ("   %.2fx raw"):format(side.instr / raw.instr)))
    end
    summary.instructions_per_call = {}
    for _, side in ipairs(sides) do summary.instructions_per_call[side.name] = side.instr end
  end
  for _, s in ipairs(sides) do
    summary[s.name] = { calls_per_s = s.tput, cpu_us_per_call = s.cpu, user_us_per_call = s.user,
      sys_us_per_call = s.sys, server_us_per_call = s.srv_cpu }
  end
  return summary
end

------------------------------------------------------------------ benchmark: files

-- KiB free on the filesystem of `dir` (nil when unknown).
local function free_kb(dir)
  local out = capture("df -Pk " .. sh(dir) .. " 2>/dev/null") or ""
  return tonumber(out:match("\n%S+%s+%d+%s+%d+%s+(%d+)"))
end

-- 81920 → "80.0 MiB", 900 → "900 KiB" (signed with plus = true).
local function kib(k, plus)
  if k == nil then return "?" end
  local sign = plus and k >= 0 and "+" or ""
  if math.abs(k) < 10240 then return ("%s%d KiB"):format(sign, math.floor(k + 0.5)) end
  return ("%s%.1f MiB"):format(sign, k / 1024)
end

local function bench_files(ctx)
  local args, srv = ctx.args, ctx.srv
  local mib = args.file_mib
  local bytes = mib * 1048576
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  local need = 3 * mib * 1024 + 65536
  local avail = free_kb(tmp)
  if avail and avail < need then
    local why = ("needs %s free in %s, has %s"):format(kib(need), tmp, kib(avail))
    print("benchmark files: skipped (" .. why .. ")")
    ctx.check("files: upload/download add < 16 MiB RSS", false, "not measured: " .. why)
    return { benchmark = "files", skipped = why }
  end

  local dir = (capture("mktemp -d " .. sh(tmp .. "/hypatos-bench-files-XXXXXX") .. " 2>/dev/null") or "")
    :gsub("%s+$", "")
  if dir == "" then error("bench: files: mktemp -d failed in " .. tmp, 0) end
  local input, output = dir .. "/in.pdf", dir .. "/out.pdf"
  local headers_file, resp = dir .. "/curl-headers", dir .. "/upload.json"
  local creds = { HYPATOS_CLIENT_ID = srv.client_id, HYPATOS_CLIENT_SECRET = srv.client_secret,
    HYPATOS_BASE_URL = srv.url }
  local hypatos = require "hypatos"

  -- The download equals the upload (cmp stops at the first difference); then it goes.
  local function verify(label)
    local same = os.execute("cmp -s " .. sh(input) .. " " .. sh(output))
    if same ~= true then error(("files: %s: %s differs from %s"):format(label, output, input), 0) end
    os.remove(output)
  end

  -- Drops the server's stored copies (and every token), so that every side starts alike.
  local function reset() srv:reset() end

  local function worker_hwm()
    local s = srv.worker_pid and read_file("/proc/" .. srv.worker_pid .. "/status")
    return s and tonumber(s:match("VmHWM:%s*(%d+)"))
  end

  -- curl's request headers, with a fresh token, in a file (so that no command line shows it).
  local function curl_headers()
    local c = hypatos.new({ client_id = srv.client_id, client_secret = srv.client_secret, base_url = srv.url })
    local tok = assert(c:token())
    c:close()
    local f = assert(io.open(headers_file, "wb"))
    f:write("Authorization: Bearer ", tok.access_token, "\nX-Hy-Filename: in.pdf\n")
    f:close()
  end
  -- files_util run curl … ARGS
  local function curl_argv(...)
    local t = { FILES_UTIL, "run", "curl", "-sS", "--fail", "-H", "@" .. headers_file }
    for _, a in ipairs({ ... }) do t[#t + 1] = a end
    return t
  end
  local small -- files_util run of curl's small GET: the floor of curl's RSS
  local function curl_row(r)
    return { mib_s = mib / r.wall_s, wall_s = r.wall_s, cpu_s = r.user_s + r.sys_s, user_s = r.user_s,
      sys_s = r.sys_s, peak_rss_kb = r.maxrss_kb,
      added_peak_kb = r.maxrss_kb - small.maxrss_kb }
  end

  -- One run of a side: {upload = row, download = row, …}; the server is reset afterwards.
  local function hypatos_side(name, progress)
    return function()
      local argv = { ctx.lua, "bench/hypatos_files.lua", "--in", input, "--out", output }
      if progress then argv[#argv + 1] = "--progress" end
      local r = ctx.run_child(name, creds, argv)
      verify(name)
      local function row(p)
        return { mib_s = mib / p.wall_s, wall_s = p.wall_s, cpu_s = p.cpu_s, user_s = p.user_s, sys_s = p.sys_s,
          peak_rss_kb = p.hwm_kb,
          added_peak_kb = p.peak_kb, added_final_kb = p.final_kb, lua_kb = p.lua_kb,
          progress_calls = p.progress_calls }
      end
      return { upload = row(r.upload), download = row(r.download), base_rss_kb = r.rss_base_kb,
        hwm_reset = r.hwm_reset }
    end
  end
  local function curl_side()
    curl_headers()
    local up = ctx.run_child("curl upload", nil, curl_argv("-X", "POST", "-H", "Content-Type: application/pdf",
      "-T", input, "-o", resp, srv.url .. "/files"))
    local id = (read_file(resp) or ""):match('"id"%s*:%s*"([^"]+)"')
    if not id then error("files: curl upload: no file id in " .. tostring(read_file(resp)), 0) end
    local down = ctx.run_child("curl download", nil, curl_argv("-o", output, srv.url .. "/files/" .. id))
    verify("curl")
    return { upload = curl_row(up), download = curl_row(down), base_rss_kb = small.maxrss_kb }
  end
  local sides = {
    { name = "hypatos", hypatos = true, run = hypatos_side("hypatos", false) },
    { name = "hypatos + progress", hypatos = true, run = hypatos_side("hypatos + progress", true) },
    { name = "curl -T / -o", run = curl_side },
  }

  local function body()
    local g = ctx.run_child("files_util gen", nil, { FILES_UTIL, "gen", input, tostring(bytes), "1" })
    print(("benchmark files: a %d MiB file (pseudo-random bytes, written in %.1f s) in %s, uploaded with"
      .. " POST %s/files and downloaded back to disk with GET /files/{id}, compared with cmp; one process"
      .. " per side and round, %s"):format(mib, g.wall_s, dir, srv.url,
      args.file_rounds == 1 and "1 round" or args.file_rounds .. " rounds alternating"))
    curl_headers()
    small = ctx.run_child("curl, small GET", nil, curl_argv("-o", "/dev/null", srv.url .. "/users?limit=1"))
    -- warm-up, untimed: one curl upload and download, so that the first side measured does not
    -- alone pay for the memory the page cache takes first (on this kind of VM, touching GiBs of
    -- fresh memory costs seconds of system time; pages freed and reused are cheap)
    curl_side()
    reset()

    for _, s in ipairs(sides) do s.results = {} end
    for round = 1, args.file_rounds do
      local order = {}
      for i = 1, #sides do order[i] = sides[round % 2 == 0 and #sides + 1 - i or i] end
      for _, s in ipairs(order) do
        local cpu0 = ctx.server_cpu()
        local r = s.run()
        local cpu1 = ctx.server_cpu()
        reset()
        r.server_cpu_s = cpu0 and cpu1 and cpu1 - cpu0 or nil
        s.results[#s.results + 1] = r
        io.stderr:write(("  round %d %-20s upload %5.0f MiB/s %9s, download %5.0f MiB/s %9s\n"):format(round,
          s.name, r.upload.mib_s, kib(r.upload.added_peak_kb, true), r.download.mib_s,
          kib(r.download.added_peak_kb, true)))
      end
    end

    -- per side and phase: medians of speed and CPU, the worst (largest) of the memory figures
    for _, s in ipairs(sides) do
      for _, ph in ipairs({ "upload", "download" }) do
        local agg = {}
        for _, k in ipairs({ "mib_s", "wall_s", "cpu_s", "user_s", "sys_s" }) do
          local l = {}
          for i, r in ipairs(s.results) do l[i] = r[ph][k] end
          agg[k] = median(l)
        end
        for _, k in ipairs({ "peak_rss_kb", "added_peak_kb", "added_final_kb", "lua_kb", "progress_calls" }) do
          for _, r in ipairs(s.results) do
            if r[ph][k] then agg[k] = math.max(agg[k] or -math.huge, r[ph][k]) end
          end
        end
        s[ph] = agg
      end
      local l = {}
      for _, r in ipairs(s.results) do l[#l + 1] = r.server_cpu_s end
      s.server_cpu_s = #l == #s.results and median(l) or nil
      s.base_rss_kb = s.results[1].base_rss_kb
      s.hwm_reset = s.results[1].hwm_reset
    end

    local data_binary
    if args.curl_data_binary then
      curl_headers() -- a fresh token: reset revoked the last one
      local argv = curl_argv("-X", "POST", "-H", "Content-Type: application/pdf", "--data-binary", "@" .. input,
        "-o", resp, srv.url .. "/files")
      for i, a in ipairs(argv) do argv[i] = sh(a) end
      local out = capture(table.concat(argv, " ") .. " 2>&1") or ""
      local okj, r = pcall(cjson.decode, out:match("(%b{})%s*$") or "")
      if not okj or type(r) ~= "table" or not r.maxrss_kb then error("files: curl --data-binary: " .. out, 0) end
      data_binary = curl_row(r)
      data_binary.ok = r.ok
      data_binary.error = not r.ok and (out:match("curl: ([^\n]+)") or ("exit " .. tostring(r.exit))) or nil
      reset()
    end

    -- the table
    local rounds = args.file_rounds > 1 and (" (medians of %d rounds; memory: the largest)"):format(args.file_rounds)
      or ""
    print(("  %-20s %-40s   %-40s%s"):format("", "---------------- upload ----------------",
      "--------------- download ---------------", rounds))
    print(("  %-20s %6s %12s %10s %9s   %6s %12s %10s %9s"):format("", "MiB/s", "CPU usr+sys", "peak RSS",
      "added", "MiB/s", "CPU usr+sys", "peak RSS", "added"))
    local function line(name, u, d)
      local function cols(p)
        if not p then return ("%6s %12s %10s %9s"):format("-", "-", "-", "-") end
        local cpu = p.user_s and p.sys_s and ("%.2f+%.2f"):format(p.user_s, p.sys_s) or ("%.2f"):format(p.cpu_s)
        return ("%6.0f %12s %10s %9s"):format(p.mib_s, cpu, kib(p.peak_rss_kb), kib(p.added_peak_kb, true))
      end
      print(("  %-20s %s   %s"):format(name, cols(u), cols(d)))
    end
    for _, s in ipairs(sides) do line(s.name, s.upload, s.download) end
    if data_binary then
      line("curl --data-binary", data_binary, nil)
      if not data_binary.ok then print("    curl --data-binary failed: " .. data_binary.error) end
    end
    print(("  added: hypatos, VmHWM minus VmRSS after require + client + token (%s); curl, ru_maxrss"
      .. " minus that of a small GET (%s)"):format(kib(sides[1].base_rss_kb), kib(small.maxrss_kb)))
    local finals = {}
    for _, s in ipairs(sides) do
      if s.hypatos then
        finals[#finals + 1] = ("%s %s / %s (Lua heap %s / %s)"):format(s.name, kib(s.upload.added_final_kb, true),
          kib(s.download.added_final_kb, true), kib(s.upload.lua_kb), kib(s.download.lua_kb))
      end
    end
    print("  RSS growth left once each call returned (upload / download): " .. table.concat(finals, "; "))
    local srv_cpu = {}
    for _, s in ipairs(sides) do
      if s.server_cpu_s then
        srv_cpu[#srv_cpu + 1] = ("%s %.1f s of %.1f s"):format(s.name, s.server_cpu_s,
          s.upload.wall_s + s.download.wall_s)
      end
    end
    print(("  server (one nginx worker) CPU per side, upload + download: %s; worker peak RSS %s"):format(
      table.concat(srv_cpu, ", "), kib(worker_hwm())))
    print(("  progress function calls: %d upload, %d download"):format(math.floor(sides[2].upload.progress_calls),
      math.floor(sides[2].download.progress_calls)))
    if not sides[1].hwm_reset then
      print("  note: /proc/self/clear_refs not writable: the peaks include start-up's (upper bounds)")
    end

    local hyp, prog, curl = sides[1], sides[2], sides[3]
    local limit = 16384
    local summary = { benchmark = "files", file_mib = mib, bytes = bytes, rounds = args.file_rounds,
      curl_small_get_rss_kb = small.maxrss_kb, worker_peak_rss_kb = worker_hwm() }
    for _, ph in ipairs({ "upload", "download" }) do
      local worst = math.max(hyp[ph].added_peak_kb, prog[ph].added_peak_kb)
      ctx.check(("files: %d MiB %s adds < 16 MiB RSS"):format(mib, ph), worst < limit,
        ("%s (%s with progress); curl %s"):format(kib(hyp[ph].added_peak_kb, true),
          kib(prog[ph].added_peak_kb, true), kib(curl[ph].added_peak_kb, true)))
      summary[ph .. "_added_kb"] = worst
      summary[ph .. "_pass"] = worst < limit
    end
    for _, s in ipairs(sides) do
      summary[s.name] = { upload = s.upload, download = s.download, base_rss_kb = s.base_rss_kb,
        server_cpu_s = s.server_cpu_s }
    end
    if data_binary then summary["curl --data-binary"] = { upload = data_binary } end
    return summary
  end

  local ok, res = pcall(body)
  -- Clean up whatever happened; a Ctrl-C raises "interrupted!" at the next Lua instruction,
  -- which can be in here, hence the second try.
  local function cleanup()
    os.execute("rm -rf " .. sh(dir))
    if not ok then reset() end -- the server's copies (stop() removes them too)
  end
  if not pcall(cleanup) then pcall(cleanup) end
  if not ok then error(res, 0) end
  return res
end

------------------------------------------------------------------ registry

-- Every benchmark: name (for --only), run(ctx) → summary table, or pending = why it is skipped.
-- To add one: write its client(s) under bench/, a bench_<name>(ctx) above that uses
-- ctx.run_child / ctx.check / ctx.srv, and an entry here.
local BENCHMARKS = {
  { name = "get", run = bench_get },
  { name = "files", run = bench_files },
}

------------------------------------------------------------------ main

local function main()
  local args = parse_args(arg)
  local lua_cmd = arg[-1] or "lua5.4"
  for name in pairs(args.only or {}) do
    local known = false
    for _, b in ipairs(BENCHMARKS) do known = known or b.name == name end
    if not known then error("bench: unknown benchmark " .. name, 0) end
  end

  build_raw()
  print("machine: " .. machine(lua_cmd))

  local srv = assert(launcher.start({ config = { quota = 1000000000 } }))
  local ctx = new_context(args, srv, lua_cmd)
  local ok, err = pcall(function()
    for _, b in ipairs(BENCHMARKS) do
      if not args.only or args.only[b.name] then
        if b.pending then
          print(("benchmark %s: skipped (%s)"):format(b.name, b.pending))
        else
          local summary = b.run(ctx)
          print("bench-json: " .. cjson.encode(summary))
        end
      end
    end
  end)
  srv:stop()
  if not ok then
    io.stderr:write("bench: FAILED: ", tostring(err), "\n")
    os.exit(1)
  end
  print("targets:")
  for _, c in ipairs(ctx.checks) do
    print(("  %-4s %-52s %s"):format(c.pass and "PASS" or "MISS", c.name, c.detail or ""))
  end
  os.exit(0)
end

main()
