-- hypatos_mock.stats — request counters and a bounded ring buffer of recent API requests
-- (never the control API). Kept cheap: a few table updates per request, no I/O.

local util = require "hypatos_mock.util"

local ngx = ngx
local tostring, tonumber, pairs = tostring, tonumber, pairs

local M = {}

local LOG_SIZE = 500
M.LOG_SIZE = LOG_SIZE

local requests, token_requests, by_route, statuses, ring, ring_pos, ring_len, bytes_in, bytes_out

--- Clear all counters and the log.
function M.reset()
  requests, token_requests, bytes_in, bytes_out = 0, 0, 0, 0
  by_route, statuses = {}, {}
  ring, ring_pos, ring_len = {}, 0, 0
end
M.reset()

--- Count one API request and append it to the log. The request's header facts come
-- from one nginx variable (see nginx.conf.in) and are only split when a snapshot is made.
-- @param req the request record (method, path, route_key, now, fault; bytes_in / bytes_out
--   when a handler streamed the request or response body)
-- @param status the status sent (444 when the connection was dropped)
-- @param is_token true for token requests
function M.record(req, status, is_token)
  requests = requests + 1
  if is_token then token_requests = token_requests + 1 end
  local key = req.route_key
  by_route[key] = (by_route[key] or 0) + 1
  statuses[status] = (statuses[status] or 0) + 1

  ring_pos = ring_pos % LOG_SIZE + 1
  if ring_len < LOG_SIZE then ring_len = ring_len + 1 end
  local fault = req.fault
  local bin, bout = req.bytes_in, req.bytes_out
  if bin then bytes_in = bytes_in + bin end
  if bout then bytes_out = bytes_out + bout end
  ring[ring_pos] = {
    req.method, req.path, status, req.now, ngx.var.hypatos_mock_facts or "", fault and fault.kind or false,
    bin or false, bout or false, req.route_key,
  }
end

-- "" (an absent header or query) as nil.
local function opt(s)
  if s == "" then return nil end
  return s
end

-- Expand a ring entry into the JSON log record.
local function expand(e)
  local facts, i = {}, 0
  for field in (e[5] .. "\n"):gmatch("([^\n]*)\n") do
    i = i + 1
    facts[i] = field
  end
  return {
    method = e[1],
    path = e[2],
    status = e[3],
    at = e[4],
    query = opt(facts[1]),
    user_agent = opt(facts[2]),
    content_type = opt(facts[3]),
    content_length = tonumber(facts[4] or ""),
    authorization = opt(facts[5]) or "none",
    x_hy_filename = opt(facts[6]),
    connection = tonumber(facts[7] or ""), -- nginx's serial number of the client's connection
    fault = e[6] or nil,
    bytes_in = e[7] or nil,
    bytes_out = e[8] or nil,
    route = e[9],
  }
end

--- Snapshot for GET /_mock/stats (log oldest first).
function M.snapshot(faults_pending)
  local log, n = {}, 0
  local first = (ring_len < LOG_SIZE) and 1 or (ring_pos % LOG_SIZE + 1)
  for i = 0, ring_len - 1 do
    n = n + 1
    log[n] = expand(ring[(first - 1 + i) % LOG_SIZE + 1])
  end
  local status_counts = {}
  for code, count in pairs(statuses) do status_counts[tostring(code)] = count end
  return {
    requests = requests,
    token_requests = token_requests,
    bytes_in = bytes_in,
    bytes_out = bytes_out,
    by_route = by_route,
    statuses = status_counts,
    faults_pending = faults_pending,
    log = util.array(log),
  }
end

return M
