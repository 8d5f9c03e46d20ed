--- `client.enrichment`: master data for extraction (scopes `enrichment.write`,
-- `enrichment.delete`). One object per record type, each with what the API
-- offers for it (see the README's reference table, from `hypatos.operations`):
--
--     upsert(record)                      POST   /enrichment/<type>               (keyed by externalId) → {id}
--     patch(external_id, changes)         PATCH  /enrichment/<type>/{externalId}  (application/merge-patch+json;
--                                         externalId is put into the body) → the updated record
--     delete(external_id [, opts])        DELETE /enrichment/<type>/{externalId}  (opts.line_number → ?lineNumber=,
--                                         invoices and purchase_orders) → true
--
-- for invoices, companies, suppliers, purchase_orders, gl_accounts,
-- cost_centers, approvers, customers, goods_receipts, contracts, addresses,
-- products, profit_centers, internal_orders, projects (WBS elements),
-- sales_orders, quotes; and `lookup_tables` with insert(table_name, row) and
-- delete(table_name, external_id). A verb a type lacks raises, naming the
-- types that have it. Every one of these is safe to retry: inserts are
-- upserts by externalId, patches and deletes are idempotent.
-- @module hypatos.enrichment
local resource = require "hypatos.resource"
local operations = require "hypatos.operations"

local VERBS = { "upsert", "patch", "delete" }

--- For each verb, the Lua names of the types that have it ("invoices, companies, …").
local function who_has()
  local out = {}
  for _, verb in ipairs(VERBS) do
    local names = {}
    for _, t in ipairs(operations.enrichment_types()) do
      for _, o in ipairs(operations.of("enrichment." .. t.name)) do
        if o.name == verb then names[#names + 1] = t.name end
      end
    end
    out[verb] = table.concat(names, ", ")
  end
  return out
end

local HAS = who_has()

--- The class of one record type: generated methods, and for each verb the
-- type lacks a method that raises.
local function record_class(name)
  local R = {}
  for _, verb in ipairs(VERBS) do
    --- A verb the API lacks for this type: raises "enrichment.<type> has no <verb> in the
    -- API (only <types that have it>)"; replaced below when the type has the verb.
    -- @function missing_verb
    -- @local
    R[verb] = function()
      error(("hypatos: enrichment.%s has no %s in the API (only %s)"):format(name, verb, HAS[verb]), 2)
    end
  end
  for _, o in ipairs(operations.of("enrichment." .. name)) do R[o.name] = nil end
  R = resource.generate("enrichment." .. name, R)
  R.__index = R
  R.__name = "hypatos.enrichment." .. name
  R.__tostring = function() return "hypatos.enrichment." .. name end
  return R
end

local CLASSES = {}
for _, t in ipairs(operations.enrichment_types()) do CLASSES[t.name] = record_class(t.name) end

local Lookup = {}
local INSERT_ROW = resource.op("enrichment.lookup_tables", "insert")

--- Inserts or replaces one row of a lookup table → `{id}`, meta.
-- The row is a flat table of strings holding `externalId`; anything else is
-- answered with nil, err (kind "invalid") before sending.
-- @tparam string table_name
-- @tparam table row
-- @tparam[opt] table opts call options
function Lookup:insert(table_name, row, opts)
  resource.want_string(table_name, "lookup table name")
  resource.want_table(row, "lookup table row")
  local problem
  if type(row.externalId) ~= "string" or row.externalId == "" then
    problem = "lookup table row needs a string externalId"
  else
    for k, v in pairs(row) do
      if type(k) ~= "string" or type(v) ~= "string" then
        problem = ("lookup table values must be strings: %s is a %s"):format(tostring(k), type(v))
        break
      end
    end
  end
  if problem then return resource.invalid(self.client, INSERT_ROW, problem, { tableName = table_name }) end
  local a, b = resource.invoke(self, INSERT_ROW, 2, table_name, row, opts)
  return a, b
end

Lookup = resource.generate("enrichment.lookup_tables", Lookup)
Lookup.__index = Lookup
Lookup.__tostring = function() return "hypatos.enrichment.lookup_tables" end

--- Builds `client.enrichment` for a client.
-- @tparam table client
-- @treturn table `{invoices = …, …, lookup_tables = …}`
return function(client)
  local e = setmetatable({}, { __tostring = function() return "hypatos.enrichment" end })
  for name, class in pairs(CLASSES) do
    e[name] = setmetatable({ client = client, name = name }, class)
  end
  e.lookup_tables = setmetatable({ client = client }, Lookup)
  return e
end
