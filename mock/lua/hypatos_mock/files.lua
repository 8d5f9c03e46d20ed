-- hypatos_mock.files — POST /v2/files (files.write): the raw request body is the file; it
-- is streamed to disk under PREFIX/files/<uuid> in 64 KiB chunks, never held in memory.
-- GET /v2/files/{id} (files.read): the stored bytes streamed back in 64 KiB chunks with
-- the uploaded Content-Type and X-Hy-Filename. Seed files live in memory (seed.lua).
--
-- Errors (status, title):
--   400 "Content type not supported"  Content-Type not pdf / jpeg / png / tiff / xml
--   400 "Filename too long"           X-Hy-Filename longer than 256 characters (bytes)
--   400 "File is empty"               no body
--   400 "Incomplete upload"           the client stopped sending before Content-Length
--   404 "File not found"              unknown id on download

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"

local ngx = ngx
local io, os, tonumber, tostring = io, os, tonumber, tostring
local match = string.match

local M = {}

M.TYPES = {
  ["application/pdf"] = true, ["image/jpeg"] = true, ["image/png"] = true, ["image/tiff"] = true,
  ["application/xml"] = true,
}
M.MAX_FILENAME = 256

local dir

--- Directory that holds uploaded bodies (created on first use, under the nginx prefix).
function M.dir()
  if not dir then
    local prefix = ngx.config.prefix()
    if prefix:sub(-1) ~= "/" then prefix = prefix .. "/" end
    dir = prefix .. "files"
    os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  end
  return dir
end

-- Paths written since the last reset; reset removes them.
local written = {}

state.on_reset(function()
  for i = 1, #written do os.remove(written[i]) end
  written = {}
end)

--- Stream the request body into a new file named `name` in M.dir().
-- @return path, size; raises 400 "Incomplete upload" / 500 on failure (removing the file)
function M.store_body(req, name)
  local path = M.dir() .. "/" .. name
  local f, err = io.open(path, "wb")
  if not f then util.raise(500, "Internal Server Error", "Cannot store the body: " .. tostring(err)) end
  written[#written + 1] = path
  local werr
  local total, rerr = util.receive_body(req, function(chunk)
    if werr then return end
    local ok, e = f:write(chunk)
    if not ok then werr = e or "write failed" end
  end)
  f:close()
  if werr then
    os.remove(path)
    util.raise(500, "Internal Server Error", "Cannot store the body: " .. tostring(werr))
  end
  if not total then
    os.remove(path)
    util.raise(400, "Incomplete upload", "The request body could not be read completely: " .. tostring(rerr))
  end
  return path, total
end

--- The file record for `id`, or nil.
function M.lookup(id)
  return state.data.file_by_id[id]
end

--- Base media type of a stored file (lower case, without parameters).
function M.base_type(rec)
  return (match(rec.contentType, "^%s*([^;%s]+)") or ""):lower()
end

--- POST /v2/files
function M.upload(req)
  local mt = util.media_type()
  if not mt or not M.TYPES[mt] then
    util.raise(400, "Content type not supported", "The provided content type is not supported")
  end
  local filename = ngx.var.http_x_hy_filename
  if filename == "" then filename = nil end
  if filename and #filename > M.MAX_FILENAME then
    util.raise(400, "Filename too long", "The X-Hy-Filename header must not be longer than 256 characters")
  end
  local len = tonumber(ngx.var.content_length)
  if (len == nil or len == 0) and not ngx.var.http_transfer_encoding then
    util.raise(400, "File is empty", "The request body holds no file content")
  end
  local id = util.uuid()
  local path, size = M.store_body(req, id)
  if size == 0 then
    os.remove(path)
    util.raise(400, "File is empty", "The request body holds no file content")
  end
  local rec = {
    id = id, contentType = match(ngx.var.content_type, "^%s*(.-)%s*$"), filename = filename,
    size = size, path = path, createdAt = util.iso(req.now),
  }
  local data = state.data
  data.files[#data.files + 1] = rec
  data.file_by_id[id] = rec
  return 201, { id = id }
end

--- Stream a stored file as the response (body from memory or disk).
function M.send(req, rec, content_type)
  local headers = { ["Content-Type"] = content_type or rec.contentType }
  if rec.filename then headers["X-Hy-Filename"] = rec.filename end
  util.stream(req, 200, rec.data or rec, rec.size, headers)
end

--- GET /v2/files/{id}
function M.download(req, params)
  local rec = state.data.file_by_id[params.id]
  if not rec then util.raise(404, "File not found", "File with given identifier does not exist") end
  M.send(req, rec)
end

--- Register the files routes.
function M.register(r)
  r:add("POST", "/v2/files", M.upload, { scope = "files.write" })
  r:add("GET", "/v2/files/{id}", M.download, { scope = "files.read" })
end

return M
