--- bench/get.lua — benchmark "get" of `make bench` (bench/run.lua): hypatos against raw libcurl
-- and against the loop a user would write with a libcurl binding and lua-cjson (issue 19).
--
-- Benchmark "get": the same N × GET /v2/users/{id} (a ~600-byte user) through
--   * raw: bench/raw_get.c, libcurl used directly, nothing decoded (built here into
--     build/bench/raw_get with `cc … $(pkg-config --cflags --libs libcurl)`);
--   * hypatos: bench/hypatos_get.lua, client.users:get(id), the answer decoded to Lua tables;
--   * raw + cjson: raw_get.c built with a Lua 5.4 inside (build/bench/raw_get_cjson --cjson):
--     the raw loop, and every body decoded by lua-cjson's cjson.decode into Lua tables. The
--     stand-in for the Lua-cURLv3 + lua-cjson loop of issue 19: Lua-cURLv3 (module `cURL`) is not
--     packaged by Debian, and its lua-curl (module `curl`, the FreePOPs binding) is built for Lua
--     5.1/5.2 only. It is the faster peer: no Lua loop, no write callback into Lua, no concat.
-- With --luajit, the same under LuaJIT (OpenResty's VM):
--   * hypatos (LuaJIT): bench/hypatos_get.lua with build/luajit/hypatos/core.so;
--   * raw + cjson (LuaJIT): build/bench/raw_get_cjson_jit --cjson (a LuaJIT state inside);
--   * luacurl + cjson (LuaJIT): bench/luacurl_get.lua, the hand-written loop with Debian's
--     lua-curl (one easy handle, the same headers, a fetched token, the body collected into a
--     table and cjson.decode'd); skipped with a note when `require "curl"` fails in luajit.
-- Every side keeps one connection alive; each process reports its wall time and its own CPU
-- time (user + sys) over the timed calls only. One server (nginx, one worker) serves every run.
-- The ratios checked are the medians of the per-round ratios (each round runs every side back
-- to back, the order reversed every other round), which resists the speed swings of a shared
-- machine better than the ratio of the per-side medians (printed as well).
-- Targets: hypatos ≥ 0.8× raw throughput, ≤ 1.3× raw CPU per call, ≥ 1.2× the throughput of
-- raw + cjson, exactly one token request per hypatos process; with --luajit, hypatos (LuaJIT)
-- ≤ 1.3× raw CPU per call and ≥ 1.2× the throughput of raw + cjson (LuaJIT) and of luacurl +
-- cjson (LuaJIT).

local lib = require "bench.lib"
local read_file, median, minmax, thousands = lib.read_file, lib.median, lib.minmax, lib.thousands
local RAW_BIN, RAW_CJSON_BIN, RAW_CJSON_JIT_BIN = lib.RAW_BIN, lib.RAW_CJSON_BIN, lib.RAW_CJSON_JIT_BIN

local M = { name = "get" }

-- flag, key, default, help (an integer option; default false: a switch)
M.options = {
  { "--calls", "calls", 2000, "timed GET calls per client process (also get-split)", min = 1 },
  { "--rounds", "rounds", 15, "processes per side, the order swapped every round; medians are reported"
    .. " (also get-split)", min = 1 },
  { "--warmup", "warmup", 200, "untimed calls at the start of every process (also get-split)" },
  { "--raw-setup", "raw_setup", false, "also time raw_get --per-call-setup (curl_easy_reset + every option"
    .. " set again before each call, as csrc/transport does): isolates that cost" },
  { "--luajit", "luajit", false, "also time hypatos and the peers under LuaJIT (build/luajit/hypatos/core.so,"
    .. " raw_get_cjson_jit, bench/luacurl_get.lua)" },
  { "--callgrind", "callgrind", nil, "also count user-space instructions per call of every side under"
    .. " valgrind (N calls, about 10 s per 1000 calls): a noise-free view of client work" },
}

-- The user whose JSON is closest to 600 bytes, the client's token and its User-Agent.
function M.pick_target(srv)
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

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local id, token, ua = M.pick_target(srv)
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

  -- the sides: name, run(calls [, command prefix, warmup]) → one process's JSON result;
  -- hypatos = true for hypatos runs, lua = true for every side that makes a request per call
  -- through Lua (its requests are counted at the server); the targets name the sides by key
  local sides, by = {}, {}
  local function add(key, side)
    sides[#sides + 1] = side
    by[key] = side
  end
  local function counted(r, before)
    local after = srv:stats()
    r.server_token_requests = math.tointeger(after.token_requests - before.token_requests)
    r.server_requests = math.tointeger(after.requests - before.requests)
    return r
  end
  local function raw_side(name, bin, extra)
    return { name = name, run = function(calls, prefix, warmup)
      local argv = with_prefix(prefix, { bin, "--url", url, "--calls", tostring(calls),
        "--warmup", tostring(warmup or args.warmup) })
      if ua then argv[#argv + 1] = "--user-agent"; argv[#argv + 1] = ua end
      if extra then argv[#argv + 1] = extra end
      return ctx.run_child(name, { HYPATOS_BENCH_TOKEN = token }, argv)
    end }
  end
  local function hyp_side(name, lua_cmd, cpath)
    return { name = name, hypatos = true, lua = true, run = function(calls, prefix, warmup)
      local env = {}
      for k, v in pairs(creds) do env[k] = v end
      if cpath then env.LUA_CPATH = cpath end
      local before = srv:stats()
      return counted(ctx.run_child(name, env, with_prefix(prefix, { lua_cmd, "bench/hypatos_get.lua", "--id", id,
        "--calls", tostring(calls), "--warmup", tostring(warmup or args.warmup) })), before)
    end }
  end
  local function luacurl_side(name, lua_cmd)
    return { name = name, lua = true, run = function(calls, prefix, warmup)
      local argv = with_prefix(prefix, { lua_cmd, "bench/luacurl_get.lua", "--id", id, "--calls", tostring(calls),
        "--warmup", tostring(warmup or args.warmup) })
      if ua then argv[#argv + 1] = "--user-agent"; argv[#argv + 1] = ua end
      local before = srv:stats()
      return counted(ctx.run_child(name, creds, argv), before)
    end }
  end
  local luajit = os.getenv("LUAJIT") or "luajit"
  add("raw", raw_side("raw libcurl", RAW_BIN))
  add("hyp", hyp_side("hypatos", ctx.lua))
  add("peer", raw_side("raw + cjson", RAW_CJSON_BIN, "--cjson"))
  if args.raw_setup then add("raw_setup", raw_side("raw, per-call setup", RAW_BIN, "--per-call-setup")) end
  local no_luacurl
  if args.luajit then
    add("hyp_jit", hyp_side("hypatos (LuaJIT)", luajit, "build/luajit/?.so;;"))
    add("peer_jit", raw_side("raw + cjson (LuaJIT)", RAW_CJSON_JIT_BIN, "--cjson"))
    if os.execute(lib.sh(luajit) .. " -e 'require \"curl\"' >/dev/null 2>&1") == true then
      add("luacurl_jit", luacurl_side("luacurl + cjson (LuaJIT)", luajit))
    else
      no_luacurl = "luajit cannot load lua-curl (require \"curl\"; Debian lua-curl, tools/deps.sh --bench):"
        .. " no luacurl + cjson side"
    end
  end

  print(("benchmark get: GET %s/users/{id}, %d timed calls per process (+%d warm-up), %d rounds"
    .. " alternating, one keep-alive connection per process"):format(srv.url, args.calls, args.warmup, args.rounds))
  print("  peers: raw libcurl (C, nothing decoded); raw + cjson (the raw C loop with lua-cjson decoding every body"
    .. " in an embedded Lua: the stand-in for a Lua-cURLv3 + cjson loop, which Debian does not package)"
    .. (args.luajit and "; under LuaJIT also luacurl + cjson (Debian lua-curl 0.3.0, module curl, the FreePOPs"
      .. " binding, not Lua-cURLv3: the hand-written Lua loop)" or ""))
  if no_luacurl then print("  note: " .. no_luacurl) end

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
      io.stderr:write(("  round %d %-25s %8.0f calls/s %7.1f us CPU/call\n"):format(round, s.name,
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
  local raw, hyp = by.raw, by.hyp
  local body = raw.results[1].body_bytes / raw.results[1].calls

  print(("user %s, %d-byte JSON body; medians of %d processes per side (min-max in brackets)")
    :format(id, math.floor(body + 0.5), args.rounds))
  print(("  %-25s %24s %26s %13s %14s"):format("", "calls/s", "client CPU us/call", "user/sys", "server us/call"))
  for _, s in ipairs(sides) do
    print(("  %-25s %9s [%6s-%6s] %9.1f [%6.1f-%6.1f] %13s %14s"):format(s.name, thousands(s.tput),
      thousands(s.tput_lo), thousands(s.tput_hi), s.cpu, s.cpu_lo, s.cpu_hi,
      s.user and ("%.0f/%.0f"):format(s.user, s.sys) or "?",
      s.srv_cpu and ("%.1f"):format(s.srv_cpu) or "?"))
  end

  -- The ratios checked are medians of per-round pairs (the sides of a round ran back to back, so
  -- they saw the same machine: on a shared host the speed drifts by 2x within seconds); the
  -- ratios of the per-side medians above are printed too.
  -- ratio(a, b) → { tput =, cpu =, tput_lo/hi, cpu_lo/hi, mtput =, mcpu = }: a over b
  local function ratio(a, b)
    local tput, cpu = {}, {}
    for i = 1, #a.results do
      local ra, rb = a.results[i], b.results[i]
      tput[i] = (ra.calls / ra.wall_s) / (rb.calls / rb.wall_s)
      cpu[i] = (ra.cpu_s / ra.calls) / (rb.cpu_s / rb.calls)
    end
    local q = { tput = median(tput), cpu = median(cpu), mtput = a.tput / b.tput, mcpu = a.cpu / b.cpu }
    q.tput_lo, q.tput_hi = minmax(tput)
    q.cpu_lo, q.cpu_hi = minmax(cpu)
    return q
  end
  local pairs_shown = {
    { "hyp", "raw" }, { "hyp", "peer" }, { "peer", "raw" },
    { "hyp_jit", "raw" }, { "hyp_jit", "peer_jit" }, { "hyp_jit", "luacurl_jit" }, { "peer_jit", "raw" },
    { "luacurl_jit", "raw" },
  }
  local ratios = {}
  print(("ratios, median of the %d per-round ratios [min-max] (ratio of the medians above):"):format(args.rounds))
  for _, p in ipairs(pairs_shown) do
    local a, b = by[p[1]], by[p[2]]
    if a and b then
      local q = ratio(a, b)
      ratios[p[1] .. "/" .. p[2]] = q
      print(("  %-25s / %-25s throughput %.2fx [%.2f-%.2f] (%.2fx), CPU per call %.2fx [%.2f-%.2f] (%.2fx)")
        :format(a.name, b.name, q.tput, q.tput_lo, q.tput_hi, q.mtput, q.cpu, q.cpu_lo, q.cpu_hi, q.mcpu))
    end
  end
  local tokens, per_process_ok = {}, true
  for _, s in ipairs(sides) do
    for i, r in ipairs(s.lua and s.results or {}) do
      if s == hyp then tokens[i] = tostring(r.server_token_requests) end
      if s.hypatos and (r.server_token_requests ~= 1 or r.token_requests ~= 1) then per_process_ok = false end
      if r.server_requests ~= r.calls + r.warmup + 1 then -- e.g. a retried call
        io.stderr:write(("  note: %s, process %d: the server saw %s requests, expected %d\n"):format(s.name, i,
          tostring(r.server_requests), r.calls + r.warmup + 1))
      end
    end
  end
  for _, s in ipairs(sides) do
    for _, r in ipairs(s.lua and {} or s.results) do
      if r.new_connections ~= 0 then
        io.stderr:write("  note: ", s.name, " opened ", r.new_connections, " connection(s) during timed calls\n")
      end
    end
  end
  local function check(label, key, field, limit, at_least)
    local q = ratios[key]
    if not q then return end
    local v = q[field]
    ctx.check(label, at_least and v >= limit or not at_least and v <= limit,
      ("%.2fx [%.2f-%.2f]"):format(v, q[field .. "_lo"], q[field .. "_hi"]))
  end
  check("get: throughput >= 0.80x raw", "hyp/raw", "tput", 0.8, true)
  check("get: CPU per call <= 1.30x raw", "hyp/raw", "cpu", 1.3)
  check("get: throughput >= 1.20x raw + cjson", "hyp/peer", "tput", 1.2, true)
  ctx.check("get: exactly 1 token request per hypatos process", per_process_ok,
    "server counted " .. table.concat(tokens, ", ") .. " over " .. #hyp.results .. " processes")
  check("get (LuaJIT): CPU per call <= 1.30x raw", "hyp_jit/raw", "cpu", 1.3)
  check("get (LuaJIT): throughput >= 1.20x raw + cjson", "hyp_jit/peer_jit", "tput", 1.2, true)
  check("get (LuaJIT): throughput >= 1.20x luacurl + cjson", "hyp_jit/luacurl_jit", "tput", 1.2, true)
  local tput_ratio, cpu_ratio = ratios["hyp/raw"].tput, ratios["hyp/raw"].cpu

  local summary = { benchmark = "get", calls = args.calls, rounds = args.rounds, body_bytes = body,
    throughput_ratio = tput_ratio, cpu_ratio = cpu_ratio, ratios = {} }
  for k, q in pairs(ratios) do summary.ratios[k] = { throughput = q.tput, cpu_per_call = q.cpu } end
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
      print(("  %-25s %9.1fk%s"):format(side.name, side.instr / 1000,
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

return M
