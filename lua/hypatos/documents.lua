--- `client.documents` (scopes `documents.read`, `documents.write`).
--   get(id)                          GET  /documents/{id}
--   list(query) / pages / each       GET  /documents  (projectId[], state[], fileId, sort, limit, offset)
--   states(id)                       GET  /documents/{id}/states
--   process_file(body)               POST /documents/process-file      (not idempotent)
--   process_file_batch(body)         POST /cases/process-file-batch    (not idempotent)
--   transfer(id, body)               POST /documents/{id}/transfer
--   set_external_data(id, map)       POST /documents/{id}/external-data
--   set_external_id(id, text)        POST /documents/{id}/external-id  (text/plain)
--   set_title(id, text)              POST /documents/{id}/title        (text/plain)
--   wait(id, opts)                   polls get(id) until a wanted state
-- @module hypatos.documents
local core = require "hypatos.core"
local resource = require "hypatos.resource"

local req = resource.request_opts
local want_table, want_string = resource.want_table, resource.want_string

local Documents = {}
Documents.get = resource.getter("/documents/{id}")
resource.listing(Documents, "/documents")

--- States a document ends in: extraction (`done*`), ERP transfer, or failure.
Documents.TERMINAL_STATES = { "done", "doneAutomatically", "transferred", "transferFailed", "failed",
  "junk", "rejected" }

--- The states a document went through: `{{state, updatedAt}, …}`, meta.
function Documents:states(id, opts)
  return self.client:request("GET", "/documents/{id}/states", req(opts, { params = { id = id } }))
end

--- Asks the API to process an uploaded file into a document.
-- @tparam table body `{fileId, projectId, externalId?, externalData?}`
-- @treturn table `{documentId, fileId, projectId}`, meta (202)
function Documents:process_file(body, opts)
  want_table(body, "process_file body")
  return self.client:request("POST", "/documents/process-file",
    req(opts, { json = body, idempotent = false }))
end

--- Submits several uploaded files as one document (a case).
-- @tparam table body `{fileIds = {…}, projectId}`
function Documents:process_file_batch(body, opts)
  want_table(body, "process_file_batch body")
  return self.client:request("POST", "/cases/process-file-batch",
    req(opts, { json = body, idempotent = false }))
end

--- Reports the outcome of a transfer to the target system: `{successful, message?}` → true.
function Documents:transfer(id, body, opts)
  want_table(body, "transfer body")
  return self.client:request("POST", "/documents/{id}/transfer",
    req(opts, { params = { id = id }, json = body, idempotent = true }))
end

--- Replaces the document's external data (a flat map; `{}` clears it) → true.
function Documents:set_external_data(id, map, opts)
  want_table(map, "external data")
  return self.client:request("POST", "/documents/{id}/external-data",
    req(opts, { params = { id = id }, json = map, idempotent = true }))
end

--- Sets the document's external id → true.
function Documents:set_external_id(id, text, opts)
  want_string(text, "external id")
  return self.client:request("POST", "/documents/{id}/external-id",
    req(opts, { params = { id = id }, body = text, content_type = "text/plain; charset=utf-8", idempotent = true }))
end

--- Sets the document's title → true.
function Documents:set_title(id, text, opts)
  want_string(text, "title")
  return self.client:request("POST", "/documents/{id}/title",
    req(opts, { params = { id = id }, body = text, content_type = "text/plain; charset=utf-8", idempotent = true }))
end

local WAIT_KEYS = { states = "table", timeout = "number", interval = "number", max_interval = "number",
  sleep = "function", now = "function" }

--- Waits until the document reaches one of `opts.states`.
-- Polls `get(id)` at once, then after `interval` seconds, each wait 1.5×
-- longer up to `max_interval`; the last wait is cut to end at `timeout`.
-- Transient failures of a poll are retried by the client as usual; a failure
-- that remains ends the wait with that error.
-- @tparam string id document id
-- @tparam[opt] table opts `states` (default `TERMINAL_STATES`), `timeout`
--   (seconds, default 600), `interval` (default 1), `max_interval` (default 30),
--   `sleep`/`now` (default `hypatos.sleep`/`hypatos.now`; pass `ngx.sleep`/`ngx.now` in OpenResty)
-- @treturn[1] table the document, meta
-- @treturn[2] nil, err — `kind = "timeout"` with `err.document` the last document seen
function Documents:wait(id, opts)
  opts = resource.check_opts(opts or {}, WAIT_KEYS, "documents:wait")
  local wanted = {}
  for _, s in ipairs(opts.states or Documents.TERMINAL_STATES) do wanted[s] = true end
  local sleep, now = opts.sleep or core.sleep, opts.now or core.now
  local timeout = opts.timeout or 600
  local wait, max_wait = opts.interval or 1, opts.max_interval or 30
  local deadline = now() + timeout
  while true do
    local doc, meta = self:get(id)
    if doc == nil then return nil, meta end
    if wanted[doc.state] then return doc, meta end
    local left = deadline - now()
    if left <= 0 then
      return nil, core.error({
        kind = "timeout", retryable = true, document = doc, method = "GET",
        url = self.client:options().base_url .. "/documents/" .. tostring(id),
        message = ("document %s is still %q after %g s"):format(tostring(id), tostring(doc.state), timeout),
      })
    end
    sleep(math.min(wait, left))
    wait = math.min(wait * 1.5, max_wait)
  end
end

return resource.class("documents", Documents)
