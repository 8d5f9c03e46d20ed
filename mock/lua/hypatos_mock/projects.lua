-- hypatos_mock.projects — projects and their schemas (scopes projects.read / projects.write):
--
--   GET   /v2/projects              list (search, sort = -createdAt | +createdAt, limit, offset)
--   POST  /v2/projects              create → 201 ProjectResponse
--   GET   /v2/projects/{id}         one project
--   PATCH /v2/projects/{id}         partial update → 200 ProjectResponse
--   GET   /v2/projects/{id}/schema  the project's schema (empty arrays stay `[]`)
--
-- Errors (status, title): 400 "Provided project identifier is invalid" (id not 24-hex),
-- 400 "Invalid sort definition", 400 "Payload data is invalid" (body is not a JSON
-- object), 415 "Unsupported media type" (body not JSON), 404 "Project does not exist",
-- 422 "Request validation error" with a detail naming the field and the reason.

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"
local seed = require "hypatos_mock.seed"

local type, ipairs = type, ipairs
local find, lower, concat, floor = string.find, string.lower, table.concat, math.floor

local M = {}

-- Languages the Abbyy engine accepts (its own language identifiers).
local ABBYY_LANGUAGES = {}
for name in ([[Arabic ArmenianEastern ArmenianGrabar ArmenianWestern Bulgarian Catalan ChinesePRC
  ChineseTaiwan Croatian Czech Danish Dutch DutchBelgian English Estonian Farsi Finnish French German
  Greek Hebrew Hungarian Icelandic Indonesian Irish Italian Japanese Korean KoreanHangul Latin Latvian
  Lithuanian Macedonian Malay Mongol Norwegian Polish PortugueseBrazilian PortugueseStandard Romanian
  Russian SerbianCyrillic SerbianLatin Slovenian Spanish Swedish Thai Turkish UighurCyrillic UighurLatin
  Ukrainian Vietnamese Welsh]]):gmatch("%S+") do
  ABBYY_LANGUAGES[name] = true
end
M.ABBYY_LANGUAGES = ABBYY_LANGUAGES

local OCR_FEATURES = {
  abbyy = { barcodes = true },
  google = { barcodes = true, disableBoxFilter = true, plainText = true },
}
local FEATURE_LISTS = { abbyy = "barcodes", google = "barcodes, disableBoxFilter, plainText" }

-- Raise the 422 validation error.
local function invalid(field, why)
  util.raise(422, "Request validation error", field .. ": " .. why)
end

local function bad_id()
  util.raise(400, "Provided project identifier is invalid", "The given project identifier is not valid")
end

local function not_found()
  util.raise(404, "Project does not exist", "The project with given identifier does not exist")
end

-- A string of 1..max characters.
local function check_text(field, v, max)
  if type(v) ~= "string" then invalid(field, "must be a string") end
  local n = util.utf8_len(v)
  if not n then invalid(field, "must be valid UTF-8 text") end
  if n < 1 or n > max then invalid(field, "must be 1 to " .. max .. " characters long") end
end

local function check_enum(field, v, allowed)
  for _, a in ipairs(allowed) do
    if v == a then return end
  end
  invalid(field, "must be one of " .. concat(allowed, ", "))
end

local function check_ocr(v)
  if not util.is_object(v) then invalid("ocr", "must be an object") end
  local engine = v.engine
  if engine == nil or engine == util.null then invalid("ocr.engine", "field required") end
  if not OCR_FEATURES[engine] then invalid("ocr.engine", "must be one of abbyy, google") end
  local features = v.features
  if features == nil or features == util.null then invalid("ocr.features", "field required") end
  if not util.is_array(features) then invalid("ocr.features", "must be an array") end
  for i, f in ipairs(util.items(features)) do
    if not OCR_FEATURES[engine][f] then
      invalid("ocr.features[" .. (i - 1) .. "]", "must be one of " .. FEATURE_LISTS[engine])
    end
  end
  if engine == "abbyy" then
    local langs = v.languages
    if langs == nil or langs == util.null then invalid("ocr.languages", "field required") end
    if not util.is_array(langs) then invalid("ocr.languages", "must be an array") end
    langs = util.items(langs)
    if #langs < 1 or #langs > 5 then invalid("ocr.languages", "must hold 1 to 5 languages") end
    for i, l in ipairs(langs) do
      if not ABBYY_LANGUAGES[l] then
        invalid("ocr.languages[" .. (i - 1) .. "]", "is not a language supported by the abbyy engine")
      end
    end
  end
end

local function check_members(v)
  if not util.is_object(v) then invalid("members", "must be an object") end
  local allow = v.allow
  if allow == nil or allow == util.null then invalid("members.allow", "field required") end
  check_enum("members.allow", allow, { "all", "members" })
  if allow == "members" then
    local list = v.members
    if list == nil or list == util.null then invalid("members.members", "field required") end
    if not util.is_array(list) then invalid("members.members", "must be an array") end
    for i, id in ipairs(util.items(list)) do
      if type(id) ~= "string" or id == "" then
        invalid("members.members[" .. (i - 1) .. "]", "must be a non-empty string")
      end
    end
  end
end

local function check_schema(v)
  if not util.is_object(v) then invalid("schema", "must be an object") end
  local version = v.version
  if version ~= nil and version ~= util.null and (type(version) ~= "number" or version ~= floor(version)) then
    invalid("schema.version", "must be an integer")
  end
  local dps = v.dataPoints
  if dps ~= nil and dps ~= util.null then
    if not util.is_array(dps) then invalid("schema.dataPoints", "must be an array") end
    for i, dp in ipairs(util.items(dps)) do
      local where = "schema.dataPoints[" .. (i - 1) .. "]"
      if not util.is_object(dp) then invalid(where, "must be an object") end
      if type(dp.internalName) ~= "string" or dp.internalName == "" then
        invalid(where .. ".internalName", "must be a non-empty string")
      end
    end
  end
  for _, k in ipairs{ "features", "enrichment", "normalization", "validation" } do
    local x = v[k]
    if x ~= nil and x ~= util.null and not util.is_object(x) then invalid("schema." .. k, "must be an object") end
  end
end

-- Field checks; nullable fields may be cleared with null.
local CHECKS = {
  name = function(v) check_text("name", v, 60) end,
  note = function(v) check_text("note", v, 1000) end,
  ocr = check_ocr,
  extractionModelId = function(v)
    if type(v) ~= "string" or v == "" then invalid("extractionModelId", "must be a non-empty string") end
  end,
  completion = function(v) check_enum("completion", v, { "automatic", "manual" }) end,
  duplicates = function(v) check_enum("duplicates", v, { "allow", "fail" }) end,
  members = check_members,
  schema = check_schema,
  retentionDays = function(v)
    if type(v) ~= "number" or v ~= floor(v) or v < 1 then invalid("retentionDays", "must be a positive integer") end
  end,
  isLive = function(v)
    if type(v) ~= "boolean" then invalid("isLive", "must be a boolean") end
  end,
}
local FIELDS = { "name", "note", "ocr", "extractionModelId", "completion", "duplicates", "members", "schema",
                 "retentionDays", "isLive" }
local NULLABLE = { note = true, retentionDays = true }
local REQUIRED = { "name", "ocr", "extractionModelId", "members" }

-- Validate a create (partial = false) or update (partial = true) body.
local function validate(body, partial)
  if not partial then
    for _, k in ipairs(REQUIRED) do
      if body[k] == nil then invalid(k, "field required") end
    end
  end
  for _, k in ipairs(FIELDS) do
    local v = body[k]
    if v == util.null then
      if not NULLABLE[k] then invalid(k, "must not be null") end
    elseif v ~= nil then
      CHECKS[k](v)
    end
  end
end

-- Require a JSON object body (`patch` also accepts application/merge-patch+json).
local function json_object(patch)
  local mt = util.media_type()
  if mt ~= "application/json" and not (patch and mt == "application/merge-patch+json") then
    util.raise(415, "Unsupported media type", "The request body must be sent as application/json"
      .. (patch and " or application/merge-patch+json" or ""))
  end
  local v = util.decode_keep(util.read_body())
  if not util.is_object(v) then
    util.raise(400, "Payload data is invalid", "The request body could not be parsed as a JSON object")
  end
  return v
end

-- The project for a path id; 400 when malformed, 404 when unknown.
local function find_project(id)
  if type(id) ~= "string" or #id ~= 24 or not find(id, "^%x+$") then bad_id() end
  local p = state.data.project_by_id[lower(id)]
  if not p then not_found() end
  return p
end

--- GET /v2/projects
function M.list(req)
  local args = req:args()
  local limit, offset = util.paging(args)
  local search = util.single(args.search)
  if search == "" then search = nil end
  if search then search = lower(search) end
  local s = util.single(args.sort)
  if s == nil then s = "-createdAt" end
  local asc
  if s == "+createdAt" or s == " createdAt" then asc = true
  elseif s == "-createdAt" then asc = false
  else util.raise(400, "Invalid sort definition", "The sort parameter must be -createdAt or +createdAt") end
  local data = state.data
  local items = {}
  for _, p in ipairs(data.projects) do
    if not search or find(lower(p.name), search, 1, true) or find(p.id, search, 1, true) then
      items[#items + 1] = p
    end
  end
  -- data.projects is in creation order (ascending createdAt).
  if not asc then
    local n = #items
    for i = 1, floor(n / 2) do items[i], items[n + 1 - i] = items[n + 1 - i], items[i] end
  end
  return 200, util.page(items, limit, offset)
end

--- POST /v2/projects
function M.create(req)
  local body = json_object(false)
  validate(body, false)
  local now = req.now
  local who = req.token and req.token.client_id or "system"
  local data = state.data
  local last = data.projects[#data.projects]
  local rec = {
    id = util.new_object_id(now),
    name = body.name, ocr = body.ocr, extractionModelId = body.extractionModelId, members = body.members,
    completion = body.completion or "manual", duplicates = body.duplicates or "fail",
    createdAt = util.iso(now), createdBy = who, updatedAt = util.iso(now), updatedBy = who,
  }
  if last and rec.createdAt <= last.createdAt then -- keep creation order strictly ascending
    rec.createdAt = util.iso(now + 0.000001)
    rec.updatedAt = rec.createdAt
  end
  for _, k in ipairs{ "note", "retentionDays", "isLive" } do
    if body[k] ~= util.null then rec[k] = body[k] end
  end
  data.projects[#data.projects + 1] = rec
  data.project_by_id[rec.id] = rec
  data.schemas[rec.id] = body.schema or seed.default_schema(1)
  return 201, util.record_json(rec)
end

--- GET /v2/projects/{id}
function M.get(_, params)
  return 200, util.record_json(find_project(params.id))
end

--- PATCH /v2/projects/{id}
function M.patch(req, params)
  local rec = find_project(params.id)
  local body = json_object(true)
  validate(body, true)
  for _, k in ipairs(FIELDS) do
    local v = body[k]
    if k == "schema" then
      if v ~= nil then state.data.schemas[rec.id] = v end
    elseif v == util.null then
      rec[k] = nil
    elseif v ~= nil then
      rec[k] = v
    end
  end
  rec.updatedAt = util.iso(req.now)
  rec.updatedBy = req.token and req.token.client_id or "system"
  util.touch(rec)
  return 200, util.record_json(rec)
end

--- GET /v2/projects/{id}/schema
function M.schema(_, params)
  local rec = find_project(params.id)
  return 200, util.encode(state.data.schemas[rec.id] or seed.default_schema(1))
end

--- Register the projects routes.
function M.register(r)
  local read, write = { scope = "projects.read" }, { scope = "projects.write" }
  r:add("GET", "/v2/projects", M.list, read)
  r:add("POST", "/v2/projects", M.create, write)
  r:add("GET", "/v2/projects/{id}", M.get, read)
  r:add("PATCH", "/v2/projects/{id}", M.patch, write)
  r:add("GET", "/v2/projects/{id}/schema", M.schema, read)
end

return M
