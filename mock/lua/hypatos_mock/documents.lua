-- hypatos_mock.documents — documents and their processing (scopes documents.read /
-- documents.write):
--
--   GET  /v2/documents                      list (projectId*, state*, fileId, sort, limit, offset)
--   GET  /v2/documents/{id}                 one document
--   GET  /v2/documents/{id}/states          state history, oldest first
--   POST /v2/documents/process-file         {fileId, projectId, externalId?, externalData?} → 202
--   POST /v2/cases/process-file-batch       {fileIds: [...], projectId} → 202 (one document)
--   POST /v2/documents/{id}/transfer        {successful, message?} → 202, transferred / transferFailed
--   POST /v2/documents/{id}/external-data   flat object (≤ 20 keys; keys > 50 chars dropped) → 202
--   POST /v2/documents/{id}/external-id     text/plain, non-empty → 202
--   POST /v2/documents/{id}/title           text/plain, 1..256 characters → 202
--
-- A processed document moves on lazily (computed whenever it is read) over the config's
-- processing_time P, counted from its creation: new, processing at P/4, extracted at
-- P/2 (entities filled), final at 3P/4: done (project completion manual) or
-- doneAutomatically (automatic), or failed for every fail_every-th processed document.
-- Both are read when the document is created.

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"
local seed = require "hypatos_mock.seed"
local files = require "hypatos_mock.files"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local find, lower, sort = string.find, string.lower, table.sort

local M = {}

M.STATES = {
  "new", "processing", "extracted", "inCompletion", "reviewRequired", "done", "doneAutomatically", "split",
  "junk", "failed", "rejected", "transferred", "transferFailed",
}
local STATE_SET = {}
for _, s in ipairs(M.STATES) do STATE_SET[s] = true end

M.MAX_EXTERNAL_DATA = 20
M.MAX_EXTERNAL_KEY = 50
M.MAX_TITLE = 256

-- Sort definitions: field and direction.
local SORTS = {
  ["createdAt"] = { "created", false }, ["+createdAt"] = { "created", false }, ["-createdAt"] = { "created", true },
  ["updatedAt"] = { "updated", false }, ["+updatedAt"] = { "updated", false }, ["-updatedAt"] = { "updated", true },
}

local function invalid_payload(detail)
  util.raise(400, "Payload data is invalid", detail)
end

local function not_found()
  util.raise(404, "Document does not exist", "The document with given identifier does not exist")
end

--------------------------------------------------------------------- processing

-- Add a state to a document's history at epoch `at` (by `who`), updating the record.
local function push_state(doc, info, st, at, who)
  info.history[#info.history + 1] = { state = st, updatedAt = util.iso(at), at = at }
  doc.state = st
  if at >= info.updated then
    info.updated = at
    doc.updatedAt = util.iso(at)
    doc.updatedBy = who
  end
end

--- Bring a document's state up to `now` (no-op unless it is still being processed).
function M.advance(doc, now)
  local data = state.data
  local info = data.doc_internal[doc]
  local plan = info.plan
  if not plan then return end
  local steps = plan.steps
  local changed = false
  while plan.next <= #steps and steps[plan.next].at <= now do
    local step = steps[plan.next]
    push_state(doc, info, step.state, step.at, "system")
    if step.state == "extracted" then
      doc.entities = plan.entities
    elseif step.state == "done" or step.state == "doneAutomatically" then
      doc.completedAt = util.iso(step.at)
      doc.completedBy = plan.completed_by
    end
    plan.next = plan.next + 1
    changed = true
  end
  if plan.next > #steps then
    info.plan = nil
    data.doc_pending[doc] = nil
  end
  if changed then util.touch(doc) end
end

-- Advance every document still in processing.
local function advance_all(now)
  local pending = state.data.doc_pending
  if next(pending) == nil then return end
  local list = {}
  for doc in pairs(pending) do list[#list + 1] = doc end
  for _, doc in ipairs(list) do M.advance(doc, now) end
end

state.on_reset(function()
  local data = state.data
  data.doc_pending = {}
  data.processed = 0
  data.doc_seq = #data.documents
  data.last_created = 0
  for i, doc in ipairs(data.documents) do data.doc_internal[doc].seq = i end
end)

-- Create a document for `file_list` (file records) in `project`; returns it.
local function create(req, file_list, project, external_id, external_data)
  local data, cfg = state.data, state.config
  data.processed = data.processed + 1
  local n = data.processed
  local t0 = req.now
  if t0 <= data.last_created then t0 = data.last_created + 0.000001 end
  data.last_created = t0
  local who = req.token and req.token.client_id or "system"
  local first = file_list[1]
  local doc = {
    id = util.new_object_id(t0),
    title = first.filename and util.text_from_header(first.filename) or first.id,
    state = "new",
    createdAt = util.iso(t0), createdBy = who,
    updatedAt = util.iso(t0), updatedBy = who,
    fileId = first.id,
    projectId = project.id,
    externalId = external_id,
    externalData = external_data,
    entities = {},
  }
  local ids = {}
  for i, f in ipairs(file_list) do ids[i] = f.id end
  local p = cfg.processing_time
  local automatic = project.completion == "automatic"
  local steps
  if cfg.fail_every > 0 and n % cfg.fail_every == 0 then
    steps = { { state = "processing", at = t0 + p / 4 }, { state = "failed", at = t0 + p * 3 / 4 } }
  else
    steps = { { state = "processing", at = t0 + p / 4 }, { state = "extracted", at = t0 + p / 2 },
              { state = automatic and "doneAutomatically" or "done", at = t0 + p * 3 / 4 } }
  end
  data.doc_seq = data.doc_seq + 1
  data.doc_internal[doc] = {
    created = t0, updated = t0, seq = data.doc_seq, files = ids,
    history = { { state = "new", updatedAt = doc.createdAt, at = t0 } },
    plan = { steps = steps, next = 1, entities = seed.invoice_entities(1000 + n, t0),
             completed_by = automatic and "system" or project.createdBy },
  }
  data.documents[#data.documents + 1] = doc
  data.document_by_id[doc.id] = doc
  data.doc_pending[doc] = true
  M.advance(doc, t0) -- a processing_time of 0 finishes at once
  return doc
end

--------------------------------------------------------------------- helpers

--- The document for a path id (advanced to `now`); raises 404 when there is none.
function M.find(id, now)
  if type(id) ~= "string" or #id ~= 24 or not find(id, "^%x+$") then not_found() end
  local doc = state.data.document_by_id[lower(id)]
  if not doc then not_found() end
  M.advance(doc, now)
  return doc
end

-- Require a JSON request body holding an object; returns it.
local function json_object()
  local mt = util.media_type()
  if mt ~= "application/json" and not (mt and find(mt, "^application/[%w%.%-]+%+json$")) then
    util.raise(400, "Unsupported content type", "The request body must be sent as application/json")
  end
  local v = util.decode_keep(util.read_body())
  if not util.is_object(v) then invalid_payload("The request body must be a JSON object") end
  return v
end

-- Require a text/plain body; returns it.
local function text_body()
  if util.media_type() ~= "text/plain" then
    util.raise(400, "Unsupported content type", "The request body must be sent as text/plain")
  end
  return util.read_body()
end

--- Validate an external-data map: values must be strings, numbers or booleans; keys
-- longer than 50 characters are dropped; at most 20 entries remain. Returns the cleaned
-- map or raises 400 "Payload data is invalid".
function M.clean_external_data(v, what)
  what = what or "External data"
  if not util.is_object(v) then invalid_payload(what .. " must be a flat JSON object") end
  local out, n = {}, 0
  for k, x in pairs(v) do
    local tx = type(x)
    if tx ~= "string" and tx ~= "number" and tx ~= "boolean" then
      invalid_payload(what .. ": the value of '" .. tostring(k) .. "' must be a string, a number or a boolean")
    end
    local len = util.utf8_len(k) or #k
    if len <= M.MAX_EXTERNAL_KEY then
      out[k] = x
      n = n + 1
    end
  end
  if n > M.MAX_EXTERNAL_DATA then
    invalid_payload(what .. " may hold at most " .. M.MAX_EXTERNAL_DATA .. " entries")
  end
  return out
end

-- The project for a payload's projectId; raises 400 for a malformed id, 404 when unknown.
local function payload_project(v)
  local pid = v.projectId
  if pid == nil or pid == util.null then invalid_payload("projectId is required") end
  if type(pid) ~= "string" or #pid ~= 24 or not find(pid, "^%x+$") then
    invalid_payload("projectId must be a valid project identifier")
  end
  return pid
end

local function lookup_project(pid)
  local project = state.data.project_by_id[lower(pid)]
  if not project then
    util.raise(404, "Project does not exist", "The project with given identifier does not exist")
  end
  return project
end

local function lookup_file(fid)
  local rec = files.lookup(fid)
  if not rec then util.raise(404, "File does not exist", "The file with given identifier does not exist") end
  return rec
end

--------------------------------------------------------------------- handlers

--- GET /v2/documents
function M.list(req)
  local args = req:args()
  local limit, offset = util.paging(args)
  local projects
  for _, p in ipairs(util.multi(args.projectId)) do
    if type(p) ~= "string" or #p ~= 24 or not find(p, "^%x+$") then
      util.raise(400, "Provided project identifier is invalid",
        "One of the values of the projectId query parameter is not a valid project identifier")
    end
    projects = projects or {}
    projects[lower(p)] = true
  end
  local states
  for _, s in ipairs(util.multi(args.state)) do
    if not STATE_SET[s] then
      util.raise(400, "Provided state is invalid",
        "One of the values of the state query parameter is not a document state")
    end
    states = states or {}
    states[s] = true
  end
  local file_id = util.single(args.fileId)
  if file_id == "" then file_id = nil end
  local sort_def = util.single(args.sort)
  if sort_def == nil then sort_def = "-createdAt" end
  if type(sort_def) == "string" and sort_def:sub(1, 1) == " " then sort_def = "+" .. sort_def:sub(2) end
  local how = SORTS[sort_def]
  if not how then util.raise(400, "Invalid sort definition", "The sort parameter must be one of createdAt, "
    .. "+createdAt, -createdAt, updatedAt, +updatedAt, -updatedAt") end

  advance_all(req.now)
  local data = state.data
  local internal = data.doc_internal
  local items = {}
  for _, doc in ipairs(data.documents) do
    if (not projects or projects[doc.projectId]) and (not states or states[doc.state]) then
      local ok = true
      if file_id then
        ok = false
        for _, f in ipairs(internal[doc].files) do
          if f == file_id then ok = true break end
        end
      end
      if ok then items[#items + 1] = doc end
    end
  end
  local field, desc = how[1], how[2]
  sort(items, function(a, b)
    local ia, ib = internal[a], internal[b]
    local x, y = ia[field], ib[field]
    if x ~= y then
      if desc then return x > y end
      return x < y
    end
    if desc then return ia.seq > ib.seq end
    return ia.seq < ib.seq
  end)
  return 200, util.page(items, limit, offset)
end

--- GET /v2/documents/{id}
function M.get(req, params)
  return 200, util.record_json(M.find(params.id, req.now))
end

--- GET /v2/documents/{id}/states
function M.states(req, params)
  local doc = M.find(params.id, req.now)
  local list = {}
  for i, h in ipairs(state.data.doc_internal[doc].history) do
    list[i] = { state = h.state, updatedAt = h.updatedAt }
  end
  return 200, util.array(list)
end

-- Optional externalId / externalData of a processing request.
local function payload_extras(v)
  local ext = v.externalId
  if ext == util.null then ext = nil end
  if ext ~= nil and (type(ext) ~= "string" or ext == "") then
    invalid_payload("externalId must be a non-empty string")
  end
  local data = v.externalData
  if data == util.null then data = nil end
  if data ~= nil then data = M.clean_external_data(data, "externalData") end
  return ext, data
end

--- POST /v2/documents/process-file
function M.process_file(req)
  local v = json_object()
  local fid = v.fileId
  if fid == nil or fid == util.null then invalid_payload("fileId is required") end
  if type(fid) ~= "string" or fid == "" then invalid_payload("fileId must be a non-empty string") end
  local pid = payload_project(v)
  local ext, extdata = payload_extras(v)
  local rec = lookup_file(fid)
  local project = lookup_project(pid)
  local doc = create(req, { rec }, project, ext, extdata)
  return 202, { documentId = doc.id, fileId = rec.id, projectId = project.id }
end

--- POST /v2/cases/process-file-batch
function M.process_batch(req)
  local v = json_object()
  local ids = v.fileIds
  if ids == nil or ids == util.null then invalid_payload("fileIds is required") end
  if not util.is_array(ids) then invalid_payload("fileIds must be an array of file identifiers") end
  ids = util.items(ids)
  if #ids == 0 then invalid_payload("fileIds must hold at least one file identifier") end
  for _, fid in ipairs(ids) do
    if type(fid) ~= "string" or fid == "" then invalid_payload("fileIds must hold non-empty strings") end
  end
  local pid = payload_project(v)
  local ext, extdata = payload_extras(v)
  local recs, out = {}, {}
  for i, fid in ipairs(ids) do
    recs[i] = lookup_file(fid)
    out[i] = recs[i].id
  end
  local project = lookup_project(pid)
  local doc = create(req, recs, project, ext, extdata)
  return 202, { documentId = doc.id, fileIds = out, projectId = project.id }
end

-- Mark a document as changed by the caller.
local function changed(req, doc)
  local info = state.data.doc_internal[doc]
  if req.now >= info.updated then
    info.updated = req.now
    doc.updatedAt = util.iso(req.now)
    doc.updatedBy = req.token and req.token.client_id or "system"
  end
  util.touch(doc)
end

--- POST /v2/documents/{id}/transfer
function M.transfer(req, params)
  local doc = M.find(params.id, req.now)
  local v = json_object()
  local ok = v.successful
  if ok == nil or ok == util.null then invalid_payload("successful is required") end
  if type(ok) ~= "boolean" then invalid_payload("successful must be a boolean") end
  local msg = v.message
  if msg == util.null then msg = nil end
  if msg ~= nil and type(msg) ~= "string" then invalid_payload("message must be a string") end
  local data = state.data
  local info = data.doc_internal[doc]
  info.plan = nil -- a transfer ends any processing still going on
  data.doc_pending[doc] = nil
  local at = req.now
  if at < info.updated then at = info.updated end
  push_state(doc, info, ok and "transferred" or "transferFailed", at, req.token and req.token.client_id or "system")
  info.transfer_message = msg
  util.touch(doc)
  return 202
end

--- POST /v2/documents/{id}/external-data
function M.external_data(req, params)
  local doc = M.find(params.id, req.now)
  doc.externalData = M.clean_external_data(json_object())
  changed(req, doc)
  return 202
end

--- POST /v2/documents/{id}/external-id
function M.external_id(req, params)
  local doc = M.find(params.id, req.now)
  local text = text_body()
  if text == "" then invalid_payload("The external identifier must not be empty") end
  doc.externalId = text
  changed(req, doc)
  return 202
end

--- POST /v2/documents/{id}/title
function M.title(req, params)
  local doc = M.find(params.id, req.now)
  local text = text_body()
  local n = util.utf8_len(text)
  if not n then invalid_payload("The title must be valid UTF-8 text") end
  if n < 1 or n > M.MAX_TITLE then invalid_payload("The title must be 1 to 256 characters long") end
  doc.title = text
  changed(req, doc)
  return 202
end

--- Register the documents routes.
function M.register(r)
  local read, write = { scope = "documents.read" }, { scope = "documents.write" }
  r:add("GET", "/v2/documents", M.list, read)
  r:add("POST", "/v2/documents/process-file", M.process_file, write)
  r:add("POST", "/v2/cases/process-file-batch", M.process_batch, write)
  r:add("GET", "/v2/documents/{id}", M.get, read)
  r:add("GET", "/v2/documents/{id}/states", M.states, read)
  r:add("POST", "/v2/documents/{id}/transfer", M.transfer, write)
  r:add("POST", "/v2/documents/{id}/external-data", M.external_data, write)
  r:add("POST", "/v2/documents/{id}/external-id", M.external_id, write)
  r:add("POST", "/v2/documents/{id}/title", M.title, write)
end

return M
