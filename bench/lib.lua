--- bench/lib.lua — helpers shared by the runner (bench/run.lua) and the benchmark modules
-- (bench/<name>.lua): shell quoting, files, statistics and number formats, the C helpers'
-- paths, a monotonic clock.

local M = {}

M.BUILD_DIR = "build/bench"
M.RAW_BIN = M.BUILD_DIR .. "/raw_get"
-- raw_get built with a Lua inside (-DRAW_GET_LUA): --cjson decodes every body with lua-cjson
M.RAW_CJSON_BIN = M.BUILD_DIR .. "/raw_get_cjson"         -- Lua 5.4
M.RAW_CJSON_JIT_BIN = M.BUILD_DIR .. "/raw_get_cjson_jit" -- LuaJIT
M.FILES_UTIL = M.BUILD_DIR .. "/files_util"

--- A string quoted for /bin/sh.
function M.sh(s) return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'" end
local sh = M.sh

--- All the output of a shell command (nil when it cannot start).
function M.capture(cmd)
  local p = io.popen(cmd)
  if not p then return nil end
  local out = p:read("a")
  p:close()
  return out
end
local capture = M.capture

--- A file's whole content, or nil.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- The median of a list of numbers (NaN for an empty list).
function M.median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local n = #t
  if n == 0 then return 0 / 0 end
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

--- The smallest and the largest of a list of numbers.
function M.minmax(list)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(list) do
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  return lo, hi
end

--- 12345.6 → "12,346"
function M.thousands(x)
  local s = string.format("%d", math.floor(x + 0.5))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

--- KiB free on the filesystem of `dir` (nil when unknown).
function M.free_kb(dir)
  local out = capture("df -Pk " .. sh(dir) .. " 2>/dev/null") or ""
  return tonumber(out:match("\n%S+%s+%d+%s+%d+%s+(%d+)"))
end

--- 81920 → "80.0 MiB", 900 → "900 KiB" (signed with plus = true).
function M.kib(k, plus)
  if k == nil then return "?" end
  local sign = plus and k >= 0 and "+" or ""
  if math.abs(k) < 10240 then return ("%s%d KiB"):format(sign, math.floor(k + 0.5)) end
  return ("%s%.1f MiB"):format(sign, k / 1024)
end

--- $TMPDIR, or /tmp.
function M.tmpdir()
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  return tmp
end

--- A fresh directory under $TMPDIR (raises when mktemp fails).
function M.mktemp_dir(what)
  local dir = (capture("mktemp -d " .. sh(M.tmpdir() .. "/hypatos-bench-" .. what .. "-XXXXXX") .. " 2>/dev/null")
    or ""):gsub("%s+$", "")
  if dir == "" then error("bench: " .. what .. ": mktemp -d failed in " .. M.tmpdir(), 0) end
  return dir
end

--- Seconds on a monotonic clock (luasystem; luasocket's gettime as a fallback).
do
  local ok, system = pcall(require, "system")
  if ok and system.monotime then
    M.monotime = system.monotime
  else
    M.monotime = require("socket").gettime
  end
end

--- Runs `body()`, then `cleanup()` whatever happened (twice if a Ctrl-C interrupts the first
-- try), then re-raises body's error; returns body's value.
function M.finally(body, cleanup)
  local ok, res = pcall(body)
  if not pcall(cleanup, ok) then pcall(cleanup, ok) end
  if not ok then error(res, 0) end
  return res
end

--- The credentials of the local server as the HYPATOS_* environment of a child process.
function M.creds(srv, extra)
  local env = { HYPATOS_CLIENT_ID = srv.client_id, HYPATOS_CLIENT_SECRET = srv.client_secret,
    HYPATOS_BASE_URL = srv.url }
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

--- A shell command line: `env` (a table of variables) before `argv` (a list), each word quoted.
function M.command(env, argv)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. sh(v) end
  for _, a in ipairs(argv) do parts[#parts + 1] = sh(a) end
  return table.concat(parts, " ")
end

--- A child process's result: the last line of its output `out`, a JSON object with ok = true,
-- decoded; raises (naming `label`, with the output) when there is none or `exited` is not true.
function M.child_result(label, out, exited, how, code)
  local line = out:match("(%b{})%s*$")
  local okj, res = pcall(require("cjson").decode, line or "")
  if not exited or not okj or type(res) ~= "table" or res.ok ~= true then
    error(("%s failed (%s %s): %s"):format(label, tostring(how), tostring(code), out), 0)
  end
  return res
end

--- The command line of bench/hypatos_map.lua (see that file) for `opts`.
-- @param opts { op =, calls =, concurrency =, id =, file =, tag =, prefetch = false, warm = true,
--   no_store = true, latency = true, keep = true }
function M.map_argv(ctx, opts)
  local argv = { ctx.lua, "bench/hypatos_map.lua", "--op", opts.op, "--calls", tostring(opts.calls),
    "--concurrency", tostring(opts.concurrency or 0) }
  for _, k in ipairs({ "id", "file", "tag" }) do
    if opts[k] then argv[#argv + 1] = "--" .. k; argv[#argv + 1] = tostring(opts[k]) end
  end
  if opts.prefetch == false then argv[#argv + 1] = "--no-prefetch" end
  for _, k in ipairs({ "warm", "no_store", "latency", "keep" }) do
    if opts[k] then argv[#argv + 1] = "--" .. k:gsub("_", "-") end
  end
  return argv
end

--- Runs bench/hypatos_map.lua in a child process (M.map_argv; the local server's credentials and
-- opts.env in its environment) and adds what the server counted meanwhile: server_requests,
-- server_token_requests, server_429. A failed call raises (the run exits 1) unless
-- opts.allow_failures (then r.failures and r.first_error tell).
-- @param opts those of M.map_argv, and env =, allow_failures = true
function M.map_child(ctx, label, opts)
  local srv = ctx.srv
  local before = srv:stats()
  local r = ctx.run_child(label, M.creds(srv, opts.env), M.map_argv(ctx, opts))
  local after = srv:stats()
  r.server_requests = math.tointeger(after.requests - before.requests)
  r.server_token_requests = math.tointeger(after.token_requests - before.token_requests)
  r.server_429 = math.tointeger((after.statuses["429"] or 0) - (before.statuses["429"] or 0))
  if r.failures > 0 and not opts.allow_failures then
    error(("%s: %d of %d calls failed, the first: %s"):format(label, r.failures, r.calls, tostring(r.first_error)), 0)
  end
  return r
end

--- Sleeps `seconds` (luasocket).
function M.sleep(seconds) require("socket").sleep(seconds) end

--- The body of a GET of `url` with a bearer token, as the server sent it (raises unless 200).
-- @tparam string url
-- @tparam string token the access token
function M.fetch(url, token)
  local out = {}
  local _, code = require("socket.http").request({ url = url, sink = require("ltn12").sink.table(out),
    headers = { Authorization = "Bearer " .. token, Accept = "application/json" } })
  if code ~= 200 then error(("bench: GET %s: %s"):format(url, tostring(code)), 0) end
  return table.concat(out)
end

--- The id of the first user of the local server.
function M.first_user(srv)
  local c = require("hypatos").new({ client_id = srv.client_id, client_secret = srv.client_secret,
    base_url = srv.url })
  local page = assert(c.users:list({ limit = 1 }))
  c:close()
  return page.data[1].id
end

--- Starts an application nginx with ONE worker (spec/fixtures/ngx_app.lua) whose client talks to
-- the local server `srv` (its URL and credentials in the environment), so that the worker's pid is
-- known. Raises when nginx does not have exactly one worker.
-- @tparam table srv the local server
-- @tparam string init the init_worker_by_lua code
-- @tparam string locations the location blocks
-- @tparam string what the benchmark's name, for the error
-- @treturn table the app (`app:stop()`)
-- @treturn number its worker's pid
function M.one_worker_app(srv, init, locations, what)
  local app = assert(require("spec.fixtures.ngx_app").start{ workers = 1, init_worker = init, locations = locations,
    env = { HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id,
      HYPATOS_CLIENT_SECRET = srv.client_secret } })
  local pids = {}
  for pid in (capture("ps --ppid " .. math.tointeger(app.pid) .. " -o pid= 2>/dev/null") or ""):gmatch("%d+") do
    pids[#pids + 1] = tonumber(pid)
  end
  if #pids ~= 1 then
    app:stop()
    error(("%s: expected one worker of nginx %d, found %d"):format(what, math.tointeger(app.pid), #pids), 0)
  end
  return app, pids[1]
end

return M
