-- hypatos_mock.util — shared helpers for the fake Hypatos server: JSON encoding (with
-- real empty arrays), API error values, response sending, request bodies, pagination
-- and id checks. Runs inside nginx (LuaJIT, ngx_lua).

local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

local ngx = ngx
local find, gsub, sub = string.find, string.gsub, string.sub
local type, tonumber, pairs = type, tonumber, pairs
local setmetatable, getmetatable, error = setmetatable, getmetatable, error
local floor, min, concat = math.floor, math.min, table.concat

cjson.encode_number_precision(14)

local M = {}

-- Debian's lua-cjson 2.1.0 encodes an empty table as `{}`. Arrays that may be empty are
-- wrapped with M.array(): an empty one becomes this marker string, replaced after encoding.
local EMPTY = "__hypatos_mock_empty_array__"
local EMPTY_QUOTED = '"' .. EMPTY .. '"'

--- Mark `t` as a JSON array: returns `t`, or the empty-array marker when `t` is empty.
function M.array(t)
  if t[1] == nil then return EMPTY end
  return t
end

--- Encode a value as JSON; empty arrays marked with M.array() come out as `[]`.
function M.encode(v)
  local s = cjson.encode(v)
  if find(s, EMPTY_QUOTED, 1, true) then s = gsub(s, EMPTY_QUOTED, "[]") end
  return s
end

--- Decode JSON text; returns value or nil, message (never raises).
M.decode = cjson_safe.decode

--- The JSON null value as decoded by cjson.
M.null = cjson.null

-- Default titles for statuses an error body may need.
local TITLES = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not found",
  [405] = "Method not allowed", [409] = "Conflict", [413] = "Payload Too Large",
  [415] = "Unsupported Media Type", [422] = "Validation Error", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

--- A sensible title for an HTTP status.
function M.title(status)
  return TITLES[status] or (status >= 500 and "Server Error" or "Error")
end

--- The usual API error body `{title, detail, status}`.
function M.problem(status, title, detail)
  title = title or M.title(status)
  return { title = title, detail = detail or title, status = status }
end

-- Metatable tagging errors raised on purpose by handlers (as opposed to bugs).
local ApiError = {}

--- Abort the current handler with an API error response (caught by the dispatcher).
-- @param headers optional table of extra response headers
function M.raise(status, title, detail, headers)
  error(setmetatable({ status = status, title = title, detail = detail, headers = headers }, ApiError), 0)
end

--- True when `e` was raised by M.raise().
function M.is_api_error(e)
  return getmetatable(e) == ApiError
end

--- Send a complete response. `body` is a table (sent as JSON), a string (sent as is) or nil.
-- Sets Content-Type (JSON unless `headers` names one) and Content-Length. When `truncate`
-- is true, announces the full length, sends only the first half, flushes and drops the
-- connection (the `close_mid_body` fault).
function M.send(status, body, headers, truncate)
  local h = ngx.header
  ngx.status = status
  if type(body) == "table" then body = M.encode(body) end
  local ctype = "application/json"
  if headers then
    for k, v in pairs(headers) do
      if k:lower() == "content-type" then ctype = v else h[k] = v end
    end
  end
  if body == nil then
    if status ~= 204 and status ~= 304 then h["Content-Length"] = 0 end
    return ngx.send_headers()
  end
  h["Content-Type"] = ctype
  if truncate then
    if #body < 64 then body = body .. (" "):rep(64 - #body) end -- JSON allows trailing blanks
    h["Content-Length"] = #body
    ngx.print(sub(body, 1, floor(#body / 2)))
    ngx.flush(true)
    return ngx.exit(444)
  end
  h["Content-Length"] = #body
  ngx.print(body)
end

--- Read the request body into a string (small bodies only: JSON and form posts).
-- Returns "" when there is none.
function M.read_body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then return data end
  local path = ngx.req.get_body_file()
  if not path then return "" end
  local f = io.open(path, "rb")
  if not f then return "" end
  data = f:read("*a")
  f:close()
  return data or ""
end

--- Consume and discard the whole request body without keeping it (any size).
function M.drain_body()
  local len = tonumber(ngx.var.content_length)
  if (not len or len == 0) and not ngx.var.http_transfer_encoding then return end
  local sock = ngx.req.socket()
  if not sock then return ngx.req.read_body() end -- already read, or chunked and not streamable
  sock:settimeout(60000)
  if len then
    while len > 0 do
      local chunk = sock:receive(min(len, 65536))
      if not chunk then return end
      len = len - #chunk
    end
    return
  end
  while true do -- chunked: read until the body ends (receive then fails with what is left)
    local chunk = sock:receive(65536)
    if not chunk then return end
  end
end

--- Parse a JSON request body as an object/array; raises a 400 API error when invalid.
function M.json_body()
  local text = M.read_body()
  if text == "" then return {} end
  local v = M.decode(text)
  if type(v) ~= "table" then M.raise(400, "Invalid JSON", "The request body is not valid JSON") end
  return v
end

-- A query value that is a non-negative decimal integer string, as a number; else nil.
local function nonneg_int(v)
  if type(v) ~= "string" or not find(v, "^%d+$") then return nil end
  return tonumber(v)
end

M.MAX_LIMIT = 50
M.DEFAULT_LIMIT = 20

--- Pagination parameters from the parsed query: limit (default 20, clamped to 50) and
-- offset (default 0). Raises 400 "Limit out of range" / "Offset out of range".
function M.paging(args)
  local limit, offset = M.DEFAULT_LIMIT, 0
  local v = args.limit
  if v ~= nil then
    limit = nonneg_int(v)
    if not limit then M.raise(400, "Limit out of range", "Limit is out of range") end
    if limit > M.MAX_LIMIT then limit = M.MAX_LIMIT end
  end
  v = args.offset
  if v ~= nil then
    offset = nonneg_int(v)
    if not offset or offset > 2147483647 then
      M.raise(400, "Offset out of range", "The provided offset is out of range")
    end
  end
  return limit, offset
end

-- Encoded JSON per record table (weak keys: records dropped on reset are collected).
local json_cache = setmetatable({}, { __mode = "k" })

--- JSON text of a record, cached until M.touch(record). Only for records that are
-- changed through code that calls touch() (seed records are never changed in place).
function M.record_json(rec)
  local s = json_cache[rec]
  if not s then
    s = M.encode(rec)
    json_cache[rec] = s
  end
  return s
end

--- Forget the cached JSON of a record after changing it.
function M.touch(rec)
  json_cache[rec] = nil
end

--- The list envelope `{data, totalCount, limit, offset}` for one page of `items`, as
-- JSON text built from the cached JSON of each record (lists are the hot path of the
-- benchmarks).
-- @param project optional function mapping an item to the table to serve (not cached)
function M.page(items, limit, offset, project)
  local parts, n = {}, 0
  for i = offset + 1, min(#items, offset + limit) do
    n = n + 1
    parts[n] = project and M.encode(project(items[i])) or M.record_json(items[i])
  end
  return '{"data":[' .. concat(parts, ",") .. '],"totalCount":' .. #items .. ',"limit":' .. limit
    .. ',"offset":' .. offset .. "}"
end

--- Lower-cased 24-hex ObjectId, or raises 400 with `title` when `id` is not one.
function M.object_id(id, title, what)
  if type(id) ~= "string" or #id ~= 24 or not find(id, "^%x+$") then
    M.raise(400, title, "The provided " .. what .. " is not a valid identifier")
  end
  return id:lower()
end

--- A single string query value: the last one when the key repeats; nil when absent;
-- `true` (key without `=`) counts as absent-but-present and is returned as "".
function M.single(v)
  if type(v) == "table" then v = v[#v] end
  if v == true then return "" end
  return v
end

--- All values of a repeatable query key as a list (empty when absent).
function M.multi(v)
  if v == nil then return {} end
  if type(v) == "table" then return v end
  return { v }
end

--- True when `s` starts with `prefix`.
function M.starts(s, prefix)
  return sub(s, 1, #prefix) == prefix
end

return M
