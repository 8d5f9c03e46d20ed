--- The `debug` client option (and `HYPATOS_DEBUG=1`): one line per attempt.
--
--     hypatos: debug GET https://…/v2/users?limit=50 -> 200 (attempt 1, 41.3 ms, rate-limit remaining 998)
--     hypatos: debug POST https://…/v2/auth/token [token] -> error: Couldn't connect to server (curl 7)
--       (attempt 2, 1.2 ms)     (one line, wrapped here)
--
-- Built on the `on_response` hook (a hook the caller passes still runs, after
-- the line is written). The hook's info never holds a secret: no
-- Authorization header, no token, no client secret; the lines hold only the
-- method, the URL, the status or transport error, the attempt, the elapsed
-- time and the rate-limit remaining. Lines are free of control characters:
-- whatever came from the server (a rate-limit header, a transport error text)
-- is written through `hypatos.printable.escape` (ESC as `\x1B`, U+009B as
-- `\u009B`), so a hostile answer cannot drive the terminal showing stderr.
-- @internal hypatos.debuglog

local escape = require("hypatos.printable").escape

local M = {}

--- The value of the rate-limit "remaining" count in response headers, or nil.
-- Reads `x-ratelimit-remaining`, else the IETF `RateLimit` field's `remaining=`.
-- @tparam table|nil headers response headers (any case)
-- @treturn string|nil
function M.remaining(headers)
  if type(headers) ~= "table" then return nil end
  local ietf
  for k, v in pairs(headers) do
    local name = type(k) == "string" and k:lower()
    if name == "x-ratelimit-remaining" then return tostring(v) end
    if name == "ratelimit" then ietf = tostring(v):match("remaining=(%d+)") end
  end
  return ietf
end

--- One debug line (without the newline) for an `on_response` info table, its
-- control characters escaped (see `hypatos.printable`).
-- @tparam table info `{method, url, attempt, token_request, status, headers, elapsed}` or
--   `{…, error, code, elapsed}`
-- @treturn string
function M.line(info)
  local outcome
  if info.status then
    outcome = tostring(math.tointeger and math.tointeger(info.status) or info.status)
  else
    outcome = "error: " .. tostring(info.error or "transport failure")
    if info.code and info.code ~= 0 then outcome = outcome .. " (curl " .. tostring(info.code) .. ")" end
  end
  local parts = { ("attempt %s"):format(tostring(info.attempt or "?")) }
  local e = info.elapsed
  if type(e) == "number" then parts[#parts + 1] = e < 1 and ("%.1f ms"):format(e * 1000) or ("%.2f s"):format(e) end
  local rem = M.remaining(info.headers)
  if rem then parts[#parts + 1] = "rate-limit remaining " .. rem end
  return escape(("hypatos: debug %s %s%s -> %s (%s)"):format(tostring(info.method), tostring(info.url),
    info.token_request and " [token]" or "", outcome, table.concat(parts, ", ")))
end

--- Whether the environment asks for debug lines: `HYPATOS_DEBUG` set, non-empty and not "0".
-- @treturn boolean
function M.from_env()
  local v = os.getenv("HYPATOS_DEBUG")
  return v ~= nil and v ~= "" and v ~= "0"
end

--- The line writer of a `debug` option value: `true` writes to stderr.
-- @tparam boolean|function debug the option
-- @treturn function `sink(line)`
local function sink_of(debug)
  if type(debug) == "function" then return debug end
  return function(line) io.stderr:write(line, "\n") end
end

--- A store (`hypatos.store`) whose decisions are written as debug lines: each slot it
-- grants (at once, or after a wait; reserved or not), a store that cannot be asked (the
-- client paces alone for a while), and what its token side answers (a token, a fetch for
-- this client, a wait for another's, a remembered refusal). Never a token or a ticket.
--   hypatos: debug store: slot in 0.051 s (reserved), fleet 4
--   hypatos: debug store: failed (connection: Connection refused): pacing alone
-- @tparam boolean|function debug the option
-- @tparam table store the store
-- @treturn table a store with the same functions, logging
function M.store(debug, store)
  local sink = sink_of(debug)
  local function say(text) sink(escape("hypatos: debug store: " .. text)) end
  local logged = setmetatable({}, { __index = store, __tostring = function() return tostring(store) end })
  --- `store.acquire`, logged.
  -- @tparam string key the quota key
  -- @tparam string uid the client
  -- @tparam[opt] table obs what the answers said
  -- @tparam number max_wait the longest wait accepted
  function logged.acquire(key, uid, obs, max_wait)
    local wait, reserved, fleet = store.acquire(key, uid, obs, max_wait)
    if type(wait) ~= "number" then
      say(("failed (%s): pacing alone"):format(tostring(reserved)))
    elseif wait > 0 then
      say(("slot in %.3f s (%s), fleet %s"):format(wait, reserved and "reserved" or "not reserved: too long",
        tostring(fleet)))
    else
      say(("slot now, fleet %s"):format(tostring(fleet)))
    end
    return wait, reserved, fleet
  end
  --- `store.get`, logged.
  -- @tparam string key the token key
  -- @tparam[opt] string refused a token the API refused
  function logged.get(key, refused)
    local ok, a, b = pcall(store.get, key, refused)
    if not ok then
      say(("token: failed (%s)"):format(tostring(a)))
      error(a, 0)
    end
    if type(a) == "table" and a.denied then
      say("token: refused moments ago (remembered)")
    elseif type(a) == "table" then
      say("token: from the store")
    elseif type(a) == "number" then
      say("token: another client fetches it; waiting")
    elseif b then
      say("token: this client fetches it")
    end
    return a, b
  end
  return logged
end

--- The `on_response` hook for a `debug` option value.
-- @tparam boolean|function debug `true` (write to stderr) or a function receiving each line
-- @tparam[opt] function user_hook the caller's own `on_response`, run after the line
-- @treturn function the hook
function M.hook(debug, user_hook)
  local sink = sink_of(debug)
  return function(info)
    sink(M.line(info))
    if user_hook then return user_hook(info) end
  end
end

return M
