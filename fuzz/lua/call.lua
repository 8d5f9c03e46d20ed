--- Fuzz target: one call through the binding, driven as a Lua driver drives it
-- (client:prepare, call:step with a fake clock). The input picks the client's
-- options, the method, path parameters, query (NUL in keys and values, arrays,
-- odd numbers, wrong types), caller headers and a JSON body, then answers every
-- send: a transport failure, or a status with headers (rate-limit, Retry-After,
-- content types, raw bytes) and a body (token answers around fuzzed fields, JSON,
-- raw bytes); a token cache and hooks that return odd tokens, raise, or close the client
-- while its call runs. Checked: misuse raises "hypatos.request: …" and bad data gives an
-- `invalid` error; every send has an encoded URL that carries exactly the query
-- asked for, no CR/LF/NUL in a header; waits are finite and not negative; the
-- call ends with a value or an error value within a bound of steps; the client
-- secret never shows up in an error.
local hypatos = require "hypatos"
local bytes = require "fuzzbytes"

local SECRET = "s3cret-Fz9"
local BASE = "https://api.example.test/v2"
local STRINGS = { "", "a", "a b", "a\0b", "\0", "é", "\xff\xfe", "../x", "%41", "&=?#", ("x"):rep(300) }
local NUMBERS = { 0, -1, 1.5, 2 ^ 53, 1e300, 0 / 0, math.huge, math.maxinteger, math.mininteger, -0.0 }
local HEADER_NAMES = { "X-Trace", "Content-Type", "Accept", "X-\0", "Authorization", "Host", "bad name", "", "X-Ä" }
local RESP_NAMES = { "content-type", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
  "retry-after", "ratelimit", "ratelimit-policy", "location", "x-hy-filename", "content-disposition" }
local RESP_VALUES = { "application/json", "application/problem+json", "text/plain", "0", "1", "60", "1e300",
  "-1", "nan", "1700000000000", "Wed, 21 Oct 2015 07:28:00 GMT", "10, 10;w=1", "limit=1, remaining=0, reset=5",
  "q=10;w=1", "attachment; filename=\"../../x\"", "" }
local STATUSES = { 200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504, 302, 100 }
local FAILURES = { "resolve", "connect", "tls", "tls_verify", "timeout", "send", "recv", "closed", "partial",
  "too_large", "io", 6, 7, 28, 35, 56 }

--- A scalar from the stream (or, rarely, something that is not one).
local function scalar(f)
  local c = f:pick(8)
  if c <= 2 then return f:bytes(24)
  elseif c == 3 then return f:one(STRINGS)
  elseif c == 4 then return f:one(NUMBERS)
  elseif c == 5 then return f:pick(2) == 0
  elseif c == 6 then return f:pick(1000)
  else return f:pick(4) == 0 and {} or print end
end

--- The query table and the pairs it must produce ("k=v", decoded).
local function query_of(f)
  local q = {}
  for _ = 1, f:pick(5) do
    local k = f:pick(3) == 0 and f:one(STRINGS) or f:bytes(12)
    if f:pick(6) == 0 then k = f:one({ 1, 2.5, true }) end
    if f:pick(3) == 0 then
      local list = {}
      for i = 1, f:pick(4) do list[i] = scalar(f) end
      q[k] = list
    else
      q[k] = scalar(f)
    end
  end
  return q
end

local function text(v)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if type(v) == "number" then return ("%.17g"):format(v) end
  return tostring(v)
end

--- The "k=v" pairs a query table must give, sorted.
local function expected_pairs(q)
  local out = {}
  for k, v in pairs(q) do
    if type(v) == "table" then
      for _, item in ipairs(v) do out[#out + 1] = k .. "=" .. text(item) end
    else
      out[#out + 1] = k .. "=" .. text(v)
    end
  end
  table.sort(out)
  return out
end

--- The "k=v" pairs of a URL's query, decoded and sorted.
local function url_pairs(url)
  local out = {}
  local qs = url:match("%?(.*)$")
  if not qs then return out end
  for item in (qs .. "&"):gmatch("([^&]*)&") do
    local k, v = item:match("^([^=]*)=(.*)$")
    assert(k, "query item without '=': " .. item)
    local dec = function(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
    out[#out + 1] = dec(k) .. "=" .. dec(v)
  end
  table.sort(out)
  return out
end

--- A body for an answer: a token answer, JSON, or raw bytes.
local function body_of(f, token)
  local c = f:pick(5)
  if c == 0 then return f:bytes(200) end
  if c == 1 then return nil end
  if token or c == 2 then
    local tok = f:pick(2) == 0 and f:bytes(20) or ("tok-" .. f:pick(100))
    local exp = f:one({ "3600", "0", "-5", "1e300", "\"60\"", "null", "0.001", "31536001" })
    local quoted = '"' .. tok:gsub('[%c"\\\128-\255]', function(ch) return ("\\u%04x"):format(ch:byte()) end) .. '"'
    local kind = f:one({ "Bearer", "bearer", "MAC", "" })
    return ('{"access_token":%s,"token_type":"%s","expires_in":%s}'):format(quoted, kind, exp)
  end
  return f:one({ '{"id":"u1"}', '{"data":[],"totalCount":0}', '[]', '{"title":"t","detail":"' .. SECRET .. '"}',
    '{"title":"x","status":429}', '"str"', "null", "{", '{"a":' .. ("["):rep(300) .. "}" })
end

--- A result for a send action.
local function result_of(f, act)
  local c = f:pick(8)
  if c == 0 then
    return { error = f:one(FAILURES), sent = f:pick(2) == 0, message = f:pick(2) == 0 and f:bytes(40) or nil }
  end
  local headers = {}
  for _ = 1, f:pick(5) do
    local name = f:pick(4) == 0 and f:bytes(10) or f:one(RESP_NAMES)
    headers[name] = f:pick(3) == 0 and f:bytes(30) or f:one(RESP_VALUES)
  end
  local status = f:one(STATUSES)
  if act.token_request and f:pick(2) == 0 then status = 200 end
  return { status = status, headers = headers, body = body_of(f, act.token_request), elapsed = f:pick(3) }
end

--- A chain of garbage whose finalizers add keys to t while the collector is eager (see
-- encode.lua): they run while the binding walks the query table.
local function chain(t, n, live)
  if n == 0 or not live[1] then return end
  setmetatable({}, { __gc = function()
    if not live[1] then return end
    t["gc" .. n] = "x"
    chain(t, n - 1, live)
  end })
end

local function check_send(act, q)
  assert(type(act.url) == "string")
  assert(not act.url:find("[%z\1-\32\127-\255]"), "unencoded byte in the URL " .. ("%q"):format(act.url))
  for k, v in pairs(act.headers) do
    assert(not (k .. v):find("[%z\r\n]"), "CR, LF or NUL in a header")
  end
  if not act.token_request and q then
    assert(act.url:sub(1, #BASE) == BASE, "the URL left the base URL: " .. act.url)
    local want, got = expected_pairs(q), url_pairs(act.url)
    assert(#want == #got, "the query has " .. #got .. " items, " .. #want .. " expected: " .. act.url)
    for i = 1, #want do assert(want[i] == got[i], "query item " .. ("%q ~= %q"):format(got[i], want[i])) end
  end
end

local function check_error(err)
  assert(hypatos.is_error(err), "not an error value: " .. tostring(err))
  local s = tostring(err)
  assert(type(s) == "string")
  for _, field in ipairs({ s, err.message, err.body }) do
    if type(field) == "string" then assert(not field:find(SECRET, 1, true), "the client secret is in an error") end
  end
end

return function(data)
  local f = bytes.new(data)
  local opts = {
    client_id = "id", client_secret = SECRET, base_url = BASE,
    random = function() return 0.5 end,
    max_retries = f:pick(4), throttle = f:pick(2) == 0,
    max_wait = f:one({ 0, 1, 60 }), backoff_base = 0.1, backoff_cap = 2,
    max_body_size = f:pick(2) == 0 and 64 or nil,
  }
  if f:pick(2) == 0 then opts.deadline = f:one({ 0.5, 5, 100 }) end
  -- a token cache and hooks that answer from the input: odd tokens, errors, a close of
  -- the client while its call runs (which must raise, never free what the step uses)
  local client
  local HOOK_ERROR = "fuzz: the hook failed"
  local function act_up()
    local c = f:pick(10)
    if c == 0 then error(HOOK_ERROR) end
    if c == 1 then client:close() end
  end
  local callbacks = f:u8()
  if callbacks & 1 == 1 then
    opts.token_cache = {
      get = function()
        act_up()
        local c = f:pick(4)
        if c == 0 then return nil end
        if c == 1 then return "not a table" end
        return { access_token = c == 2 and f:bytes(20) or "tok-cached", scope = f:pick(2) == 0 and f:bytes(8) or nil,
          expires_at = f:one({ 0, 1005, 2000, 1e300, 0 / 0, -1, "soon" }), lifetime = f:one({ 0, 60, 1e300, 0 / 0 }) }
      end,
      set = function() act_up() end,
    }
  end
  if callbacks & 2 == 2 then opts.on_request = act_up end
  if callbacks & 4 == 4 then opts.on_response = act_up end
  client = hypatos.new(opts)
  local method = f:one({ "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get", "BAD METHOD", "GE\0T" })
  local path = f:one({ "/users", "/users/{id}", "/documents/{id}/file", "/a/{x}/{y}", "/bad path", "users",
    "/users\0/../admin" })
  local ropts = {}
  if path:find("{", 1, true) then
    ropts.params = { id = scalar(f), x = f:bytes(8), y = f:one(STRINGS) }
    if not path:find("{x}", 1, true) then ropts.params.x, ropts.params.y = nil, nil end
  end
  local q = query_of(f)
  if next(q) or f:pick(2) == 0 then ropts.query = q end
  if f:pick(2) == 0 then
    ropts.headers = {}
    for _ = 1, f:pick(3) do ropts.headers[f:one(HEADER_NAMES)] = scalar(f) end
  end
  if f:pick(3) == 0 then ropts.json = { name = f:bytes(10), list = hypatos.array() } end
  if f:pick(4) == 0 then ropts.idempotent = f:pick(2) == 0 end
  local live = { ropts.query and f:pick(8) == 0 }
  local chained = live[1]
  if chained then
    collectgarbage("incremental", 1, 1000, 0)
    chain(ropts.query, 50 + f:u8(), live)
  end
  local ok, call, err = pcall(client.prepare, client, method, path, ropts)
  if live[1] then
    live[1] = false
    collectgarbage("incremental", 200, 100, 13)
  end
  -- keys added by finalizers while the query was read may or may not be in the URL
  local want_query = not chained and (ropts.query or {})
  if not ok then
    assert(type(call) == "string" and call:find("^hypatos%.request: "), "prepare raised: " .. tostring(call))
    return client:close()
  end
  if not call then
    check_error(err)
    assert(err.kind == "invalid", "prepare: unexpected kind " .. tostring(err.kind))
    return client:close()
  end
  local now = 1000
  --- call:step, where a hook's error and closing the client from a callback raise
  local function step(...)
    local sok, a = pcall(call.step, call, ...)
    if sok then return a end
    local busy = "hypatos.Client cannot be closed while one of its calls runs"
    assert(type(a) == "string" and (a:find(HOOK_ERROR, 1, true) or a:find(busy, 1, true)),
      "step raised: " .. tostring(a))
    return nil
  end
  local act = step(now)
  for _ = 1, 300 do
    if not act then break end
    if act.type == "send" then
      check_send(act, want_query)
      now = now + 0.01
      act = step(now, result_of(f, act))
    elseif act.type == "sleep" then
      local s = act.seconds
      assert(type(s) == "number" and s >= 0 and s < math.huge, "bad sleep " .. tostring(s))
      now = now + s
      act = step(now)
    else
      break
    end
  end
  if not act then -- a callback raised: the call is abandoned
    call:close()
    return client:close()
  end
  if act.type == "fail" then
    check_error(act.error)
  else
    assert(act.type == "done", "the call did not end: " .. tostring(act.type))
    assert(type(act.meta) == "table", "done without meta")
  end
  call:close()
  client:close()
end
