--- The `enrichment` command: upsert master data records from a file, or delete one.
-- `enrichment TYPE upsert FILE [--concurrency N]` and `enrichment TYPE delete EXTERNAL_ID`.
--
-- FILE is CSV when its name ends in .csv (a header row naming the fields, one
-- record per row; an empty cell leaves the field out; a dotted column name
-- nests: `address.city`, `vatIds.1.id` → `vatIds = {{id = …}}`), else JSON Lines
-- (one object per line; `-` reads stdin). Every record is upserted through
-- `client:map`; refused ones are reported on stderr one line each (with their
-- line number and externalId), and a summary `accepted: N, refused: M` goes to
-- stdout. Exit 0 when all were accepted, 2 when some were refused, 1 when none
-- was accepted (or the file cannot be read).
-- @internal hypatos.cli.enrichment

local hypatos = require "hypatos"
local csv = require "hypatos.csv"
local operations = require "hypatos.operations"
local cli = require "hypatos.cli"
local tointeger = require("hypatos.cli.compat").tointeger

local M = {}

--- The Lua name of a record type ("purchase-orders" → "purchase_orders"), or a usage error
-- (with the usage of `hypatos enrichment`, whose argument TYPE is).
-- @tparam string t
-- @treturn string
local function type_name(t)
  local name = t:gsub("%-", "_")
  local names = {}
  for _, et in ipairs(operations.enrichment_types()) do
    if et.name == name then return name end
    names[#names + 1] = et.name
  end
  cli.usage(("unknown enrichment type '%s' (one of: %s)"):format(t, table.concat(names, ", ")), { "enrichment" })
end

--- Sets `value` at a dotted path in `rec` (numeric parts index arrays).
-- @tparam table rec
-- @tparam string name
-- @tparam string value
local function set_path(rec, name, value)
  local parts = {}
  for part in name:gmatch("[^.]+") do parts[#parts + 1] = tointeger(tonumber(part)) or part end
  local t = rec
  for i = 1, #parts - 1 do
    local k = parts[i]
    if type(t[k]) ~= "table" then t[k] = {} end
    t = t[k]
  end
  t[parts[#parts]] = value
end

--- Records from CSV text: `{record = …, line = n}`; or nil, err (also for rows under a
-- header without an `externalId` column: every one would be refused).
-- @tparam string text
-- @treturn[1] table
-- @treturn[2] nil
-- @treturn[2] string
local function from_csv(text)
  local rows, err = csv.parse(text)
  if not rows then return nil, err end
  local header = table.remove(rows, 1)
  if not header then return {} end
  local keyed = false
  for _, name in ipairs(header) do keyed = keyed or name == "externalId" end
  if not keyed and #rows > 0 then -- every record would be refused (upserts are keyed by it)
    local shown = {}
    for i = 1, math.min(#header, 6) do shown[i] = header[i] end
    return nil, ("no externalId column (the columns: %s%s): records are upserted by their externalId, and the"
      .. " columns are the API's field names (externalId,name,…)"):format(table.concat(shown, ","),
      #header > 6 and ",…" or "")
  end
  local out = {}
  for _, row in ipairs(rows) do
    local rec = {}
    for i, name in ipairs(header) do
      local v = row[i]
      if name ~= "" and v ~= nil and v ~= "" then set_path(rec, name, v) end
    end
    out[#out + 1] = { record = rec, line = row.line }
  end
  return out
end

--- Records from JSON Lines text: `{record = …, line = n}` or `{problem = …, line = n}`.
-- @tparam string text
-- @treturn table
local function from_jsonl(text)
  local out, n = {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("\r$", "")
    if line:find("%S") then
      local ok, v, why = pcall(hypatos.json.decode, line)
      if not ok or v == nil then
        out[#out + 1] = { problem = "not JSON: " .. tostring(ok and why or v):gsub("[\r\n]+", " "), line = n }
      elseif type(v) ~= "table" or v[1] ~= nil then
        out[#out + 1] = { problem = "not a JSON object", line = n }
      else
        out[#out + 1] = { record = v, line = n }
      end
    end
  end
  return out
end

--- `enrichment TYPE upsert FILE`.
-- @tparam table ctx
-- @tparam string name the Lua name of the record type
-- @treturn integer exit status
local function upsert(ctx, name)
  local a = ctx.args
  local text, err
  if a.file == "-" then
    text = io.stdin:read("*a")
  else
    local f
    f, err = io.open(a.file, "rb")
    if not f then ctx:err(err) return 1 end
    text = f:read("*a")
    f:close()
  end
  local items
  if a.file:lower():match("%.csv$") then
    items, err = from_csv(text)
    if not items then ctx:err(a.file .. ": " .. err) return 1 end
  else
    items = from_jsonl(text)
  end
  local client = ctx:client()
  local target = client.enrichment[name]
  local counter, done = ctx:progress(), 0
  local results, errors = client:map(items, function(item)
    if item.problem then return nil, item.problem end
    local value, why = target:upsert(item.record)
    if value == nil then return nil, why end
    return value
  end, { concurrency = a.concurrency, on_done = function()
    done = done + 1
    counter:count("upserting " .. name, done, #items)
  end })
  counter:finish()
  local accepted, refused = 0, 0
  for i, item in ipairs(items) do
    if results[i] ~= nil and errors[i] == nil then
      accepted = accepted + 1
    else
      refused = refused + 1
      local id = item.record and item.record.externalId
      ctx:err(("line %d%s: %s"):format(item.line, id and (" (" .. tostring(id) .. ")") or "",
        tostring(errors[i] or "refused"):gsub("^hypatos: ", "")))
    end
  end
  ctx.stdout:write(("accepted: %d, refused: %d\n"):format(accepted, refused))
  if refused == 0 then return 0 end
  return accepted == 0 and 1 or 2
end

--- Runs the command.
-- @tparam table ctx
-- @treturn integer exit status
function M.run(ctx)
  local a = ctx.args
  local name = type_name(a.type)
  if a.action == "upsert" then return upsert(ctx, name) end
  local target = ctx:client().enrichment[name]
  local ok, value, err = pcall(target.delete, target, a.external_id)
  if not ok and cli.interrupted(value) then error(value, 0) end -- Ctrl-C: exit 130, not a usage error
  if not ok then cli.usage((tostring(value):gsub("^hypatos: ", "")), { "enrichment" }) end -- a type without delete
  if value == nil then ctx:err(err) return 1 end
  ctx.stdout:write("deleted ", a.external_id, "\n")
  return 0
end

return M
