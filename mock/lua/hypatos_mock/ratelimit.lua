-- hypatos_mock.ratelimit — fixed-window request quota shared by every /v2 request
-- (token requests included) and the rate-limit headers sent on every /v2 response.
--
-- Window: [floor(now / window) * window, +window). Headers:
--   x-ratelimit-limit: Q, Q;w=W   x-ratelimit-remaining: max(0, Q - count)
--   x-ratelimit-reset: ceil(seconds to the window's end), at least 1 (an upper bound)
-- plus, with `ietf_headers`, `RateLimit: limit=Q, remaining=R, reset=T` and
-- `RateLimit-Policy: Q;w=W`. With `rate_headers = false` none of them is sent.

local state = require "hypatos_mock.state"

local ngx = ngx
local floor, ceil = math.floor, math.ceil

local M = {}

-- Set the rate-limit headers for the current response.
local function set_headers(remaining, reset)
  local cfg, d = state.config, state.derived
  if not cfg.rate_headers then return end
  local h = ngx.header
  h["x-ratelimit-limit"] = d.limit_header
  h["x-ratelimit-remaining"] = remaining
  h["x-ratelimit-reset"] = reset
  if cfg.ietf_headers then
    h["RateLimit"] = "limit=" .. cfg.quota .. ", remaining=" .. remaining .. ", reset=" .. reset
    h["RateLimit-Policy"] = d.policy
  end
end
M.set_headers = set_headers

--- Count this request in the current window and set the headers.
-- @param now current time (ngx.now() after ngx.update_time())
-- @return exceeded (boolean), reset (integer seconds until the window ends)
function M.hit(now)
  local cfg, rl = state.config, state.rl
  local w = cfg.window
  local start = floor(now / w) * w
  if rl.start ~= start then
    rl.start, rl.count = start, 0
  end
  local count = rl.count + 1
  rl.count = count
  -- Subtract a microsecond of floating-point noise; a real remainder is never rounded down.
  local reset = ceil(start + w - now - 1e-6)
  if reset < 1 then reset = 1 end
  local quota = cfg.quota
  local remaining = quota - count
  if remaining < 0 then remaining = 0 end
  set_headers(remaining, reset)
  return count > quota, reset
end

--- Body of a 429 answer.
function M.body(reset)
  return {
    title = "Too Many Requests",
    detail = "Rate limit exceeded: quota of " .. state.config.quota .. " requests per window used up; retry in "
      .. reset .. " s",
    status = 429,
  }
end

return M
