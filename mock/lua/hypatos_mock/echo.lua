-- hypatos_mock.echo — ANY /v2/_echo and /v2/_echo/{tail} (any valid bearer token, no
-- scope): answers 200 with the request body and its Content-Type, for the client's
-- generic request call. The body is read from the socket in 64 KiB chunks (spooled to a
-- temp file past 1 MiB, so large bodies keep memory flat and a client that sends
-- everything before reading cannot deadlock), then streamed back. Response headers:
--   X-Echo-Method   the request method
--   X-Echo-Uri      the raw request URI (path and query as sent)
--   X-Echo-Length   bytes received
--   X-Echo-<name>   every request header whose name starts with X- (not X-Echo-)
-- The request's byte counts show in the stats log (bytes_in, bytes_out).

local util = require "hypatos_mock.util"
local files = require "hypatos_mock.files"

local ngx = ngx
local io, os, pairs, pcall, error, tostring = io, os, pairs, pcall, error, tostring
local concat, sub, lower = table.concat, string.sub, string.lower

local M = {}

M.MEMORY_LIMIT = 1024 * 1024

--- The echo handler.
function M.echo(req)
  local parts, n, size = {}, 0, 0
  local f, path, werr
  local total, rerr = util.receive_body(req, function(chunk)
    if not f and size + #chunk > M.MEMORY_LIMIT then
      path = files.dir() .. "/echo-" .. util.uuid()
      f = io.open(path, "wb")
      if not f then werr = "cannot open a spool file" return end
      f:write(concat(parts, "", 1, n))
      parts, n = nil, 0
    end
    if f then
      f:write(chunk)
    else
      n = n + 1
      parts[n] = chunk
    end
    size = size + #chunk
  end)
  if f then f:close() end
  local function cleanup() if path then os.remove(path) end end
  if werr then
    cleanup()
    util.raise(500, "Internal Server Error", werr)
  end
  if not total then
    cleanup()
    util.raise(400, "Incomplete body", "The request body could not be read completely: " .. tostring(rerr))
  end
  local headers = {
    ["Content-Type"] = ngx.var.content_type or "application/octet-stream",
    ["X-Echo-Method"] = req.method,
    ["X-Echo-Uri"] = ngx.var.request_uri,
    ["X-Echo-Length"] = total,
  }
  for name, v in pairs(ngx.req.get_headers(100, true)) do
    local l = lower(name)
    if sub(l, 1, 2) == "x-" and sub(l, 1, 7) ~= "x-echo-" then headers["X-Echo-" .. name] = v end
  end
  local ok, err = pcall(util.stream, req, 200, path and { path = path } or concat(parts, "", 1, n), total, headers)
  cleanup()
  if not ok then error(err, 0) end
end

--- Register the echo routes for every common method.
function M.register(r)
  for _, m in ipairs{ "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" } do
    r:add(m, "/v2/_echo", M.echo, {})
    r:add(m, "/v2/_echo/{tail}", M.echo, {})
  end
end

return M
