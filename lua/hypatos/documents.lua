--- `client.documents` (scopes `documents.read`, `documents.write`).
--     get(id)                          GET  /documents/{id}
--     list(query) / pages / each       GET  /documents  (projectId[], state[], fileId, sort, limit, offset)
--     states(id)                       GET  /documents/{id}/states
--     process_file(body)               POST /documents/process-file      (not idempotent)
--     process_file_batch(body)         POST /cases/process-file-batch    (not idempotent)
--     transfer(id, body)               POST /documents/{id}/transfer
--     set_external_data(id, map)       POST /documents/{id}/external-data
--     set_external_id(id, text)        POST /documents/{id}/external-id  (text/plain)
--     set_title(id, text)              POST /documents/{id}/title        (text/plain)
--     wait(id, opts)                   polls get(id) until a wanted state
-- @module hypatos.documents
local core = require "hypatos.core"
local resource = require "hypatos.resource"

local Documents = {}

--- States a document ends in: extraction (`done*`), ERP transfer, failure, or
-- `split` (the document was divided into new documents).
Documents.TERMINAL_STATES = { "done", "doneAutomatically", "transferred", "transferFailed", "failed",
  "junk", "rejected", "split" }

local EXTERNAL_DATA = resource.op("documents", "set_external_data")

--- The API keeps at most this many external-data keys …
Documents.MAX_EXTERNAL_KEYS = 20
--- … and drops, silently, any key longer than this many characters.
Documents.MAX_EXTERNAL_KEY_LENGTH = 50

--- Number of UTF-8 characters of s (bytes that do not continue a sequence).
local function chars(s)
  local _, continuation = s:gsub("[\128-\191]", "")
  return #s - continuation
end

--- The external-data map as the API stores it (string → string), or nil and
-- the problem: the API would drop or mangle something.
local function external_data(map)
  local out, n, folded = {}, 0, {}
  for k, v in pairs(map) do
    n = n + 1
    if type(k) ~= "string" then
      return nil, ("external data keys must be strings, got a %s key"):format(type(k))
    end
    if chars(k) > Documents.MAX_EXTERNAL_KEY_LENGTH then
      return nil, ("external data key %q is %d characters long; the API drops keys longer than %d")
        :format(k, chars(k), Documents.MAX_EXTERNAL_KEY_LENGTH)
    end
    local lower = k:lower()
    if folded[lower] then
      return nil, ("external data keys %q and %q differ only in case; the API treats keys case-insensitively")
        :format(folded[lower] < k and folded[lower] or k, folded[lower] < k and k or folded[lower])
    end
    folded[lower] = k
    local tv = type(v)
    if tv == "string" then
      out[k] = v
    elseif tv == "number" then
      if v ~= v or v == math.huge or v == -math.huge then
        return nil, ("external data value of %q is not a finite number"):format(k)
      end
      out[k] = core.json_encode(v)
    elseif tv == "boolean" then
      out[k] = tostring(v)
    else
      return nil, ("external data value of %q must be a string, number or boolean, got %s"):format(k,
        v == core.null and "hypatos.null" or tv)
    end
  end
  if n > Documents.MAX_EXTERNAL_KEYS then
    return nil, ("external data holds %d keys; the API keeps at most %d"):format(n, Documents.MAX_EXTERNAL_KEYS)
  end
  return out
end

--- Replaces the document's external data (a flat map; `{}` clears it) → true.
-- Nothing is sent, and the answer is nil, err (kind "invalid"), when the API
-- would lose data: more than 20 keys, a key longer than 50 characters, two
-- keys equal but for case, or a value that is not a string, number or
-- boolean. Numbers (exactly, as JSON writes them) and booleans ("true",
-- "false") are sent as strings, which is what the API stores.
-- @tparam string id document id
-- @tparam table map key → value
-- @tparam[opt] table opts call options
-- @treturn[1] true, meta
-- @treturn[2] nil, err
function Documents:set_external_data(id, map, opts)
  resource.want_table(map, "documents:set_external_data map")
  local data, problem = external_data(map)
  if not data then return resource.invalid(self.client, EXTERNAL_DATA, problem, { id = id }) end
  local a, b = resource.invoke(self, EXTERNAL_DATA, 2, id, data, opts)
  return a, b
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
--   `sleep`/`now` (default: the client's driver's — `hypatos.sleep`/`hypatos.now`, or
--   `hypatos.ngx.sleep`/`hypatos.ngx.now` inside nginx)
-- @treturn[1] table the document, meta
-- @treturn[2] nil, err — `kind = "timeout"` with `err.document` the last document seen
function Documents:wait(id, opts)
  opts = resource.check_opts(opts or {}, WAIT_KEYS, "documents:wait")
  local wanted = {}
  for _, s in ipairs(opts.states or Documents.TERMINAL_STATES) do wanted[s] = true end
  local dsleep, dnow = require("hypatos").clock(self.client)
  local sleep, now = opts.sleep or dsleep, opts.now or dnow
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
