--- The OpenResty driver: every call of a client runs over nginx cosockets
-- (`ngx.socket.tcp`) and `ngx.sleep`, so it never blocks the worker. It steps
-- the same engine as the libcurl driver (`client:prepare`), so a call behaves
-- the same: one token, the same retries, pacing and errors.
--
--     lua_shared_dict hypatos 1m;
--     init_worker_by_lua_block {
--       client = require("hypatos").new{ token_cache = require("hypatos.ngx").token_cache("hypatos") }
--     }
--     location /u { content_by_lua_block { local u, err = client.users:get(ngx.var.arg_id) ... } }
--
-- Inside nginx the driver is chosen by itself (option `driver = "auto"`) in the
-- phases that have cosockets: rewrite, access, content and `ngx.timer`
-- callbacks. A call from any other phase (init_worker, set, header or body
-- filters, log) raises an error that says where to call from instead of
-- blocking the worker. TLS is verified against `lua_ssl_trusted_certificate`.
-- @module hypatos.ngx

local cosocket = require "hypatos.cosocket"

local M = {}

local ngx = ngx
local now, sleep -- M.now, M.sleep (defined below)
local perform = cosocket.perform
local FAILED = { failed = true } -- the answer of a cache that raised

--- Phases in which cosockets (and so API calls) are available.
M.PHASES = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
  ssl_session_fetch = true, ssl_client_hello = true }

--- The present, in seconds: `ngx.now()` after `ngx.update_time()`. `ngx.now()`
-- alone is the event loop's cached time, which does not move while a request
-- runs: a driver that steps the engine with it could be told "a little
-- more" forever (issue 16 §0).
-- @treturn number seconds since the epoch
function M.now()
  ngx.update_time()
  return ngx.now()
end

--- `ngx.sleep` for at least a millisecond: nginx sleeps in whole milliseconds,
-- and a shorter sleep becomes `ngx.sleep(0)`, which only yields (and without
-- OpenResty's delayed-events patch spins the worker without reaching its event
-- loop, so the clock never moves).
-- @tparam number seconds how long
function M.sleep(seconds)
  ngx.sleep(seconds > 0.001 and seconds or 0.001)
end

now, sleep = M.now, M.sleep

--- True when running inside nginx (ngx_lua).
function M.inside()
  return type(ngx) == "table" and type(ngx.get_phase) == "function"
end

--- Raises unless the current nginx phase has cosockets.
-- @tparam string what the call, for the message
-- @tparam number level the error level
function M.check_phase(what, level)
  local phase = ngx.get_phase()
  if not M.PHASES[phase] then
    error(("hypatos: %s cannot run in nginx's %s phase, which has no cosockets (a blocking call would stall "
      .. "the worker): call it from rewrite_by_lua*, access_by_lua*, content_by_lua* or an ngx.timer "
      .. "(e.g. ngx.timer.at(0, fn) in init_worker)"):format(what, phase), level + 1)
  end
end

--- The loop of `M.run`: steps `call` until it is done or failed → value, meta | nil, err.
-- The engine is told the time after each action: for an attempt, when it started (the
-- time of the step that asked for it) plus the time the transport measured.
local function drive(call, opts)
  local at = now()
  local act = call:advance(at)
  while true do
    local t = act.type
    if t == "send" then
      -- the caller's progress and limits are for its own transfer, never the token request's
      local res = perform(act, not act.token_request and opts or nil, at)
      at = at + res.elapsed
      act = call:advance(at, res)
    elseif t == "sleep" then
      sleep(act.seconds)
      at = now()
      act = call:advance(at)
    elseif t == "acquire" then
      local ok, wait, reserved, fleet = pcall(act.fn, act.key, act.uid, act.obs, act.max_wait)
      at = now()
      if ok then
        act = call:advance(at, wait, reserved, fleet)
      else
        act = call:advance(at) -- a store that raised: it failed (local pacing for a while)
      end
    elseif t == "cache_get" then
      local got, answer, ticket = pcall(act.fn, act.key, act.refused) -- a failing cache is a miss
      at = now()
      if got then
        act = call:advance(at, answer, ticket)
      else
        act = call:advance(at, FAILED)
      end
    elseif t == "cache_set" then
      pcall(act.fn, act.key, act.token, act.ticket)
      at = now()
      act = call:advance(at)
    elseif t == "cache_release" then
      pcall(act.fn, act.key, act.ticket, act.error)
      at = now()
      act = call:advance(at)
    elseif t == "hook" then
      act.fn(act.info)
      at = now()
      act = call:advance(at)
    elseif t == "done" then
      return act.value, act.meta
    else
      return nil, act.error
    end
  end
end

--- Drives a prepared call to its end; then recycles it (its client's next
-- `prepare` reuses it) or, when something raised, closes it. The engine's callback
-- actions (token cache, hooks) run here, in Lua, so they may yield (a cache on
-- a cosocket, a hook that logs over the network).
-- @param call a `hypatos.Call`
-- @tparam[opt] table opts for the transport: `progress`, `max_body`
-- @return what `client:request` returns
function M.run(call, opts)
  local ok, a, b = pcall(drive, call, opts)
  if not ok then
    call:close()
    error(a, 0)
  end
  call:recycle()
  return a, b
end

--- `client:request` over cosockets. Same arguments and results.
-- @param client a `hypatos.Client`
-- @tparam string method the HTTP method
-- @tparam string path the path relative to `base_url`
-- @tparam[opt] table opts request options (`progress` is passed to the transport)
-- @return value, meta | nil, err
function M.request(client, method, path, opts)
  local call, err = client:prepare(method, path, opts)
  if not call then return nil, err end
  local progress = type(opts) == "table" and opts.progress or nil
  return M.run(call, progress and { progress = progress } or nil)
end

--- `client:call(op, ...)` over cosockets: a compiled operation (`core.op`) with its path
-- parameters and body positionally, without option tables (what the generated resource
-- methods use). Returns nothing at all when the call is one for the general path
-- (`client:request`: call options given, an argument of another type).
-- @param client a `hypatos.Client`
-- @param op a `hypatos.Op`
-- @param ... the path parameters, then the body
-- @return value, meta | nil, err | nothing
function M.call(client, op, ...)
  local call, err = client:prepare_op(op, ...)
  if call == nil then
    if err == nil then return end
    return nil, err
  end
  return M.run(call)
end

--- `client:token()` over cosockets.
-- @param client a `hypatos.Client`
-- @return token | nil, err
function M.token(client)
  return M.run(client:prepare_token())
end

--- How long a fetch holds the others back (seconds): the lock of a fetch that
-- neither stores a token nor gives up (its worker died) expires after this
-- long, and another client fetches.
M.LOCK_TTL = 5
--- How often a waiting client looks for the fetched token (seconds).
M.LOCK_POLL = 0.02
--- How long a refusal of the credentials is remembered (seconds): meanwhile
-- every client with the same credentials fails at once with that refusal,
-- without asking the token endpoint again.
M.DENY_TTL = 10

local tickets = 0 -- fetch tickets handed out by this worker

--- A token cache in a `lua_shared_dict`, shared by every worker of the nginx
-- instance: pass it as the client's `token_cache`. Entries expire with the token.
-- The key is the client's (an HMAC of its credentials: a client with another
-- secret never finds this client's token). Fetches are single-flight across
-- workers and clients: when no usable token is cached (or only the one the API
-- just refused), one fetch gets a ticket — a lock in the dict, unique to that
-- fetch, that expires after `LOCK_TTL` — and every other client waits (the
-- engine sleeps `LOCK_POLL` and asks again) for the token it stores. A fetch
-- that fails releases the lock at once; when the token endpoint refused the
-- credentials, the refusal is remembered for `DENY_TTL` seconds, so the other
-- clients fail with it instead of asking again.
-- @tparam string name the dict's name (`lua_shared_dict <name> 1m;`)
-- @treturn table `{get = fn(key, refused), set = fn(key, token, ticket), release = fn(key, ticket, err)}`
function M.token_cache(name)
  if type(name) ~= "string" then
    error("hypatos.ngx.token_cache: the name of a lua_shared_dict expected, got " .. type(name), 2)
  end
  if not M.inside() then error("hypatos.ngx.token_cache: only inside nginx (ngx_lua)", 2) end
  local dict = ngx.shared[name]
  if not dict then
    error(("hypatos.ngx.token_cache: no lua_shared_dict %q in nginx.conf (add `lua_shared_dict %s 1m;`)")
      :format(name, name), 2)
  end
  local json = require "hypatos.core"

  --- A decoded JSON entry of the dict, or nil.
  local function entry(key)
    local s = dict:get(key)
    if not s then return nil end
    local ok, t = pcall(json.json_decode, s)
    return ok and type(t) == "table" and t or nil
  end

  return {
    --- The cached token for `key` (not `refused`, the one the API just refused); else a
    -- remembered refusal `{denied = {status, message}}`; else, when no other fetch is out,
    -- nil and a ticket (this client fetches); else `LOCK_POLL` (ask again after that long).
    -- @tparam string key the client's cache key
    -- @tparam[opt] string refused the access token the API refused
    -- @return `{access_token, expires_at, lifetime, scope}` | `{denied = …}` | nil, ticket | seconds
    get = function(key, refused)
      local t = entry(key)
      if t and t.access_token ~= refused and type(t.expires_at) == "number" and t.expires_at > now() then
        return t
      end
      local denied = entry(key .. "|denied")
      if denied then return { denied = denied } end
      tickets = tickets + 1
      local ticket = ("%d-%d-%.6f"):format(ngx.worker.pid(), tickets, now())
      if dict:add(key .. "|lock", ticket, M.LOCK_TTL) then return nil, ticket end
      return M.LOCK_POLL
    end,
    --- Stores a fetched token until it expires; releases the fetch's lock.
    -- @tparam string key the client's cache key
    -- @tparam table token `{access_token, expires_at, lifetime, scope}`
    -- @tparam[opt] string ticket the fetch's ticket (from `get`)
    set = function(key, token, ticket)
      local ttl = (token.expires_at or 0) - now()
      local held = dict:get(key .. "|lock")
      -- a fetch whose lock expired and was taken by another keeps a token that lives
      -- longer (the newer fetch's) in place
      local old = held ~= ticket and entry(key)
      if ttl > 0 and not (old and type(old.expires_at) == "number" and old.expires_at > token.expires_at) then
        dict:set(key, json.json_encode(token), ttl)
      end
      if ticket and held == ticket then dict:delete(key .. "|lock") end
    end,
    --- Gives a fetch's lock back without a token; remembers a refusal of the credentials
    -- (the token endpoint answered 4xx other than 429) for `DENY_TTL` seconds.
    -- @tparam string key the client's cache key
    -- @tparam string ticket the fetch's ticket
    -- @tparam[opt] table err the fetch's failure (a `hypatos.Error`)
    release = function(key, ticket, err)
      if dict:get(key .. "|lock") == ticket then dict:delete(key .. "|lock") end
      local st = type(err) == "table" and err.kind == "auth" and tonumber(err.status)
      if st and st >= 400 and st < 500 and st ~= 429 then
        dict:set(key .. "|denied", json.json_encode({ status = st, message = tostring(err.message) }), M.DENY_TTL)
      end
    end,
  }
end

--- The few Redis commands the store's scripts use, over a `lua_shared_dict`
-- (hashes and sorted sets kept as JSON in one entry). Runs inside the store's
-- lock, never yields.
-- @tparam table dict the dict
-- @treturn function `call(cmd, ...)` as `redis.call` in a script
local function dict_redis(dict)
  local core = require "hypatos.core"
  local decode, encode = core.json_decode, core.json_encode
  local function tab(key)
    local v = dict:get(key)
    if not v then return {} end
    local ok, t = pcall(decode, v)
    return ok and type(t) == "table" and t or {}
  end
  local function put(key, t)
    local ttl = dict:ttl(key)
    dict:set(key, encode(t), ttl and ttl > 0 and ttl or 0)
  end
  --- The sorted set at key, as the number of members with a score of at most max removed
  -- (ZREMRANGEBYSCORE) or counted (ZCARD).
  local function zset(key, max)
    local t, n, cut = tab(key), 0, 0
    for m, score in pairs(t) do
      if max and score <= max then t[m], cut = nil, cut + 1 else n = n + 1 end
    end
    if max then put(key, t) return cut end
    return n
  end
  return function(cmd, key, a, b, ...)
    if cmd == "TIME" then
      local t = now()
      local sec = math.floor(t)
      return { tostring(sec), tostring(math.floor((t - sec) * 1e6)) }
    elseif cmd == "HMGET" then
      local t = tab(key)
      local out = { t[a] or false, t[b] or false }
      for i = 1, select("#", ...) do out[#out + 1] = t[select(i, ...)] or false end
      return out
    elseif cmd == "HSET" then
      local t, rest = tab(key), { a, b, ... }
      for i = 1, #rest, 2 do t[rest[i]] = tostring(rest[i + 1]) end
      put(key, t)
      return 1
    elseif cmd == "EXPIRE" then
      return dict:expire(key, tonumber(a)) and 1 or 0
    elseif cmd == "ZADD" then
      local t = tab(key)
      t[b] = tonumber(a)
      put(key, t)
      return 1
    elseif cmd == "ZREMRANGEBYSCORE" then
      return zset(key, tonumber(b))
    elseif cmd == "ZCARD" then
      return zset(key)
    elseif cmd == "GET" then
      return dict:get(key) or false
    elseif cmd == "SET" then -- SET key value [PX ms]
      dict:set(key, a, b and tonumber((...)) / 1000 or 0)
      return "OK"
    elseif cmd == "DEL" then
      dict:delete(key)
      return 1
    elseif cmd == "EXISTS" then
      return dict:get(key) ~= nil and 1 or 0
    elseif cmd == "INCR" then
      return (dict:incr(key, 1, 0))
    elseif cmd == "PTTL" then
      if dict:get(key) == nil then return -2 end
      local ttl = dict:ttl(key)
      if not ttl or ttl == 0 then return -1 end
      return math.floor(ttl * 1000)
    end
    error("hypatos.ngx.store: no " .. tostring(cmd) .. " in a shared dict")
  end
end

--- How long a worker may hold the store's lock (seconds): the scripts never
-- yield, so this only matters when a worker dies inside one.
M.STORE_LOCK_TTL = 0.05

--- A shared store in a `lua_shared_dict`: the token and the quota for every worker of this
-- nginx (pass it as the client's `store`; `hypatos.redis` shares them between hosts).
-- It runs the scripts of `hypatos.store` — the same limiter and token rules as Redis — on
-- the dict, each under a lock that keeps the other workers out for the few microseconds
-- it runs (they wait with `ngx.sleep`, never blocking).
-- @tparam string name the dict's name (`lua_shared_dict <name> 1m;`)
-- @tparam[opt] table opts `lock_ttl`, `deny_ttl` (seconds), as `hypatos.store.new`
-- @treturn table the store (`{acquire, get, set, release}`)
function M.store(name, opts)
  if type(name) ~= "string" then
    error("hypatos.ngx.store: the name of a lua_shared_dict expected, got " .. type(name), 2)
  end
  if not M.inside() then error("hypatos.ngx.store: only inside nginx (ngx_lua)", 2) end
  local dict = ngx.shared[name]
  if not dict then
    error(("hypatos.ngx.store: no lua_shared_dict %q in nginx.conf (add `lua_shared_dict %s 1m;`)")
      :format(name, name), 2)
  end
  local shared = require "hypatos.store"
  local core = require "hypatos.core"
  local env = setmetatable({ redis = { call = dict_redis(dict) },
    cjson = { encode = core.json_encode, decode = core.json_decode } }, { __index = _G })
  local compiled = {}
  for n, script in pairs(shared.SCRIPTS) do
    local fn = assert(loadstring(script.src, "=hypatos.store." .. n))
    setfenv(fn, env)
    compiled[script] = fn
  end
  local LOCK = "hypatos-store-lock"
  local function eval(script, keys, args)
    for _ = 1, 1000 do
      if dict:add(LOCK, true, M.STORE_LOCK_TTL) then
        env.KEYS, env.ARGV = keys, args
        local ok, r = pcall(compiled[script])
        dict:delete(LOCK)
        if not ok then return nil, tostring(r) end
        return r
      end
      sleep(0.001)
    end
    return nil, "the store's lock stayed taken"
  end
  return shared.new(eval, { prefix = "", now = now, lock_ttl = opts and opts.lock_ttl,
    deny_ttl = opts and opts.deny_ttl })
end

return M
