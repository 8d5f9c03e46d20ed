-- hypatos_mock.faults — the fault-injection queue. Tests POST faults to /_mock/faults; the
-- first queued fault whose method/path match a /v2 request (and has count left) applies
-- to it and is decremented; it is removed when used up.
--
-- Common fields: kind; method (optional, any case); path (exact, incl. /v2) or
-- path_pattern (Lua pattern); count (default 1, -1 = until cleared); headers (extra
-- response headers, for kinds that answer). Kinds (applied by init.lua):
--   status          answer `status` (default 500) with `body` (table → JSON, string → as
--                   is) or {title, detail, status}
--   rate_limit      429 with x-ratelimit-remaining 0, x-ratelimit-reset `reset` (default 1),
--                   Retry-After `retry_after` when given (number or HTTP-date string)
--   close           read the request body, then drop the connection without an answer
--   close_mid_body  announce the full Content-Length, send half the body, drop
--   delay           sleep `delay` seconds (default 1), then answer normally
--   invalid_json    200, application/json, body `{"data": [` (or `body` when a string)
--   revoke          invalidate every token, then answer normally
--   expire          mark every token expired, then answer normally

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"

local type, pairs, ipairs, pcall, find, upper, floor = type, pairs, ipairs, pcall, string.find, string.upper, math.floor
local remove = table.remove

local M = {}

M.KINDS = {
  status = true, rate_limit = true, close = true, close_mid_body = true, delay = true,
  invalid_json = true, revoke = true, expire = true,
}

-- Validate one fault description; returns a normalised copy or nil, message.
local function normalise(f)
  if type(f) ~= "table" then return nil, "a fault must be a JSON object" end
  local kind = f.kind
  if not M.KINDS[kind] then return nil, "unknown fault kind: " .. tostring(kind) end
  local out = state.copy(f)
  if f.method ~= nil then
    if type(f.method) ~= "string" then return nil, "method must be a string" end
    out.method = upper(f.method)
  end
  if f.path ~= nil and type(f.path) ~= "string" then return nil, "path must be a string" end
  if f.path_pattern ~= nil then
    if type(f.path_pattern) ~= "string" or not pcall(find, "", f.path_pattern) then
      return nil, "path_pattern must be a valid Lua pattern"
    end
  end
  local count = f.count == nil and 1 or f.count
  if type(count) ~= "number" or count ~= floor(count) or (count < 1 and count ~= -1) then
    return nil, "count must be a positive integer (or -1 for unlimited)"
  end
  out.count = count
  if kind == "status" then
    local s = f.status == nil and 500 or f.status
    if type(s) ~= "number" or s < 100 or s > 599 or s ~= floor(s) then return nil, "status must be an HTTP status" end
    out.status = s
  elseif kind == "rate_limit" then
    out.reset = f.reset == nil and 1 or f.reset
    if type(out.reset) ~= "number" or out.reset < 0 then return nil, "reset must be a non-negative number" end
    local ra = f.retry_after
    if ra ~= nil and type(ra) ~= "number" and type(ra) ~= "string" then
      return nil, "retry_after must be a number or a string"
    end
  elseif kind == "delay" then
    out.delay = f.delay == nil and 1 or f.delay
    if type(out.delay) ~= "number" or out.delay < 0 then return nil, "delay must be a non-negative number" end
  end
  if f.headers ~= nil then
    if type(f.headers) ~= "table" then return nil, "headers must be an object" end
    for k, v in pairs(f.headers) do
      if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
        return nil, "headers must map names to strings"
      end
    end
  end
  return out
end

--- Queue one fault or an array of faults (all validated before any is queued).
-- @return number of pending faults, or nil and an error message
function M.add(spec)
  if type(spec) ~= "table" then return nil, "expected a fault object or an array of them" end
  local list = spec[1] ~= nil and spec or { spec }
  local staged = {}
  for i, f in ipairs(list) do
    local out, err = normalise(f)
    if not out then return nil, "fault " .. i .. ": " .. err end
    staged[i] = out
  end
  local q = state.faults
  for _, f in ipairs(staged) do q[#q + 1] = f end
  return #q
end

--- Number of queued faults that still have uses left.
function M.pending()
  return #state.faults
end

--- Take the first fault matching this request, decrementing its count (removing it
-- when used up). Fast path: nil when the queue is empty.
function M.take(method, path)
  local q = state.faults
  if q[1] == nil then return nil end
  for i = 1, #q do
    local f = q[i]
    if (f.method == nil or f.method == method)
      and (f.path == nil or f.path == path)
      and (f.path_pattern == nil or find(path, f.path_pattern)) then
      if f.count > 0 then
        f.count = f.count - 1
        if f.count == 0 then remove(q, i) end
      end
      return f
    end
  end
  return nil
end

--- Drop every queued fault.
function M.clear()
  state.faults = {}
end

--- The queue for GET /_mock/faults.
function M.list()
  return util.array(state.faults)
end

return M
