--- hypatos — a Lua client for the Hypatos REST API v2.
--
--   local hypatos = require "hypatos"
--   local client = hypatos.new{ client_id = "…", client_secret = "…" }
--   local user, err = client.users:get("6295dcd39db1ab740c3e296c")
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

--- client:request(method, path [, opts]) on the client's driver (inside a
-- client:map task in plain Lua: on the task's libcurl multi handle).
function methods.request(client, method, path, opts)
  if driver(client, "client:request") == "ngx" then return ngx_driver.request(client, method, path, opts) end
  local task = map.current(client)
  if task then return task:request(method, path, opts) end
  return c_request(client, method, path, opts)
end

--- client:token() on the client's driver.
function methods.token(client)
  if driver(client, "client:token") == "ngx" then return ngx_driver.token(client) end
  local task = map.current(client)
  if task then return task:token() end
  return c_token(client)
end

--- client:map(items, fn [, opts]) → results, errors: fn(item, i) for every
-- item, up to `opts.concurrency` (default 8) at once. See `hypatos.map`.
function methods.map(client, items, fn, opts)
  local results, errors = map.map(client, items, fn, opts, driver(client, "client:map"))
  return results, errors
end

--- The sleep and clock functions of a client's driver (for waits in the Lua layer).
-- @treturn function sleep(seconds)
-- @treturn function now()
function hypatos.clock(client)
  if driver_of[client] == "ngx" and ngx_driver then return ngx.sleep, ngx.now end
  local task = map.current(client)
  if task then return function(seconds) task:sleep(seconds) end, hypatos.now end
  return hypatos.sleep, hypatos.now
end

--- Creates a client.
-- @tparam[opt] table opts options (see the README's table); misuse raises.
--   `driver`: "auto" (default: nginx cosockets inside OpenResty, else libcurl), "curl" or "ngx";
--   `debug`: true (one line per attempt on stderr, see `hypatos.debuglog`) or a function
--   receiving each line; default: on when `HYPATOS_DEBUG=1`
-- @treturn hypatos.Client
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
  if type(opts) == "table" and (opts.driver ~= nil or opts.debug ~= nil) or dbg then
    -- a copy without the Lua-side keys (the caller's table is never modified)
    local copy = {}
    for k, v in pairs(opts or {}) do if k ~= "driver" and k ~= "debug" then copy[k] = v end end
    if dbg then
      if copy.on_response ~= nil and type(copy.on_response) ~= "function" then
        error(('hypatos.new: option "on_response" must be a function, got %s'):format(type(copy.on_response)), 2)
      end
      copy.on_response = debuglog.hook(dbg, copy.on_response)
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
  local client = core_new(opts)
  driver_of[client] = d
  for name, make in pairs(hypatos.resources) do
    client[name] = make(client)
  end
  return client
end

-- hypatos.sleep and hypatos.now (from the core) are what waits in the Lua
-- layer use (documents:wait); in OpenResty replace them with ngx.sleep / ngx.now.

--- JSON helpers: `encode` (exact numbers, sorted keys, `hypatos.array()` for
-- empty arrays) and `decode` (integers stay integers, `[]` stays an array).
hypatos.json = { encode = hypatos.json_encode, decode = hypatos.json_decode,
  null = hypatos.null, array = hypatos.array }

return hypatos
