--- The local fake Hypatos server for your own tests (busted or anything else).
--
--     local testing = require "hypatos.testing"
--     local srv = assert(testing.start{ quota = 100, window = 1 })
--     local client = testing.client(srv)          -- hypatos.new with the server's URL and credentials
--     testing.fault(srv, { kind = "rate_limit", path = "/v2/users", reset = 1 })
--     print(testing.stats(srv).requests)
--     testing.stop(srv)
--
-- The server is the one the library's own suite uses: Debian's nginx with the
-- Lua module (`apt-get install nginx libnginx-mod-http-lua lua-cjson lua-socket`),
-- on 127.0.0.1 only, with its state in one nginx worker and everything it writes
-- under a fresh temporary directory that `stop` removes. A watchdog stops it when
-- the process that started it exits without calling `stop`. Control endpoints
-- (no auth): `/_mock/faults`, `/_mock/stats`, `/_mock/config`, `/_mock/reset`,
-- `/_mock/revoke`, `/_mock/seed` — see the README, "Testing your code".
-- Needs Lua 5.4 with luasocket and lua-cjson (the launcher's HTTP client).
-- @module hypatos.testing

local M = {}

--- The credentials the server accepts (every scope).
M.CLIENT_ID = "test-client"
M.CLIENT_SECRET = "test-secret"

--- Where the server's pieces are looked for.
M.NGINX = "/usr/sbin/nginx"
M.LUA_MODULE = "/usr/lib/nginx/modules/ngx_http_lua_module.so"

--- True when a file exists (readable).
-- @tparam string path
-- @treturn boolean
local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- True when a module is on package.path (Lua 5.1 has no package.searchpath).
-- @tparam string name
-- @treturn boolean
local function on_path(name)
  local file = name:gsub("%.", "/")
  for template in package.path:gmatch("[^;]+") do
    if exists((template:gsub("%?", file))) then return true end
  end
  return false
end

local launcher_cache

--- The launcher module: installed as `hypatos.mock.launcher`, or mock/launcher.lua of a
-- checkout (two directories above this file). Raises when neither exists.
-- @treturn table the launcher module
function M.launcher()
  if launcher_cache then return launcher_cache end
  if on_path("hypatos.mock.launcher") then
    launcher_cache = require "hypatos.mock.launcher"
    return launcher_cache
  end
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  local path = here .. "/../../mock/launcher.lua"
  if not exists(path) then
    error("hypatos.testing: the local server is not installed (no module hypatos.mock.launcher, no " .. path .. ")", 2)
  end
  launcher_cache = dofile(path)
  return launcher_cache
end

--- Why the server cannot start on this machine, or nil when nginx and its Lua module are there.
-- @tparam[opt] string nginx the nginx binary (default `/usr/sbin/nginx`)
-- @treturn string|nil
function M.missing(nginx)
  nginx = nginx or M.NGINX
  local lacking = {}
  if not exists(nginx) then lacking[#lacking + 1] = nginx .. " (Debian package nginx)" end
  if not exists(M.LUA_MODULE) then lacking[#lacking + 1] = M.LUA_MODULE .. " (libnginx-mod-http-lua)" end
  if #lacking == 0 then return nil end
  return "the local Hypatos server needs nginx with its Lua module; missing: " .. table.concat(lacking, ", ")
    .. ". Install them: apt-get install nginx libnginx-mod-http-lua"
end

local START_KEYS = { port = "number", quota = "number", window = "number", latency = "number",
  processing_time = "number", config = "table", tls = "boolean", nginx = "string" }

--- Starts a server.
-- @tparam[opt] table opts `port` (default: a free one), `quota` requests per `window` seconds
--   (default: no practical limit; window 1), `latency` (seconds added to every API answer),
--   `processing_time` (seconds until a processed document is final, default 1), `config`
--   (more server config keys, see mock/lua/hypatos_mock/control.lua), `tls` (also listen
--   with TLS: `srv.tls_url`, `srv.ca_file`), `nginx` (the binary)
-- @treturn[1] table the server: `url`, `control_url`, `port`, `pid`, `client_id`, `client_secret`,
--   and methods `fault`, `stats`, `configure`, `reset`, `revoke`, `control`, `stop`
-- @treturn[2] nil
-- @treturn[2] string why it did not start (nginx missing, port taken, …)
function M.start(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("hypatos.testing.start: options must be a table", 2) end
  for k, v in pairs(opts) do
    if not START_KEYS[k] then error(("hypatos.testing.start: unknown option %q"):format(tostring(k)), 2) end
    if type(v) ~= START_KEYS[k] then
      error(("hypatos.testing.start: option %q must be a %s, got %s"):format(k, START_KEYS[k], type(v)), 2)
    end
  end
  local why = M.missing(opts.nginx)
  if why then return nil, why end
  local config = {}
  for k, v in pairs(opts.config or {}) do config[k] = v end
  for _, k in ipairs({ "quota", "window", "latency", "processing_time" }) do
    if opts[k] ~= nil then config[k] = opts[k] end
  end
  return M.launcher().start{ port = opts.port, tls = opts.tls or nil, nginx = opts.nginx, config = config }
end

--- Stops a server (idempotent): its nginx, by the pid it wrote, and its temporary directory.
-- @tparam table srv
function M.stop(srv)
  return srv:stop()
end

--- The environment variables a client (or the `hypatos` command) needs for this server.
-- @tparam table srv
-- @treturn table `{HYPATOS_BASE_URL = …, HYPATOS_CLIENT_ID = …, HYPATOS_CLIENT_SECRET = …}`
function M.env(srv)
  return { HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id, HYPATOS_CLIENT_SECRET = srv.client_secret }
end

--- A client for this server.
-- @tparam table srv
-- @tparam[opt] table extra more client options
-- @treturn hypatos.Client
function M.client(srv, extra)
  local o = { base_url = srv.url, client_id = srv.client_id, client_secret = srv.client_secret }
  for k, v in pairs(extra or {}) do o[k] = v end
  return require("hypatos").new(o)
end

--- Queues a fault, or an array of faults (POST /_mock/faults), e.g.
-- `{kind = "rate_limit", path = "/v2/users", reset = 1}` or
-- `{kind = "close", method = "POST", path = "/v2/files"}`.
-- @tparam table srv
-- @tparam table spec
-- @treturn table `{pending = n}`
function M.fault(srv, spec)
  return srv:fault(spec)
end

--- The server's counters and request log (GET /_mock/stats).
-- @tparam table srv
-- @treturn table `{requests, token_requests, by_route, statuses, faults_pending, log, …}`
function M.stats(srv)
  return srv:stats()
end

--- Merges keys into the server's config (POST /_mock/config), e.g. `{quota = 5}`.
-- @tparam table srv
-- @tparam table config
-- @treturn table the new config
function M.configure(srv, config)
  return srv:configure(config)
end

--- Restores the start-up state: seed data, config; clears faults, tokens and stats.
-- @tparam table srv
function M.reset(srv)
  return srv:reset()
end

return M
