--- bench/run.lua — `make bench`: benchmarks of hypatos against the local Hypatos server,
-- each side by side with a baseline, printed as a table of ratios against the targets.
-- This file is the runner: options, the machine line, the local server, the child-process
-- runner and the PASS/MISS table; each benchmark is a module bench/<name>.lua returning
-- { name, options = { {flag, key, default, help, min =} … }, run = function(ctx) → summary }.
--
--   make bench BENCH_ARGS="--calls 5000 --rounds 5"
--   make bench BENCH_ARGS="--only map-speed,map-token"
--   (or, from the repository root after `make all`:
--    LUA_PATH="lua/?.lua;lua/?/init.lua;./?.lua;;" LUA_CPATH="build/5.4/?.so;;" lua5.4 bench/run.lua …)
--
-- Options: --only NAMES (comma-separated benchmarks; default: all, in the order of BENCHMARKS
-- below), --quick (QUICK below: small sizes and few rounds for every benchmark, a smoke run of
-- the whole bench whose figures mean little; an option given as well wins), --help, and every
-- module's own (listed by --help).
--
-- A missed target prints MISS and still exits 0; a failed call, a crash or a server that
-- does not start exits 1. Benchmark goals, not tests.

local cjson = require "cjson"
local launcher = require "mock.launcher"
local lib = require "bench.lib"
local sh, capture, read_file = lib.sh, lib.capture, lib.read_file
local BUILD_DIR, RAW_BIN, FILES_UTIL = lib.BUILD_DIR, lib.RAW_BIN, lib.FILES_UTIL

-- Every benchmark, in the order they run; bench/<name>.lua each.
local BENCHMARKS = { "decode", "get", "get-split", "files", "nginx-burst", "nginx-files", "nginx-get",
  "map-speed", "map-quota", "map-uploads", "map-token", "fleet" }

------------------------------------------------------------------ options

-- --quick: the defaults it replaces (option key → value).
local QUICK = { decode_rounds = 1, decode_ms = 50, calls = 300, rounds = 2, warmup = 50, file_mib = 32,
  nginx_file_mib = 32, burst_rounds = 1, map_calls = 64, quota_calls = 40, upload_mib = 16, token_calls = 1000,
  token_rounds = 1, fleet_calls = 40 }

local function load_modules()
  local mods = {}
  for i, name in ipairs(BENCHMARKS) do
    mods[i] = dofile("bench/" .. name .. ".lua")
    assert(mods[i].name == name, "bench/" .. name .. ".lua: name " .. tostring(mods[i].name))
  end
  return mods
end

local function usage(mods)
  local lines = { "usage: lua5.4 bench/run.lua [--only NAMES] [--quick] [options]",
    "  --only NAMES   comma-separated, of: " .. table.concat(BENCHMARKS, ", "),
    "  --quick        small sizes, few rounds: a smoke run (options given as well win)" }
  for _, m in ipairs(mods) do
    for _, o in ipairs(m.options or {}) do
      lines[#lines + 1] = ("  %-22s %s%s"):format(o[1] .. (o[3] == false and "" or " N"), o[4],
        o[3] and (" (default %d)"):format(o[3]) or "")
    end
  end
  return table.concat(lines, "\n")
end

local function parse_args(argv, mods)
  local a, by_flag = {}, {}
  for _, m in ipairs(mods) do
    for _, o in ipairs(m.options or {}) do
      by_flag[o[1]] = o
      a[o[2]] = o[3]
    end
  end
  for _, k in ipairs(argv) do
    if k == "--quick" then
      for key, v in pairs(QUICK) do
        assert(a[key] ~= nil, "bench: QUICK names an unknown option " .. key)
        a[key] = v
      end
      a.quick = true
    end
  end
  local i = 1
  while i <= #argv do
    local k = argv[i]
    local o = by_flag[k]
    if k == "--quick" then -- luacheck: ignore 542 (applied above, before the options that override it)
    elseif k == "--only" and argv[i + 1] then
      a.only = {}
      for name in argv[i + 1]:gmatch("[^,%s]+") do a.only[name] = true end
      i = i + 1
    elseif k == "--help" or k == "-h" then
      print(usage(mods))
      os.exit(0)
    elseif o and o[3] == false then
      a[o[2]] = true
    elseif o then
      local v = tonumber(argv[i + 1])
      if not v or v < (o.min or 0) or v % 1 ~= 0 then
        error(("bench: %s needs an integer >= %d"):format(k, o.min or 0), 0)
      end
      a[o[2]] = math.tointeger(v)
      i = i + 1
    else
      error("bench: unknown argument " .. tostring(k) .. "\n" .. usage(mods), 0)
    end
    i = i + 1
  end
  for name in pairs(a.only or {}) do
    local known = false
    for _, b in ipairs(BENCHMARKS) do known = known or b == name end
    if not known then error("bench: unknown benchmark " .. name .. " (known: " .. table.concat(BENCHMARKS, ", ")
      .. ")", 0) end
  end
  return a
end

------------------------------------------------------------------ C helpers

-- Builds the C helpers: raw_get (libcurl), raw_get_cjson and raw_get_cjson_jit (libcurl and a Lua:
-- 5.4, LuaJIT) and files_util (libc only).
local function build_raw()
  os.execute("mkdir -p " .. sh(BUILD_DIR))
  local cc = os.getenv("CC") or "cc"
  local raw = "%s -std=c99 -O2 -g -Wall -Wextra %s $(pkg-config --cflags libcurl %s) bench/raw_get.c -o %s"
    .. " $(pkg-config --libs libcurl %s)"
  local cmds = {
    { RAW_BIN, raw:format(cc, "", "", sh(RAW_BIN), "") },
    { lib.RAW_CJSON_BIN, raw:format(cc, "-DRAW_GET_LUA", "lua5.4", sh(lib.RAW_CJSON_BIN), "lua5.4") },
    { lib.RAW_CJSON_JIT_BIN, raw:format(cc, "-DRAW_GET_LUA", "luajit", sh(lib.RAW_CJSON_JIT_BIN), "luajit") },
    { FILES_UTIL, ("%s -std=c99 -O2 -g -Wall -Wextra bench/files_util.c -o %s"):format(cc, sh(FILES_UTIL)) },
  }
  for _, c in ipairs(cmds) do
    if os.execute(c[2]) ~= true then error("bench: cannot build " .. c[1] .. " (" .. c[2] .. ")", 0) end
  end
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
    local p = assert(io.popen(lib.command(env, argv)))
    local out = p:read("a")
    return lib.child_result(label, out, p:close())
  end

  -- Records a target: PASS/MISS; a MISS does not fail the run.
  function ctx.check(name, pass, detail)
    ctx.checks[#ctx.checks + 1] = { name = name, pass = pass, detail = detail }
  end

  return ctx
end

------------------------------------------------------------------ main

local function main()
  local mods = load_modules()
  local args = parse_args(arg, mods)
  local lua_cmd = arg[-1] or "lua5.4"

  build_raw()
  print("machine: " .. machine(lua_cmd))
  print("date: " .. os.date("!%Y-%m-%d %H:%M UTC"))

  local srv = assert(launcher.start({ config = { quota = 1000000000 } }))
  local ctx = new_context(args, srv, lua_cmd)
  local ok, err = pcall(function()
    for _, b in ipairs(mods) do
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
