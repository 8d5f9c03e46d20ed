-- hypatos_mock.util — shared helpers for the fake Hypatos server: JSON encoding (with
-- real empty arrays), API error values, response sending, request bodies, pagination
-- and id checks. Runs inside nginx (LuaJIT, ngx_lua).

local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

local ngx = ngx
local find, gsub, sub, match, lower, byte, format = string.find, string.gsub, string.sub, string.match,
  string.lower, string.byte, string.format
local type, tonumber, pairs = type, tonumber, pairs
local setmetatable, getmetatable, error = setmetatable, getmetatable, error
local floor, min, concat, random = math.floor, math.min, table.concat, math.random

cjson.encode_number_precision(14)

local M = {}

-- Debian's lua-cjson 2.1.0 encodes an empty table as `{}`. Arrays that may be empty are
-- wrapped with M.array(): an empty one becomes this marker string, replaced after encoding.
-- M.decode_keep() puts the same marker where a request body holds `[]`, so stored client
-- data (project schemas, enrichment records) round-trips with its empty arrays intact.
-- seed.lua (pure Lua) uses the same literal.
local EMPTY = "__hypatos_mock_empty_array__"
local EMPTY_QUOTED = '"' .. EMPTY .. '"'
M.EMPTY_ARRAY = EMPTY

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

------------------------------------------------------------------ JSON with empty arrays

--- Decode JSON text like M.decode, but every empty array `[]` becomes the empty-array
-- marker (see M.EMPTY_ARRAY) so that it is encoded as `[]` again. Never raises.
function M.decode_keep(text)
  if not find(text, "%[%s*%]") then return M.decode(text) end
  local out, n, pos, i = {}, 0, 1, 1
  while true do
    local s = find(text, '["%[]', i)
    if not s then break end
    if byte(text, s) == 34 then -- a string: skip it, escapes included
      local j = s + 1
      while true do
        local q = find(text, '["\\]', j)
        if not q then return M.decode(text) end -- unterminated: let cjson report it
        if byte(text, q) == 92 then
          j = q + 2
        else
          i = q + 1
          break
        end
      end
    else
      local _, e = find(text, "^%[%s*%]", s)
      if e then
        n = n + 1
        out[n] = sub(text, pos, s - 1)
        n = n + 1
        out[n] = EMPTY_QUOTED
        pos, i = e + 1, e + 1
      else
        i = s + 1
      end
    end
  end
  n = n + 1
  out[n] = sub(text, pos)
  return M.decode(concat(out))
end

--- True for a decoded JSON array (non-empty table with [1], or the empty-array marker).
function M.is_array(v)
  return v == EMPTY or (type(v) == "table" and v[1] ~= nil)
end

--- True for a decoded JSON object (a table without [1]; `{}` included).
function M.is_object(v)
  return type(v) == "table" and v[1] == nil
end

--- Elements of a decoded JSON array as a (possibly empty) table.
function M.items(v)
  if v == EMPTY then return {} end
  return v
end

------------------------------------------------------------------ request facts

--- Lower-cased media type of the request (Content-Type without parameters), or nil.
function M.media_type()
  local ct = ngx.var.content_type
  if not ct then return nil end
  local t = match(ct, "^%s*([^;%s]+)")
  return t and lower(t) or ""
end

--- Number of UTF-8 characters in `s`, or nil when `s` is not valid UTF-8.
function M.utf8_len(s)
  if not find(s, "[\128-\255]") then return #s end
  local n, i, len = 0, 1, #s
  while i <= len do
    local c = byte(s, i)
    local need
    if c < 0x80 then need = 0
    elseif c >= 0xC2 and c <= 0xDF then need = 1
    elseif c >= 0xE0 and c <= 0xEF then need = 2
    elseif c >= 0xF0 and c <= 0xF4 then need = 3
    else return nil end
    for k = 1, need do
      local b = byte(s, i + k)
      if not b or b < 0x80 or b > 0xBF then return nil end
    end
    i = i + need + 1
    n = n + 1
  end
  return n
end

--- `s` as UTF-8 text: unchanged when it already is valid UTF-8, else read as Latin-1
-- (the charset of HTTP header values such as X-Hy-Filename) and converted.
function M.text_from_header(s)
  if M.utf8_len(s) then return s end
  return (gsub(s, "[\128-\255]", function(c)
    local b = byte(c)
    return string.char(0xC0 + floor(b / 64), 0x80 + b % 64)
  end))
end

------------------------------------------------------------------ ids and times

--- ISO-8601 UTC timestamp with microseconds for epoch seconds `t`.
function M.iso(t)
  local s = floor(t)
  local us = floor((t - s) * 1e6 + 0.5)
  if us > 999999 then us = 999999 end
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. format(".%06dZ", us)
end

--- A random UUID in version-4 form.
function M.uuid()
  return format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", random(0, 0xffff), random(0, 0xffff),
    random(0, 0xffff), random(0, 0xfff), random(0x8000, 0xbfff), random(0, 0xffff), random(0, 0xffff),
    random(0, 0xffff))
end

local oid_machine, oid_counter

--- A fresh 24-hex ObjectId: creation second, a random per-worker part, a counter.
function M.new_object_id(now)
  if not oid_machine then
    oid_machine = format("%04x%04x%02x", random(0, 0xffff), random(0, 0xffff), random(0, 0xff))
    oid_counter = random(0, 0xffff)
  end
  oid_counter = (oid_counter + 1) % 0x1000000
  return format("%08x%s%06x", floor(now), oid_machine, oid_counter)
end

------------------------------------------------------------------ streamed bodies

M.CHUNK = 65536
local CHUNK = M.CHUNK

-- Every chunk of a streamed body is a fresh 64 KiB string. Left to itself the collector
-- lets that garbage pile up to the size of the live heap before it runs; a GC step per
-- megabyte streamed keeps the worker's memory flat at any transfer size.
local GC_EVERY = 16 -- chunks
local collectgarbage = collectgarbage

--- Read the request body in chunks of at most 64 KiB and hand each to `sink(chunk)`.
-- With a Content-Length the body is read from the request socket; a chunked body (which
-- ngx.req.socket cannot read) is first spooled to a temp file by nginx and then copied in
-- chunks, so memory stays flat either way. Marks the request as read (req.body_read) and
-- counts its bytes (req.bytes_in).
-- @return total bytes, or nil and an error message (client gone, timeout)
function M.receive_body(req, sink)
  req.body_read = true
  local len = tonumber(ngx.var.content_length)
  local chunked = ngx.var.http_transfer_encoding ~= nil
  if not chunked and (not len or len == 0) then return 0 end
  local total, n = 0, 0
  local sock = (not chunked) and ngx.req.socket() or nil
  if sock then
    sock:settimeout(60000)
    while len > 0 do
      local chunk, err = sock:receive(len < CHUNK and len or CHUNK)
      if not chunk then
        req.bytes_in = total
        return nil, err
      end
      sink(chunk)
      total = total + #chunk
      len = len - #chunk
      n = n + 1
      if n % GC_EVERY == 0 then collectgarbage("step", 1024) end
    end
    req.bytes_in = total
    return total
  end
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then
    sink(data)
    req.bytes_in = #data
    return #data
  end
  local path = ngx.req.get_body_file()
  if not path then
    req.bytes_in = 0
    return 0
  end
  local f = io.open(path, "rb")
  if not f then return nil, "cannot open the spooled request body" end
  while true do
    local chunk = f:read(CHUNK)
    if not chunk then break end
    sink(chunk)
    total = total + #chunk
    n = n + 1
    if n % GC_EVERY == 0 then collectgarbage("step", 1024) end
  end
  f:close()
  req.bytes_in = total
  return total
end

--- Stream a response body from a string or a file (`{path = ...}`) in 64 KiB chunks
-- (ngx.print + ngx.flush(true)), after setting `status`, `headers` and Content-Length.
-- Honours the close_mid_body fault (req.truncate): half the announced bytes, then the
-- dispatcher drops the connection (req.drop). Counts req.bytes_out.
function M.stream(req, status, src, size, headers)
  ngx.status = status
  local h = ngx.header
  if headers then for k, v in pairs(headers) do h[k] = v end end
  h["Content-Length"] = size
  local limit = size
  if req.truncate then limit = floor(size / 2) end
  local f
  if type(src) ~= "string" then
    f = io.open(src.path, "rb")
    if not f then M.raise(500, "Internal Server Error", "The stored content cannot be read") end
  end
  ngx.send_headers()
  local sent, count = 0, 0
  while sent < limit do
    local n = limit - sent
    if n > CHUNK then n = CHUNK end
    local chunk
    if f then
      chunk = f:read(n)
      if not chunk then break end
    else
      chunk = sub(src, sent + 1, sent + n)
    end
    if not ngx.print(chunk) or not ngx.flush(true) then break end
    sent = sent + #chunk
    count = count + 1
    if count % GC_EVERY == 0 then collectgarbage("step", 1024) end
  end
  if f then f:close() end
  req.bytes_out = sent
  if sent < size then req.drop = true end
end

return M
