--- `client.files`: upload and download files (scopes `files.write`, `files.read`).
--     client.files:upload{path = "scan.pdf"}            POST /files   (streamed from disk)
--     client.files:upload{data = bytes, filename = "a.pdf"}
--     client.files:download(id)                         GET /files/{id} → bytes
--     client.files:download(id, {path = "out.pdf"})     streamed to disk → true
--
-- Uploads are not idempotent: they are re-sent only when the request
-- certainly did not reach the server, or was refused with 429.
-- @module hypatos.files
local core = require "hypatos.core"
local resource = require "hypatos.resource"
local filename = require "hypatos.filename"

local Files = {}
local UPLOAD, DOWNLOAD = resource.op("files", "upload"), resource.op("files", "download")

local UPLOAD_KEYS = { path = "string", data = "string", content_type = "string", filename = "string",
  progress = "function", timeout = "number", deadline = "number", max_retries = "number", headers = "table" }

--- An "invalid" error for a bad upload (nothing was sent).
local function invalid(message, url)
  return nil, core.error({ kind = "invalid", message = message, method = "POST", url = url })
end

--- Uploads a file (from `path`, streamed, or from `data`).
-- @tparam table opts `path` | `data`; `content_type` (default: from the file
--   name's extension: pdf, jpg/jpeg, png, tif/tiff, xml); `filename` (default:
--   the base name of `path`; sent as X-Hy-Filename); `progress(dlnow, dltotal,
--   ulnow, ultotal)`; `timeout`, `deadline`, `max_retries`, `headers`
-- @treturn[1] table `{id = "<file id>"}`, meta
-- @treturn[2] nil, err (`kind = "invalid"`, or `"io"` when `path` cannot be read:
--   `path "scan.pdf" cannot be read: No such file or directory`, before anything is sent)
function Files:upload(opts)
  resource.check_opts(opts, UPLOAD_KEYS, "files:upload")
  if (opts.path == nil) == (opts.data == nil) then
    error("hypatos: files:upload needs exactly one of path and data", 2)
  end
  local url = resource.url(self.client, UPLOAD)
  local name = opts.filename or (opts.path and filename.basename(opts.path))
  local ctype = opts.content_type or filename.content_type(name)
  if not ctype then
    return invalid(("cannot tell the content type of %q from its name; pass content_type")
      :format(name or "data"), url)
  end
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if name then
    local value, why = filename.encode(name)
    if not value then return invalid(why, url) end
    headers["X-Hy-Filename"] = value
  end
  local value, meta = self.client:request(UPLOAD.method, UPLOAD.path, {
    body_file = opts.path, body = opts.data, content_type = ctype, headers = headers,
    progress = opts.progress, timeout = opts.timeout, deadline = opts.deadline,
    max_retries = opts.max_retries, idempotent = UPLOAD.idempotent,
  })
  if value == nil and opts.path and meta.kind == "io" then
    -- a file that cannot be read is named by the caller's option, not client:request's
    local internal = 'body_file "' .. opts.path .. '" '
    if meta.message:sub(1, #internal) == internal then
      meta.message = 'path "' .. opts.path .. '" ' .. meta.message:sub(#internal + 1)
    end
  end
  return value, meta
end

--- Downloads a file.
-- @tparam string id file id
-- @tparam[opt] table opts `path` (stream to this file; it appears only once
--   complete), `progress`, `timeout`, `deadline`, `max_retries`, `headers`
-- @treturn[1] string|true the bytes, or true when written to `path`; meta
--   with `filename` and `content_type`
-- @treturn[2] nil, err
function Files:download(id, opts)
  return resource.download(self.client, DOWNLOAD, id, opts)
end

return resource.class("files", Files)
