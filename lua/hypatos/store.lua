--- The shared store: one token and one quota for every client of a tenant, in
-- many processes and on many hosts (design.md §6). This module holds what the
-- store does — the scripts that run atomically where the state lives, and the
-- store protocol the engine's actions call — and builds a store over any
-- backend that can run them: Redis (`hypatos.redis`: hiredis in plain Lua,
-- lua-resty-redis inside nginx) or an nginx `lua_shared_dict`
-- (`hypatos.ngx.store`, which runs the very same scripts against the dict).
--
-- A store is a table of four functions (the client's option `store`):
--
--     acquire(key, uid, obs, max_wait) → wait, reserved, fleet | nil, err
--         a slot for one request of the tenant `key`: wait 0 = go now; else the
--         slot `wait` seconds from now is reserved for it (reserved = true), or,
--         when that is more than `max_wait`, nothing is reserved. `obs` is what
--         the client's last answers said ({limit, window, remaining, reset,
--         pause, age}), `uid` the client (fleet = clients seen lately).
--     get(key, refused), set(key, token, ticket), release(key, ticket, err)
--         the token, as the token cache protocol has it (README "Token cache").
--
-- The limiter is GCRA-style on the store's clock (Redis `TIME`; never a
-- client's): one slot every `window / limit × (1 + SLACK)` seconds, each
-- reserved by one atomic call, so requests in flight are counted and no
-- read-then-increment race exists. It follows the server: `limit` and
-- `window` come from the answers' headers; an answer with nothing left
-- pauses the fleet until the window's end (the tightest bound the answers
-- gave: servers round the reset up); a 429 or a Retry-After pauses it too;
-- fewer left than the pace would use pushes the next slot out. Before the
-- quota is known, one slot every COLD_GAP seconds.
--
-- Keys: `<prefix>{<tenant>}:<name>` — one hash tag per tenant (Redis Cluster
-- keeps a tenant's keys on one node); the tenant is the HMAC the client's key
-- carries, never a credential in clear.
-- @module hypatos.store

local core = require "hypatos.core"

local M = {}

--- Share of the quota the limiter leaves unused (slots are `1 + SLACK` times the
-- server's interval apart), so that the time between a slot and the request's
-- arrival cannot put one request too many into a server's window.
M.SLACK = 0.02
--- Seconds between slots before anything is known of the quota.
M.COLD_GAP = 0.1
--- Seconds a client counts in the fleet after its last request.
M.FLEET_TTL = 15
--- Seconds a token fetch holds the others back at most (its lock expires then).
M.LOCK_TTL = 5
--- Seconds a refusal of the credentials is remembered.
M.DENY_TTL = 10
--- Seconds a client that finds another fetch out waits before it asks again.
M.POLL = 0.02
--- Seconds past the backend's timeout after which the store no longer reserves a slot for an
-- `acquire` (its client has gone on alone: a stalled store runs such scripts when it resumes).
M.LATE_MARGIN = 0.05

-- The scripts (Lua 5.1, as Redis and LuaJIT run them). Numbers go back as
-- strings: Redis turns a Lua number into an integer.
M.SCRIPTS = {}

-- KEYS: quota hash, fleet set. ARGV: uid, max_wait, has_obs, limit, window,
-- remaining, reset, pause, age, slack, cold_gap, fleet_ttl, deadline (the
-- store's time after which the client no longer waits for this answer; '' none).
-- Returns {wait, reserved (1|0), fleet, now}, or {'late', 0, 0, now} past the deadline
-- (a script that waited in a stalled store: its client went on alone, and a slot
-- reserved for it would hold the fleet back for nothing).
M.SCRIPTS.acquire = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local deadline = tonumber(ARGV[13])
if deadline and now > deadline then return {'late', 0, 0, stamp} end
local q = redis.call('HMGET', KEYS[1], 'tat', 'limit', 'window', 'pause', 'wend')
local tat, limit, window = tonumber(q[1]) or 0, tonumber(q[2]), tonumber(q[3])
local pause, wend = tonumber(q[4]) or 0, tonumber(q[5])
local slack = tonumber(ARGV[10])
if ARGV[3] == '1' then
  local at = now - (tonumber(ARGV[9]) or 0)
  local l, w = tonumber(ARGV[4]), tonumber(ARGV[5])
  if l and l > 0 then limit = l end
  if w and w > 0 then window = w end
  local p = tonumber(ARGV[8])
  if p and p > 0 and at + p > pause then pause = at + p end
  local rem, rst = tonumber(ARGV[6]), tonumber(ARGV[7])
  if rem and rst then
    local upper = at + rst
    if wend and wend > at then
      if upper < wend then wend = upper end
    else
      wend = upper
    end
    if rem <= 0 then
      if wend > pause then pause = wend end
    elseif limit and window then
      local floor = wend - rem * window / limit * (1 + slack)
      if floor > tat then tat = floor end
    end
  end
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[12]))
redis.call('EXPIRE', KEYS[2], 3600)
local fleet = redis.call('ZCARD', KEYS[2])
local gap = tonumber(ARGV[11])
if limit and window then gap = window / limit * (1 + slack) end
local start = math.max(tat, now, pause)
local wait = start - now
local reserved = 0
if wait <= tonumber(ARGV[2]) then
  tat = start + gap
  reserved = 1
end
redis.call('HSET', KEYS[1], 'tat', tostring(tat), 'limit', tostring(limit or ''), 'window', tostring(window or ''),
  'pause', tostring(pause), 'wend', tostring(wend or ''))
redis.call('EXPIRE', KEYS[1], 3600)
return {tostring(wait), reserved, fleet, stamp}
]]

-- KEYS: token, lock, generation, denial. ARGV: refused token ('' none), uid, lock_ttl_ms.
-- Returns {'token', json, pttl} | {'denied', json} | {'fetch', ticket} |
-- {'wait', json or '', pttl}. A token the client saw refused is dropped when it
-- is still the stored one (late 401s never drop a newer token).
M.SCRIPTS.token_get = [[
local cur = redis.call('GET', KEYS[1])
if cur and ARGV[1] ~= '' then
  local ok, t = pcall(cjson.decode, cur)
  if ok and type(t) == 'table' and t.access_token == ARGV[1] then
    redis.call('DEL', KEYS[1])
    cur = false
  end
end
local pttl = cur and redis.call('PTTL', KEYS[1]) or -2
if cur and pttl > 0 then
  local ok, t = pcall(cjson.decode, cur)
  local life = ok and type(t) == 'table' and tonumber(t.lifetime) or 0
  local margin = math.min(60000, life * 100)
  if pttl > margin then return {'token', cur, pttl} end
else
  cur = false
end
local denied = redis.call('GET', KEYS[4])
if denied then return {'denied', denied} end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local gen = redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], 86400 * 30)
  local ticket = gen .. ':' .. ARGV[2]
  redis.call('SET', KEYS[2], ticket, 'PX', ARGV[3])
  return {'fetch', ticket}
end
return {'wait', cur or '', pttl}
]]

-- KEYS: token, lock. ARGV: ticket ('' none), token json (without gen), ttl_ms.
-- Stores the token unless a newer fetch has one (a late write: 0). Returns 1 | 0.
M.SCRIPTS.token_set = [[
local held = redis.call('GET', KEYS[2])
local gen = tonumber(string.match(ARGV[1], '^(%d+):')) or 0
local cur = redis.call('GET', KEYS[1])
local curgen = 0
if cur then
  local ok, t = pcall(cjson.decode, cur)
  curgen = ok and type(t) == 'table' and tonumber(t.gen) or 0
end
local mine = ARGV[1] ~= '' and held == ARGV[1]
if not mine then
  if held then return 0 end                                -- another fetch holds the lock
  if ARGV[1] == '' then if cur then return 0 end           -- no ticket: only where there is none
  elseif gen <= curgen then return 0 end                   -- a newer fetch stored one
end
local t = cjson.decode(ARGV[2])
t.gen = gen
redis.call('SET', KEYS[1], cjson.encode(t), 'PX', ARGV[3])
if mine then redis.call('DEL', KEYS[2]) end
return 1
]]

-- KEYS: lock, denial. ARGV: ticket, denial json ('' none), deny_ttl_ms.
M.SCRIPTS.token_release = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
return 1
]]

for name, src in pairs(M.SCRIPTS) do
  M.SCRIPTS[name] = { name = name, src = src, sha = core.sha1_hex(src) }
end

--- The Redis keys of a client key (`hypatos-quota:v1:<tenant>` or
-- `hypatos-token:v1:<tenant><token>`, tenant and token 32 hex digits each).
-- @tparam string prefix the store's key prefix
-- @tparam string key the client's key
-- @treturn string `<prefix>{<tenant>}:` (the tenant's keys start with it)
-- @treturn string the token part ('' for a quota key)
local function base(prefix, key)
  local tenant, token = key:match("^hypatos%-%a+:v1:(" .. ("%x"):rep(32) .. ")(%x*)$")
  if not tenant then error("hypatos.store: not a client key: " .. tostring(key), 3) end
  return prefix .. "{" .. tenant .. "}:", token
end
M.base = base

--- 16 random hex digits (from /dev/urandom; else the clock and an address): what makes a
-- lock's value unique to one fetch, with the generation before it.
-- @treturn string
function M.random_id()
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(8)
  if f then f:close() end
  if bytes and #bytes == 8 then
    return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
  end
  return ("%x%s"):format(math.floor(core.now() * 1e6) % 0x7fffffff, tostring({}):match("0x(%x+)") or "0")
end

--- `n` as the decimal text a script reads (`""` for nil).
local function num(n)
  if n == nil then return "" end
  return ("%.6f"):format(n)
end

--- Builds a store over `backend`, a function `eval(script, keys, args)` →
-- reply | nil, err (reply as Redis gives it: arrays, strings, integers;
-- `null` for a nil bulk). Errors of the backend are raised by get (a failed
-- store: the engine opens its breaker), returned by acquire, ignored by set
-- and release.
-- @tparam function eval the backend
-- @tparam[opt] table opts `prefix` (default `"hypatos:"`), `lock_ttl`, `deny_ttl` (seconds),
--   `timeout` (seconds the backend waits for an answer: an `acquire` the store runs later than
--   that, its client gone on alone, reserves nothing), `now` (the clock)
-- @treturn table the store `{acquire, get, set, release}`
function M.new(eval, opts)
  opts = opts or {}
  local prefix = opts.prefix or "hypatos:"
  local lock_ms = math.floor((opts.lock_ttl or M.LOCK_TTL) * 1000)
  local deny_ms = math.floor((opts.deny_ttl or M.DENY_TTL) * 1000)
  local S = M.SCRIPTS
  local decode, encode, now = core.json_decode, core.json_encode, core.now
  if opts.now then now = opts.now end
  local id = M.random_id() -- in tickets, beside the fetch's generation
  local budget = opts.timeout and opts.timeout + M.LATE_MARGIN -- nil: answers never come late
  local offset -- the store's clock minus this one, the largest seen (nil until an answer came)
  local store = {}

  --- A slot for one request (see the module comment).
  -- @tparam string key the client's quota key
  -- @tparam string uid the client
  -- @tparam[opt] table obs what its last answers said
  -- @tparam number max_wait the longest wait the call accepts
  -- @return wait, reserved, fleet | nil, err
  function store.acquire(key, uid, obs, max_wait)
    local b = base(prefix, key)
    local o = obs or {}
    local r, err
    for _ = 1, 2 do
      -- the deadline on the store's clock: this clock plus the largest offset seen (answers
      -- come after the store read its clock, so an offset seen is at most the true one: the
      -- deadline errs late), plus the backend's timeout and a margin
      local deadline = budget and offset and num(now() + offset + budget) or ""
      r, err = eval(S.acquire, { b .. "q", b .. "fleet" }, {
        uid, num(max_wait), obs and "1" or "0", num(o.limit), num(o.window), num(o.remaining), num(o.reset),
        num(o.pause), num(o.age), num(M.SLACK), num(M.COLD_GAP), num(M.FLEET_TTL), deadline })
      if type(r) ~= "table" then return nil, err or "unexpected answer" end
      local stamp = tonumber(r[4]) -- the store's clock when it ran the script
      if stamp and (not offset or stamp - now() > offset) then offset = stamp - now() end
      -- "late" while this client still waits: its clock went back; asked again with the new offset
      if r[1] ~= "late" then return tonumber(r[1]) or 0, r[2] == 1, tonumber(r[3]) end
      err = "the store answered after the client's deadline"
    end
    return nil, err
  end

  --- The token (the token cache protocol's get).
  -- @tparam string key the client's token key
  -- @tparam[opt] string refused a token the API refused
  -- @return token | nil, ticket | seconds | `{denied = …}`
  function store.get(key, refused)
    local b, tok = base(prefix, key)
    local r, err = eval(S.token_get, { b .. "tok:" .. tok, b .. "lock:" .. tok, b .. "gen:" .. tok,
      b .. "deny:" .. tok }, { refused or "", id, tostring(lock_ms) })
    if type(r) ~= "table" then error("hypatos.store: " .. tostring(err or "unexpected answer"), 0) end
    local what = r[1]
    if what == "fetch" then return nil, r[2] end
    if what == "denied" then
      local ok, d = pcall(decode, r[2])
      return { denied = ok and type(d) == "table" and d or { status = 401 } }
    end
    if (what == "token" or what == "wait") and type(r[2]) == "string" and r[2] ~= "" then
      local ok, t = pcall(decode, r[2])
      local left = tonumber(r[3]) or 0
      if ok and type(t) == "table" and left > 0 then
        -- expiry from the store's remaining time (a client's clock may be off); while
        -- another client refreshes it, the lifetime left keeps the engine using it
        local life = what == "token" and tonumber(t.lifetime) or left / 1000
        return { access_token = t.access_token, scope = t.scope, expires_at = now() + left / 1000,
          lifetime = life }
      end
    end
    if what == "wait" then return M.POLL end
    return nil
  end

  --- Stores a fetched token (refused when a newer fetch has stored one).
  -- @tparam string key the client's token key
  -- @tparam table token `{access_token, expires_at, lifetime, scope}`
  -- @tparam[opt] string ticket the fetch's ticket
  -- @treturn boolean stored
  function store.set(key, token, ticket)
    local b, tok = base(prefix, key)
    local ttl = math.floor(((token.expires_at or 0) - now()) * 1000)
    if ttl <= 0 then return false end
    local r = eval(S.token_set, { b .. "tok:" .. tok, b .. "lock:" .. tok }, { ticket or "",
      encode({ access_token = token.access_token, scope = token.scope, lifetime = token.lifetime }), tostring(ttl) })
    return r == 1
  end

  --- Gives a fetch's lock back; remembers a refusal of the credentials (4xx but 429).
  -- @tparam string key the client's token key
  -- @tparam string ticket the fetch's ticket
  -- @tparam[opt] table err the fetch's failure
  function store.release(key, ticket, err)
    local b, tok = base(prefix, key)
    local st = type(err) == "table" and err.kind == "auth" and tonumber(err.status)
    local denial = ""
    if st and st >= 400 and st < 500 and st ~= 429 then
      denial = encode({ status = st, message = tostring(err.message) })
    end
    eval(S.token_release, { b .. "lock:" .. tok, b .. "deny:" .. tok }, { ticket, denial, tostring(deny_ms) })
  end

  return store
end

return M
