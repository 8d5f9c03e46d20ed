--- hypatos — a Lua client for the Hypatos REST API v2.
--
--     local hypatos = require "hypatos"
--     local client = hypatos.new{ client_id = "…", client_secret = "…" }
--     local user, err = client.users:get("6295dcd39db1ab740c3e296c")
--
-- This module is `hypatos.core` (the C core: client, engine, transport) with
-- the Lua layer added to the same table: `new` attaches the resources
-- (`client.users`, `client.companies`, …) to every client.
-- @module hypatos

local hypatos = require "hypatos.core"

local core_new = hypatos.core_new or hypatos.new
hypatos.core_new = core_new

--- Resources attached to every client, by field name.
hypatos.resources = {
  users = require "hypatos.users",
  companies = require "hypatos.companies",
  documents = require "hypatos.documents",
  files = require "hypatos.files",
  projects = require "hypatos.projects",
  emails = require "hypatos.emails",
  enrichment = require "hypatos.enrichment",
}

--------------------------------------------------------------------- drivers
-- A client's calls run on a driver: "curl" (libcurl, blocking: plain Lua) or
-- "ngx" (nginx cosockets: inside OpenResty). "auto", the default, picks ngx
-- inside nginx and curl elsewhere. The methods `request` and `token` of every
-- client dispatch on it; the resource methods all go through `request`.

local DRIVERS = { auto = true, curl = true, ngx = true }
local driver_of = setmetatable({}, { __mode = "k" })   -- client → "curl" | "ngx"
local ngx_driver                                        -- hypatos.ngx, loaded on first use

local methods = hypatos.Client
local c_request, c_token = methods.request, methods.token

--- The driver a client's calls use now: "curl" or "ngx" (raising when inside
-- nginx in a phase without cosockets).
local function driver(client, what)
  local d = driver_of[client] or "curl"
  if d == "ngx" then
    ngx_driver = ngx_driver or require "hypatos.ngx"
    ngx_driver.check_phase(what, 3)
  end
  return d
end

local map = require "hypatos.map"
local debuglog = require "hypatos.debuglog"

local resource = require "hypatos.resource"

local c_call = methods.call

--- How resource methods call the core directly: for the libcurl driver `client:call`, or
-- inside a `client:map` task the task's `call` (a prepared call on its multi); for the
-- cosocket driver, in a phase that has cosockets, `hypatos.ngx.call` (elsewhere the general
-- path raises, saying where to call from). See `hypatos.resource.direct`.
-- @param client a client
-- @return function, its first argument | nothing
resource.direct = function(client)
  local d = driver_of[client]
  if d == "curl" then
    local task = map.current(client)
    if task then return task.call, task end
    return c_call, client
  end
  if d == "ngx" and ngx_driver.PHASES[ngx.get_phase()] then return ngx_driver.call, client end
end

--- `client:request(method, path [, opts])`: any API call, on the client's
-- driver (libcurl, nginx cosockets, or inside a `client:map` task in plain Lua:
-- the task's libcurl multi handle). Replaces the core's `Client:request` in
-- `hypatos.Client`; arguments and results are those of `hypatos.core.Client:request`.
-- @tparam string method the HTTP method
-- @tparam string path the path relative to `base_url`, with `{name}` placeholders
-- @tparam[opt] table opts request options (`params`, `query`, `json`, `body`, …)
-- @return[1] the decoded JSON, `true` for an empty answer, or bytes
-- @treturn[1] table meta
-- @treturn[2] nil
-- @treturn[2] table err (see `hypatos.core.Error`)
-- @raise inside nginx in a phase without cosockets, and on misuse
-- @function Client:request
function methods:request(method, path, opts)
  if driver(self, "client:request") == "ngx" then return ngx_driver.request(self, method, path, opts) end
  local task = map.current(self)
  if task then return task:request(method, path, opts) end
  return c_request(self, method, path, opts)
end

--- `client:token()`: the client's token (fetched if none is usable), on the
-- client's driver.
-- @treturn[1] table `{access_token, token_type, expires_at, expires_in, scope, scopes}`
-- @treturn[2] nil
-- @treturn[2] table err
-- @function Client:token
function methods:token()
  if driver(self, "client:token") == "ngx" then return ngx_driver.token(self) end
  local task = map.current(self)
  if task then return task:token() end
  return c_token(self)
end

--- `client:map(items, fn [, opts])`: `fn(item, i)` for every item, up to
-- `opts.concurrency` (default 8) at once, sharing the client's token and quota.
-- See `hypatos.map`.
-- @tparam table items an array
-- @tparam function fn `fn(item, i) → result, err`, called in its own coroutine
-- @tparam[opt] table opts `concurrency` (1–1000), `on_done(i, result, err, done, total)`
-- @treturn table results (`results[i]`: fn's first value; `n = #items`)
-- @treturn table errors (`errors[i]`: fn's second value when its first is nil or false, or
--   what the task raised; nil for a success)
-- @raise on misuse, on SIGINT ("hypatos: interrupted") and when `on_done` raises
-- @function Client:map
function methods:map(items, fn, opts)
  local results, errors = map.map(self, items, fn, opts, driver(self, "client:map"))
  return results, errors
end

--- The sleep and clock functions of a client's driver (for waits in the Lua layer).
-- @tparam hypatos.Client client the client
-- @treturn function sleep(seconds)
-- @treturn function now()
function hypatos.clock(client)
  if driver_of[client] == "ngx" and ngx_driver then return ngx_driver.sleep, ngx_driver.now end
  local task = map.current(client)
  if task then return function(seconds) task:sleep(seconds) end, hypatos.now end
  return hypatos.sleep, hypatos.now
end

--- Creates a client, with the resources attached (`client.users`,
-- `client.documents`, …, `client.enrichment.<type>`).
-- @tparam[opt] table opts the options, see `hypatos.core.Options` (credentials default to
--   `HYPATOS_CLIENT_ID` / `HYPATOS_CLIENT_SECRET`, the URL to `HYPATOS_BASE_URL`). Two options
--   are handled here: `driver`: "auto" (default: nginx cosockets inside OpenResty, else
--   libcurl), "curl" or "ngx"; `debug`: true (one line per attempt on stderr, see
--   `hypatos.debuglog`) or a function receiving each line; default: on when `HYPATOS_DEBUG=1`.
--   `store` (a shared store: `hypatos.redis.store{…}`, `hypatos.ngx.store(name)`) defaults
--   to `hypatos.redis.store{url = HYPATOS_REDIS_URL}` when that variable is set (and no
--   `token_cache` is given); `store = false` opts out
-- @treturn hypatos.Client the client
-- @raise on misuse, naming the option (`hypatos.new: option "timeout" must be > 0, got 0`)
function hypatos.new(opts)
  local d = "auto"
  local dbg
  if type(opts) == "table" then dbg = opts.debug end
  if dbg ~= nil and type(dbg) ~= "boolean" and type(dbg) ~= "function" then
    error(('hypatos.new: option "debug" must be a boolean or a function, got %s'):format(type(dbg)), 2)
  end
  if dbg == nil and (opts == nil or type(opts) == "table") then dbg = debuglog.from_env() end
  if type(opts) == "table" and opts.driver ~= nil then
    d = opts.driver
    if type(d) ~= "string" or not DRIVERS[d] then
      error(('hypatos.new: option "driver" must be "auto", "curl" or "ngx", got %s')
        :format(type(d) == "string" and ("%q"):format(d) or type(d)), 2)
    end
  end
  -- the shared store: the option, else HYPATOS_REDIS_URL (store = false: none)
  local st = type(opts) == "table" and opts.store
  if st ~= nil and st ~= false and type(st) ~= "table" then
    error(('hypatos.new: option "store" must be a store (a table) or false, got %s'):format(type(st)), 2)
  end
  local env_store
  if st == nil and (opts == nil or type(opts) == "table") and not (type(opts) == "table" and opts.token_cache) then
    local url = os.getenv("HYPATOS_REDIS_URL")
    if url and url ~= "" then
      local ok, store = pcall(require("hypatos.redis").store, { url = url })
      if not ok then error(store, type(store) == "string" and 2 or 0) end -- at the caller's line
      env_store = store
    end
  end
  if type(opts) == "table" and (opts.driver ~= nil or opts.debug ~= nil or opts.store == false) or dbg or env_store then
    -- a copy without the Lua-side keys (the caller's table is never modified)
    local copy = {}
    for k, v in pairs(opts or {}) do
      if k ~= "driver" and k ~= "debug" and not (k == "store" and v == false) then copy[k] = v end
    end
    copy.store = copy.store or env_store
    if dbg then
      if copy.on_response ~= nil and type(copy.on_response) ~= "function" then
        error(('hypatos.new: option "on_response" must be a function, got %s'):format(type(copy.on_response)), 2)
      end
      copy.on_response = debuglog.hook(dbg, copy.on_response)
      if copy.store then copy.store = debuglog.store(dbg, copy.store) end
    end
    opts = copy
  end
  local inside = type(ngx) == "table" and type(ngx.get_phase) == "function"
  if d == "auto" then d = inside and "ngx" or "curl" end
  if d == "ngx" then
    if not inside then error('hypatos.new: driver "ngx" needs nginx (ngx_lua)', 2) end
    if type(opts) == "table" and opts.ca_file ~= nil then
      error("hypatos.new: option \"ca_file\" is not available inside nginx: cosockets verify against "
        .. "nginx's trust store; set `lua_ssl_trusted_certificate <file>;` in nginx.conf instead", 2)
    end
    ngx_driver = ngx_driver or require "hypatos.ngx"
  end
  -- Called through pcall, the C core's misuse errors carry no position (luaL_error names the
  -- function calling it: pcall, a C function), so level 2 gives them the caller's line, as
  -- the checks above have: "my_script.lua:12: hypatos.new: option …", never this file's.
  local ok, client = pcall(core_new, opts)
  if not ok then error(client, type(client) == "string" and 2 or 0) end
  driver_of[client] = d
  for name, make in pairs(hypatos.resources) do
    client[name] = make(client)
  end
  return client
end

-- hypatos.sleep and hypatos.now (from the core) are what waits in the Lua
-- layer use (documents:wait) in plain Lua; inside nginx `hypatos.clock` hands
-- out hypatos.ngx.sleep / hypatos.ngx.now (at least 1 ms; a clock that moves).

--- JSON helpers: `encode` (exact numbers, sorted keys, `hypatos.array()` for
-- empty arrays) and `decode` (integers stay integers, `[]` stays an array).
hypatos.json = { encode = hypatos.json_encode, decode = hypatos.json_decode,
  null = hypatos.null, array = hypatos.array }

return hypatos
