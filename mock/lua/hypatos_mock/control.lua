-- hypatos_mock.control — the test-control API under /_mock/ (no auth, never rate
-- limited, not counted in the stats). All answers are JSON; bad input gets 400.
--
--   GET    /_mock/health   {ok = true, pid = worker pid}
--   POST   /_mock/reset    restore the start-up config, seed data; clear faults, tokens, stats
--   GET    /_mock/config   the current config
--   POST   /_mock/config   merge a JSON object into the config (null restores a key)
--   GET    /_mock/faults   {pending, faults = [...]}
--   POST   /_mock/faults   queue a fault object or an array of them → {pending}
--   DELETE /_mock/faults   drop all queued faults
--   POST   /_mock/revoke   invalidate every token → {revoked = n}
--   GET    /_mock/stats    {requests, token_requests, by_route (keyed "METHOD /v2/route/{template}"),
--                          statuses, faults_pending, bytes_in, bytes_out (streamed bodies),
--                          log (last 500: method, path, route, status, query, headers facts,
--                          fault, bytes_in/bytes_out of streamed bodies, connection)}
--   GET    /_mock/tokens   {count = live tokens}
--   GET    /_mock/seed     facts about the seed data (tenant, companies, user counts,
--                          projects, documents with their states, files)
--   GET    /_mock/routes   {routes = ["GET /v2/users/{id}", …]} every API route, sorted
--   GET    /_mock/enrichment                           record counts per enrichment type
--                                                       (and per lookup table)
--   GET    /_mock/enrichment/{type}/{externalId}       a stored record as sent (after patches);
--                                                       its id in the X-Mock-Id header
--   GET    /_mock/enrichment/lookup-tables/{table}/{externalId}   a stored lookup-table row, likewise
--
-- Config keys (defaults): quota (1000000) requests per window; window (1) seconds;
-- token_ttl (3600) seconds; omit_expires_in (false); ietf_headers (false) adds RateLimit
-- and RateLimit-Policy; rate_headers (true) false sends no rate-limit header at all;
-- clients (test-client, readonly-client, "weird:client id") map of client_id →
-- {secret, scopes}, replacing the whole map when given; processing_time (1.0) seconds
-- from process-file until a document is final; fail_every (0 = never) every Nth
-- processed document ends in `failed`; latency (0) seconds every /v2 request waits before it
-- is answered. Unknown keys are kept as given.

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"
local stats = require "hypatos_mock.stats"
local faults = require "hypatos_mock.faults"
local auth = require "hypatos_mock.auth"
local seed = require "hypatos_mock.seed"

local ngx = ngx
local pairs, pcall, tostring = pairs, pcall, tostring

local M = {}

-- The current config as JSON-ready data (scope lists stay arrays even when empty).
local function config_view()
  local view = state.copy(state.config)
  for _, c in pairs(view.clients) do c.scopes = util.array(c.scopes) end
  return view
end

-- Handlers by "METHOD /path"; each returns status, body.
local HANDLERS = {
  ["GET /_mock/health"] = function()
    return 200, { ok = true, pid = ngx.worker.pid() }
  end,
  ["POST /_mock/reset"] = function()
    state.reset()
    return 200, { ok = true }
  end,
  ["GET /_mock/config"] = function()
    return 200, config_view()
  end,
  ["POST /_mock/config"] = function()
    local ok, err = state.configure(util.json_body())
    if not ok then util.raise(400, "Invalid config", err) end
    return 200, config_view()
  end,
  ["GET /_mock/faults"] = function()
    return 200, { pending = faults.pending(), faults = faults.list() }
  end,
  ["POST /_mock/faults"] = function()
    local n, err = faults.add(util.json_body())
    if not n then util.raise(400, "Invalid fault", err) end
    return 200, { pending = n }
  end,
  ["DELETE /_mock/faults"] = function()
    faults.clear()
    return 200, { pending = 0 }
  end,
  ["POST /_mock/revoke"] = function()
    return 200, { revoked = auth.revoke_all() }
  end,
  ["GET /_mock/stats"] = function()
    return 200, stats.snapshot(faults.pending())
  end,
  ["GET /_mock/tokens"] = function()
    ngx.update_time()
    return 200, { count = auth.live(ngx.now()) }
  end,
  ["GET /_mock/seed"] = function()
    return 200, seed.summary(state.data)
  end,
  ["GET /_mock/routes"] = function()
    return 200, { routes = require("hypatos_mock").routes:list() }
  end,
}

-- Methods allowed per control path, for 405 answers.
local ALLOWED = {}
for key in pairs(HANDLERS) do
  local method, path = key:match("^(%S+) (.+)$")
  ALLOWED[path] = ALLOWED[path] and (ALLOWED[path] .. ", " .. method) or method
end

-- Decoded path segments after `prefix` (which ends with "/"); empty for the bare prefix.
local function segments(path, prefix)
  local out = {}
  for seg in (path:sub(#prefix + 1) .. "/"):gmatch("([^/]*)/") do
    if seg ~= "" then out[#out + 1] = ngx.unescape_uri(seg) end
  end
  return out
end

--- Serve one control request.
function M.handle(method, path)
  if path == "/_mock/enrichment" or util.starts(path, "/_mock/enrichment/") then
    if method ~= "GET" then
      return util.send(405, util.problem(405, "Method not allowed", "Allowed: GET"), { Allow = "GET" })
    end
    return util.send(require("hypatos_mock.enrichment").control(segments(path, "/_mock/enrichment/")))
  end
  local fn = HANDLERS[method .. " " .. path]
  if not fn then
    if ALLOWED[path] then
      return util.send(405, util.problem(405, "Method not allowed", "Allowed: " .. ALLOWED[path]),
        { Allow = ALLOWED[path] })
    end
    return util.send(404, util.problem(404, "Not found", "No such control endpoint"))
  end
  local ok, status, body = pcall(fn)
  if not ok then
    local e = status
    if util.is_api_error(e) then
      return util.send(e.status, util.problem(e.status, e.title, e.detail))
    end
    ngx.log(ngx.ERR, "control ", method, " ", path, ": ", tostring(e))
    return util.send(500, util.problem(500, "Internal Server Error", tostring(e)))
  end
  return util.send(status, body)
end

return M
