-- hypatos_mock — entry point of the fake Hypatos v2 server running inside nginx (ngx_lua).
--
--   init_by_lua_block        { require("hypatos_mock").init(settings_file) }
--   init_worker_by_lua_block { require("hypatos_mock").init_worker() }
--   content_by_lua_block     { require("hypatos_mock").handle() }
--
-- Request path for /v2: route lookup → rate-limit count and headers → fault queue →
-- 429 when over quota → 404/405 → bearer token and scope → resource handler → JSON reply.
-- Resource groups live in their own modules; each has register(router). To add one,
-- append its module name to RESOURCES.

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"
local stats = require "hypatos_mock.stats"
local router = require "hypatos_mock.router"
local ratelimit = require "hypatos_mock.ratelimit"
local faults = require "hypatos_mock.faults"
local auth = require "hypatos_mock.auth"
local control = require "hypatos_mock.control"

local ngx = ngx
local find, sub = string.find, string.sub
local setmetatable, pcall, tostring, type = setmetatable, pcall, tostring, type

local M = {}

-- Modules with a register(router) function, in registration order.
local RESOURCES = {
  "hypatos_mock.auth",
  "hypatos_mock.users",
  "hypatos_mock.companies",
  "hypatos_mock.files",
  "hypatos_mock.documents",
  "hypatos_mock.projects",
  "hypatos_mock.enrichment",
  "hypatos_mock.emails",
  "hypatos_mock.echo",
}

local routes = router.new()
for _, name in ipairs(RESOURCES) do require(name).register(routes) end
M.routes = routes

-- Per-request record; `args()` parses the query lazily (repeated keys → tables).
local Request = {}
Request.__index = Request

--- Parsed query arguments (no limit on their number).
function Request:args()
  local a = self._args
  if not a then
    a = ngx.req.get_uri_args(0)
    self._args = a
  end
  return a
end

local NOT_FOUND = util.problem(404, "Not found", "The requested resource does not exist")

-- Seed for math.random, read once from the kernel at start-up.
local random_seed = 0

--- Start-up (nginx master, init_by_lua): load the settings file written by the launcher
-- (`{config = {...}, owner_pid = N, prefix = "..."}`) and build the initial state.
-- Raises on a bad file or config so that nginx refuses to start.
function M.init(settings_file)
  local settings = {}
  if settings_file then
    local f = assert(io.open(settings_file, "rb"))
    local text = f:read("*a")
    f:close()
    local decoded, err = util.decode(text)
    if type(decoded) ~= "table" then error("hypatos mock: bad settings file: " .. tostring(err)) end
    settings = decoded
  end
  local ok, err = state.init(settings.config)
  if not ok then error("hypatos mock: invalid config: " .. err) end
  M.settings = settings
  local f = io.open("/dev/urandom", "rb")
  if f then
    local bytes = f:read(6) or ""
    f:close()
    for i = 1, #bytes do random_seed = random_seed * 256 + bytes:byte(i) end
  end
end

--- Worker start-up: seed the random generator, create the directory for uploaded
-- bodies, start the owner watchdog.
function M.init_worker()
  math.randomseed(random_seed + ngx.now() * 1000 + ngx.worker.pid())
  require("hypatos_mock.files").dir()
  local s = M.settings or {}
  require("hypatos_mock.watchdog").start(s.owner_pid, s.prefix)
end

-- Count the request and send the response. A request body nobody read (errors before
-- the handler, handlers that ignore it) is discarded by nginx, keeping the connection usable.
local function finish(req, status, body, headers)
  stats.record(req, status, req.is_token)
  ngx.req.discard_body()
  return util.send(status, body, headers, req.truncate)
end

-- Authenticate (unless the route is public) and run the handler.
local function dispatch(entry, req, params)
  local opts = entry.opts
  if not opts.public then req.token = auth.check(req, opts.scope) end
  return entry.handler(req, params)
end

-- Turn an error caught from a handler into status, body, headers.
local function error_reply(e)
  if util.is_api_error(e) then
    return e.status, util.problem(e.status, e.title, e.detail), e.headers
  end
  ngx.log(ngx.ERR, "hypatos mock handler failed: ", tostring(e))
  return 500, util.problem(500, "Internal Server Error", tostring(e))
end

-- Apply a fault that answers by itself; returns true when the request is finished.
-- Other kinds only prepare the request (delay, revoke, expire, close_mid_body).
local function apply_fault(req, fault)
  local kind = fault.kind
  if kind == "close" then
    util.drain_body()
    stats.record(req, 444, req.is_token)
    ngx.exit(444)
    return true
  elseif kind == "status" then
    local s = fault.status
    local body = fault.body
    if body == nil and s ~= 204 and s ~= 304 then body = util.problem(s) end
    finish(req, s, body, fault.headers)
    return true
  elseif kind == "rate_limit" then
    ratelimit.set_headers(0, fault.reset)
    local headers = {}
    if fault.headers then for k, v in pairs(fault.headers) do headers[k] = v end end
    if fault.retry_after ~= nil then headers["Retry-After"] = fault.retry_after end
    finish(req, 429, fault.body or ratelimit.body(fault.reset), headers)
    return true
  elseif kind == "invalid_json" then
    local body = type(fault.body) == "string" and fault.body or '{"data": ['
    finish(req, 200, body, fault.headers)
    return true
  elseif kind == "delay" then
    ngx.sleep(fault.delay)
    ngx.update_time()
    req.now = ngx.now()
  elseif kind == "revoke" then
    auth.revoke_all()
  elseif kind == "expire" then
    auth.expire_all(req.now)
  elseif kind == "close_mid_body" then
    req.truncate = true
  end
  return false
end

--- Content handler for every request.
function M.handle()
  local method = ngx.req.get_method()
  local uri = ngx.var.request_uri
  local q = find(uri, "?", 1, true)
  local path = q and sub(uri, 1, q - 1) or uri

  if sub(path, 1, 7) == "/_mock/" then return control.handle(method, path) end
  if path ~= "/v2" and sub(path, 1, 4) ~= "/v2/" then return util.send(404, NOT_FOUND) end

  if state.config.latency > 0 then ngx.sleep(state.config.latency) end
  ngx.update_time()
  local now = ngx.now()
  local entry, params = routes:match(method, path)
  local req = setmetatable({
    method = method, path = path, now = now,
    route_key = entry and entry.key or (method .. " " .. path),
    is_token = entry and entry.opts.token or false,
  }, Request)

  local exceeded, reset = ratelimit.hit(now)
  local fault = faults.take(method, path)
  if fault then
    req.fault = fault
    if apply_fault(req, fault) then return end
  end
  if exceeded then return finish(req, 429, ratelimit.body(reset)) end

  if not entry then
    if params then
      return finish(req, 405, util.problem(405, "Method not allowed",
        "The method " .. method .. " is not allowed on this resource"), { Allow = params })
    end
    return finish(req, 404, NOT_FOUND)
  end

  local ok, status, body, headers = pcall(dispatch, entry, req, params)
  if not ok then
    if ngx.headers_sent then -- a streaming handler failed half-way: nothing sane to add
      stats.record(req, ngx.status, req.is_token)
      return ngx.exit(444)
    end
    status, body, headers = error_reply(status)
  elseif status == nil then -- the handler sent (streamed) its own response
    stats.record(req, ngx.status, req.is_token)
    if req.drop then return ngx.exit(444) end -- close_mid_body, or the client went away
    ngx.req.discard_body()
    return
  end
  return finish(req, status, body, headers)
end

return M
