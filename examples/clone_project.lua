--- Clone a project: create a new project with the same configuration and extraction
-- schema, print its id, then read the new schema back and check it equals the original.
--
-- WRITES: creates one project (its id is the second word of the "created:" line).
-- Credentials come from the environment: HYPATOS_CLIENT_ID, HYPATOS_CLIENT_SECRET
-- (and HYPATOS_BASE_URL for another server, e.g. the local one `make demo` starts).
-- To clone into another tenant or region, set HYPATOS_TARGET_CLIENT_ID and
-- HYPATOS_TARGET_CLIENT_SECRET (and HYPATOS_TARGET_BASE_URL, e.g. the US region's
-- https://api.cloud.hypatos.com/v2): the project is read with the first client and created
-- with the second. The extraction model and the member user ids it names must exist there too.
--
--   lua5.4 examples/clone_project.lua [project_id [new name]]
--
--   project_id  default: the first project the API lists
--   new name    default: "<name> (copy)", shortened to the API's 60 characters
--
-- What is copied: the fields a project is created with (name, note, ocr,
-- extractionModelId, completion, duplicates, members) and the schema, unchanged: empty
-- arrays stay [] because the client keeps them as arrays. retentionDays and isLive are not
-- creation fields; set them afterwards with projects:update(id, {…}) if the clone needs them.
-- Exit status: 0 cloned and verified; 1 an error, or a schema that came back different.
-- Runs on Lua 5.4 and LuaJIT.
-- @script clone_project
local hypatos = require "hypatos"

local function die(msg)
  io.stderr:write(tostring(msg), "\n")
  os.exit(1)
end

local CREATE_FIELDS = { "note", "ocr", "extractionModelId", "completion", "duplicates", "members" }
local MAX_NAME = 60

-- The first `n` characters of UTF-8 text `s`.
local function first_chars(s, n)
  local count = 0
  for pos in s:gmatch("()[^\128-\191]") do
    count = count + 1
    if count > n then return s:sub(1, pos - 1) end
  end
  return s
end

local source = hypatos.new()
local target = source
if os.getenv("HYPATOS_TARGET_CLIENT_ID") then
  target = hypatos.new({
    client_id = os.getenv("HYPATOS_TARGET_CLIENT_ID"),
    client_secret = os.getenv("HYPATOS_TARGET_CLIENT_SECRET") or die("HYPATOS_TARGET_CLIENT_SECRET is not set"),
    base_url = os.getenv("HYPATOS_TARGET_BASE_URL"),
  })
end

-- 1. The project and its schema.
local id = arg[1]
if not id then
  local page, err = source.projects:list({ limit = 1 })
  if not page then die(err) end
  if not page.data[1] then die("there is no project to clone") end
  id = page.data[1].id
end
local project, err = source.projects:get(id)
if not project then die(err) end
local schema
schema, err = source.projects:schema(id)
if not schema then die(err) end
print(("source:  %s  %s"):format(project.id, project.name))

-- 2. The new project: the creation fields that are set (null means "not set" here).
local body = {
  name = arg[2] or first_chars(project.name, MAX_NAME - #" (copy)") .. " (copy)",
  schema = schema,
}
for _, field in ipairs(CREATE_FIELDS) do
  if project[field] ~= nil and project[field] ~= hypatos.null then body[field] = project[field] end
end
local created
created, err = target.projects:create(body)
if not created then die(err) end
print(("created: %s  %s"):format(created.id, created.name))

-- 3. Verify: the schema as the API now serves it, compared as canonical JSON (sorted keys,
-- exact numbers, [] and {} kept apart).
local copy
copy, err = target.projects:schema(created.id)
if not copy then die(err) end
local want, got = hypatos.json.encode(schema), hypatos.json.encode(copy)
if want ~= got then
  local differ = {}
  for _, t in ipairs({ schema, copy }) do
    for k in pairs(t) do
      local a = schema[k] == nil and "" or hypatos.json.encode(schema[k])
      local b = copy[k] == nil and "" or hypatos.json.encode(copy[k])
      if a ~= b and not differ[k] then
        differ[k] = true
        differ[#differ + 1] = k
      end
    end
  end
  table.sort(differ)
  die("the new project's schema differs from the original in: " .. table.concat(differ, ", "))
end
print(("schema verified: identical (%d bytes of JSON)"):format(#want))
