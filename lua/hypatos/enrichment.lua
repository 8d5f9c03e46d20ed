--- `client.enrichment`: master data for extraction (scopes `enrichment.write`,
-- `enrichment.delete`). One object per record type, each with
--   upsert(record)                      POST   /enrichment/<type>               (keyed by externalId)
--   patch(external_id, changes)         PATCH  /enrichment/<type>/{externalId}  (application/merge-patch+json)
--   delete(external_id [, opts])        DELETE /enrichment/<type>/{externalId}  (opts.line_number → ?lineNumber=)
-- for invoices, companies, suppliers, purchase_orders, gl_accounts,
-- cost_centers, approvers, customers, goods_receipts, contracts, addresses;
-- and `lookup_tables` with insert(table_name, row) and delete(table_name, external_id).
-- Every one of these is safe to retry: inserts are upserts by externalId.
-- @module hypatos.enrichment
local core = require "hypatos.core"
local resource = require "hypatos.resource"

local req = resource.request_opts

--- Record types: Lua name → API path segment, PATCH support, lineNumber support.
local TYPES = {
  invoices = { path = "invoices", patch = true, lines = true },
  companies = { path = "companies", patch = true },
  suppliers = { path = "suppliers", patch = true },
  purchase_orders = { path = "purchase-orders", lines = true },
  gl_accounts = { path = "gl-accounts" },
  cost_centers = { path = "cost-centers" },
  approvers = { path = "approvers" },
  customers = { path = "customers" },
  goods_receipts = { path = "goods-receipts", patch = true },
  contracts = { path = "contracts", patch = true },
  addresses = { path = "addresses" },
}

local PATCHABLE = "invoices, companies, suppliers, goods_receipts, contracts"

local Records = {}

--- Inserts or replaces a record (by its externalId) → `{id}`, meta.
function Records:upsert(record, opts)
  resource.want_table(record, "enrichment record")
  return self.client:request("POST", "/enrichment/" .. self.type.path,
    req(opts, { json = record, idempotent = true }))
end

--- Changes fields of a record with a JSON merge patch (RFC 7396): keys set
-- to hypatos.null are removed, objects merge, arrays replace → `{id}`, meta.
function Records:patch(external_id, changes, opts)
  if not self.type.patch then
    error(("hypatos: enrichment.%s has no patch in the API (only %s)"):format(self.name, PATCHABLE), 2)
  end
  resource.want_table(changes, "enrichment changes")
  return self.client:request("PATCH", "/enrichment/" .. self.type.path .. "/{externalId}",
    req(opts, { params = { externalId = external_id }, json = changes, idempotent = true,
      headers = { ["Content-Type"] = "application/merge-patch+json" } }))
end

--- Marks a record (or, with opts.line_number, one of its lines) deleted → true.
-- @tparam string external_id
-- @tparam[opt] table opts `line_number` (invoices and purchase_orders only) and call options
function Records:delete(external_id, opts)
  local query
  if opts ~= nil and opts.line_number ~= nil then
    if not self.type.lines then
      error(("hypatos: enrichment.%s:delete takes no line_number (only invoices and purchase_orders)")
        :format(self.name), 2)
    end
    query = { lineNumber = tostring(opts.line_number) }
    local rest = {}
    for k, v in pairs(opts) do if k ~= "line_number" then rest[k] = v end end
    opts = rest
  end
  return self.client:request("DELETE", "/enrichment/" .. self.type.path .. "/{externalId}",
    req(opts, { params = { externalId = external_id }, query = query, idempotent = true }))
end

Records.__index = Records
Records.__tostring = function(self) return "hypatos.enrichment." .. self.name end

local Lookup = {}
Lookup.__index = Lookup
Lookup.__tostring = function() return "hypatos.enrichment.lookup_tables" end

--- Inserts or replaces one row of a lookup table → `{id}`, meta.
-- The row is a flat table of strings holding `externalId`; anything else is
-- answered with nil, err (kind "invalid") before sending.
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
  if problem then
    return nil, core.error({ kind = "invalid", message = problem, method = "POST",
      url = self.client:options().base_url .. "/enrichment/lookup-tables/" .. table_name })
  end
  return self.client:request("POST", "/enrichment/lookup-tables/{table}",
    req(opts, { params = { table = table_name }, json = row, idempotent = true }))
end

--- Deletes one row of a lookup table → true.
function Lookup:delete(table_name, external_id, opts)
  resource.want_string(table_name, "lookup table name")
  return self.client:request("DELETE", "/enrichment/lookup-tables/{table}/{externalId}",
    req(opts, { params = { table = table_name, externalId = external_id }, idempotent = true }))
end

--- Builds `client.enrichment` for a client.
return function(client)
  local e = setmetatable({}, { __tostring = function() return "hypatos.enrichment" end })
  for name, t in pairs(TYPES) do
    e[name] = setmetatable({ client = client, name = name, type = t }, Records)
  end
  e.lookup_tables = setmetatable({ client = client }, Lookup)
  return e
end
