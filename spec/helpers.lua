--- Shared helpers for the busted specs.
-- * engine-level: a client with a fake base URL and a scripted driver with a
--   fake clock (`helpers.run(call, responses, t0)`), so the engine's decisions
--   are tested without any server;
-- * end-to-end: the local Hypatos server (mock/launcher.lua) on 127.0.0.1,
--   started per spec file and stopped by pid.
local M = {}

local hypatos = require "hypatos"
M.hypatos = hypatos

--- Directory of the hypatos.core build the specs load: build/5.4 (make test) or, under
-- make sanitize, the instrumented build named by HYPATOS_BUILD.
M.build = os.getenv("HYPATOS_BUILD") or "build/5.4"

--- Environment for a child lua5.4 that loads hypatos.core the way the suite does:
-- LUA_PATH, LUA_CPATH and, under make sanitize, the sanitizer runtime (LD_PRELOAD) with
-- its options and LUA_INIT_5_4 (tools/sanitize_env.lua). Returns a table {NAME = value}.
function M.lua_env()
  local env = { LUA_PATH = "lua/?.lua;lua/?/init.lua;;", LUA_CPATH = M.build .. "/?.so;;" }
  local preload = os.getenv("HYPATOS_PRELOAD")
  if preload then
    env.LD_PRELOAD = preload
    env.LUA_INIT_5_4 = os.getenv("HYPATOS_CHILD_INIT")
    env.ASAN_OPTIONS = os.getenv("ASAN_OPTIONS")
    env.UBSAN_OPTIONS = os.getenv("UBSAN_OPTIONS")
  end
  return env
end

--- The same as shell words: "LUA_PATH='…' LUA_CPATH='…' …" (for a command line).
function M.lua_env_words()
  local env, words = M.lua_env(), {}
  for k, v in pairs(env) do words[#words + 1] = ("%s='%s'"):format(k, (v:gsub("'", "'\\''"))) end
  table.sort(words)
  return table.concat(words, " ")
end

--- Options for a client that never reaches a network (engine specs).
function M.opts(extra)
  local o = {
    client_id = "id", client_secret = "secret",
    base_url = "https://api.example.test/v2",
    random = function() return 0.5 end,
  }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

--- A client for engine specs (see opts).
function M.client(extra) return hypatos.new(M.opts(extra)) end

--- A canned token response.
function M.token_response(extra)
  local body = { access_token = "tok-1", token_type = "Bearer", expires_in = 3600,
    scope = "users.read companies.read" }
  for k, v in pairs(extra or {}) do body[k] = v end
  if body.expires_in == false then body.expires_in = nil end
  return { status = 200, headers = { ["content-type"] = "application/json" },
    body = hypatos.json_encode(body) }
end

--- A JSON response.
function M.json(status, value, headers)
  local h = { ["content-type"] = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return { status = status, headers = h, body = hypatos.json_encode(value) }
end

--- Drives a call with scripted results and a fake clock.
-- `responses` is a list; each item answers one "send" (a result table, or a
-- function(action) returning one). Returns a record:
--   { sends = {action…}, sleeps = {seconds…}, result = final action, now = clock }
-- Raises if the script runs out or has answers left over.
function M.run(call, responses, t0)
  local rec = { sends = {}, sleeps = {}, now = t0 or 1000 }
  local i = 0
  local act = call:step(rec.now)
  while true do
    if act.type == "send" then
      rec.sends[#rec.sends + 1] = act
      i = i + 1
      local r = responses[i]
      if r == nil then error("script ran out at send #" .. i .. " (" .. act.method .. " " .. act.url .. ")", 2) end
      if type(r) == "function" then r = r(act) end
      rec.now = rec.now + (r.latency or 0.001)
      act = call:step(rec.now, r)
    elseif act.type == "sleep" then
      rec.sleeps[#rec.sleeps + 1] = act.seconds
      rec.now = rec.now + act.seconds
      act = call:step(rec.now)
    else
      rec.result = act
      break
    end
  end
  if i < #responses then error(("script has %d unused answers"):format(#responses - i), 2) end
  return rec
end

--- Runs `client:prepare(...)` through `run`.
function M.call(client, method, path, opts, responses, t0)
  local call = assert(client:prepare(method, path, opts))
  return M.run(call, responses, t0)
end

------------------------------------------------------------------ server

--- Starts the local Hypatos server (see mock/launcher.lua).
function M.start_server(opts)
  local launcher = require "mock.launcher"
  return assert(launcher.start(opts or {}))
end

--- A client for the server `srv` (extra options merged in).
function M.server_client(srv, extra)
  local o = { client_id = srv.client_id, client_secret = srv.client_secret, base_url = srv.url }
  for k, v in pairs(extra or {}) do o[k] = v end
  return hypatos.new(o)
end

--- A temporary directory, removed by the returned function.
function M.tmpdir()
  local p = io.popen("mktemp -d " .. (os.getenv("TMPDIR") or "/tmp") .. "/hypatos-spec-XXXXXX")
  local dir = p:read("*l")
  p:close()
  return dir, function() os.execute("rm -rf '" .. dir .. "'") end
end

--- Writes data to path.
function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

--- Reads a whole file (nil if missing).
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("*a")
  f:close()
  return d
end

--- True while process pid runs. A zombie counts as gone: a process started in the
-- background of a shell that has exited is reaped by init, which may take a second.
function M.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("a")
  f:close()
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z"
end

--- Monotonic-enough wall clock in seconds.
function M.now()
  local ok, system = pcall(require, "system")
  if ok and system.gettime then return system.gettime() end
  return os.time()
end

return M
