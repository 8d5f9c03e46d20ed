--- A shared store in Redis: one token and one quota for every client of a tenant,
-- on any number of hosts (`hypatos.store` says what it does).
--
--     local client = require("hypatos").new{
--       store = require("hypatos.redis").store{ url = "redis://127.0.0.1:6379/0" },
--     }
--
-- In plain Lua the store talks to Redis through hiredis in the C core
-- (`core.redis`: one connection per store, blocking, bounded by `timeout`);
-- inside nginx through lua-resty-redis (Debian `lua-nginx-redis`, `require
-- "nginx.redis"`) on cosockets from nginx's pool, so nothing blocks a worker.
-- The scripts are loaded by SHA (`EVALSHA`), and loaded again whenever Redis
-- answers NOSCRIPT (a restart, `SCRIPT FLUSH`).
--
-- URL: `redis://[[user]:password@]host[:port][/db]`. `rediss://` (TLS) works
-- inside nginx (the cosocket's TLS, verified against
-- `lua_ssl_trusted_certificate`); hiredis 0.14 (Debian 12) has no TLS, so in
-- plain Lua it is refused with an error that says so. The password goes to
-- Redis only (`AUTH`), never into an error, a log line or `tostring`.
-- @module hypatos.redis

local store = require "hypatos.store"

local unpack = unpack or table.unpack -- luacheck: ignore (LuaJIT inside nginx)

local M = {}

--- Seconds each Redis operation may take (connect, command) by default.
M.TIMEOUT = 0.1

local OPTS = { url = "string", prefix = "string", timeout = "number", lock_ttl = "number", deny_ttl = "number" }

--- Percent-decodes URL user info.
local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- Splits a Redis URL → {tls, host, port, db, username, password}; raises naming the problem
-- (never echoing user info).
-- @tparam string url
-- @treturn table
function M.parse_url(url)
  local scheme, rest = url:match("^(rediss?)://(.*)$")
  if not scheme then
    error(('hypatos.redis: url must start with redis:// or rediss://, got "%s"')
      :format((url:gsub("//[^/@]*@", "//…@"))), 3)
  end
  local userinfo, hostpart = rest:match("^([^@/]*)@(.*)$")
  hostpart = hostpart or rest
  local username, password
  if userinfo then
    local u, p = userinfo:match("^([^:]*):(.*)$")
    if u then username, password = unescape(u), unescape(p) else password = unescape(userinfo) end
    if username == "" then username = nil end
  end
  local host, port, path = hostpart:match("^%[([^%]]+)%]:?(%d*)(/?.*)$")
  if not host then host, port, path = hostpart:match("^([^:/]+):?(%d*)(/?.*)$") end
  if not host then error("hypatos.redis: url has no host", 3) end
  local db = path:match("^/(%d+)$")
  if path ~= "" and path ~= "/" and not db then error("hypatos.redis: url path must be a database number (/0)", 3) end
  port = tonumber(port) or 6379
  if port < 1 or port > 65535 then error("hypatos.redis: url port must be 1 to 65535", 3) end
  return { tls = scheme == "rediss", host = host, port = port, db = tonumber(db) or 0, username = username,
    password = password }
end

--- The backend in plain Lua: a `core.redis` connection (hiredis).
local function hiredis(conf, timeout)
  if conf.tls then
    error("hypatos.redis: rediss:// (TLS) is not available in plain Lua: Debian's hiredis 0.14 has no TLS "
      .. "(use redis:// on a trusted network or an stunnel, or TLS inside nginx, where cosockets do it)", 3)
  end
  local conn = require("hypatos.core").redis{ host = conf.host, port = conf.port, db = conf.db,
    username = conf.username, password = conf.password, timeout = timeout }
  return function(script, keys, args) return conn:eval(script.sha, script.src, keys, args) end, conn
end

--- The backend inside nginx: lua-resty-redis over a pooled cosocket per operation.
local function resty(conf, timeout)
  local redis = require "nginx.redis"
  local null = ngx.null
  local ms = math.max(1, math.floor(timeout * 1000))
  local pool = ("hypatos-redis:%s:%d:%d:%s"):format(conf.host, conf.port, conf.db, conf.username or "")
  --- A reply with ngx.null as Redis's nil, like hiredis gives it (core.null).
  local function plain(v)
    if v == null then return require("hypatos.core").null end
    if type(v) == "table" then for i = 1, #v do v[i] = plain(v[i]) end end
    return v
  end
  return function(script, keys, args)
    local red = redis:new()
    red:set_timeout(ms)
    local ok, err = red:connect(conf.host == "localhost" and "127.0.0.1" or conf.host, conf.port, { pool = pool })
    if not ok then return nil, "connection: " .. tostring(err) end
    if red:get_reused_times() == 0 then
      if conf.tls then
        local sock = rawget(red, "_sock")
        ok, err = sock:sslhandshake(nil, conf.host, true)
        if not ok then red:close() return nil, "connection: TLS handshake failed: " .. tostring(err) end
      end
      if conf.password then
        if conf.username then
          ok, err = red:auth(conf.username, conf.password)
        else
          ok, err = red:auth(conf.password)
        end
        if not ok then red:close() return nil, "redis: AUTH failed: " .. tostring(err) end
      end
      if conf.db ~= 0 then
        ok, err = red:select(conf.db)
        if not ok then red:close() return nil, "redis: " .. tostring(err) end
      end
    end
    local n = #keys
    local argv = { script.sha, n }
    for i = 1, n do argv[#argv + 1] = keys[i] end
    for i = 1, #args do argv[#argv + 1] = args[i] end
    local r
    r, err = red:evalsha(unpack(argv))
    if r == false and tostring(err):find("NOSCRIPT", 1, true) then
      argv[1] = script.src
      r, err = red:eval(unpack(argv)) -- loads the script as it runs it
    end
    if r == nil then red:close() return nil, "connection: " .. tostring(err) end
    red:set_keepalive(60000, 32)
    if r == false then return nil, "redis: " .. tostring(err) end
    return plain(r)
  end
end

--- A shared store in Redis (pass it as the client's `store`).
-- @tparam table opts `url` (required, see the module comment), `prefix` (key prefix,
--   default `"hypatos:"`), `timeout` (seconds per operation, default 0.1), `lock_ttl`,
--   `deny_ttl` (seconds, see `hypatos.store`)
-- @treturn table the store (`{acquire, get, set, release}`)
-- @raise on misuse (unknown option, wrong type, a bad URL), naming it
function M.store(opts)
  if type(opts) ~= "table" then error("hypatos.redis.store: options table expected, got " .. type(opts), 2) end
  for k, v in pairs(opts) do
    if not OPTS[k] then error(('hypatos.redis.store: unknown option "%s"'):format(tostring(k)), 2) end
    if type(v) ~= OPTS[k] then
      error(('hypatos.redis.store: option "%s" must be a %s, got %s'):format(k, OPTS[k], type(v)), 2)
    end
  end
  if not opts.url then error('hypatos.redis.store: option "url" is required', 2) end
  local timeout = opts.timeout or M.TIMEOUT
  if not (timeout > 0 and timeout <= 60) then error('hypatos.redis.store: option "timeout" must be in (0, 60]', 2) end
  local conf = M.parse_url(opts.url)
  local inside = type(ngx) == "table" and type(ngx.get_phase) == "function"
  local eval = (inside and resty or hiredis)(conf, timeout)
  local s = store.new(eval, { prefix = opts.prefix, lock_ttl = opts.lock_ttl, deny_ttl = opts.deny_ttl,
    now = inside and require("hypatos.ngx").now or nil, timeout = timeout })
  return setmetatable(s, { __tostring = function()
    return ("hypatos.redis.store(%s://%s:%d/%d)"):format(conf.tls and "rediss" or "redis", conf.host, conf.port,
      conf.db)
  end })
end

return M
