-- hypatos_mock.enrichment — master-data enrichment records, upserted by externalId:
--
--   POST   /v2/enrichment/{type}                         enrichment.write  → 200 {id}
--   PATCH  /v2/enrichment/{type}/{externalId}            enrichment.write  merge patch → 200 the whole record
--          (every type but cost-centers; like the 2.51 schemas, the body must hold the
--          path's externalId)
--   DELETE /v2/enrichment/{type}/{externalId}            enrichment.delete → 204
--          (the eleven older types; ?lineNumber= deletes one line of an invoice / purchase order)
--   POST   /v2/enrichment/lookup-tables/{table}          enrichment.write  flat, all strings → 200 {id}
--   DELETE /v2/enrichment/lookup-tables/{table}/{externalId}  enrichment.delete → 204
--
-- Types: invoices, companies, suppliers, purchase-orders, gl-accounts, cost-centers,
-- approvers, customers, goods-receipts, contracts, addresses (2.15 and 2.51), and the
-- 2.51 ones: products, profit-centers, internal-orders, projects (WBS elements),
-- sales-orders, quotes (upsert and patch; no delete is documented for them).
-- Validation failures answer 422 in the FastAPI/pydantic style
-- `{detail: [{loc: ["body", ...], msg, type}, ...]}`, one item per problem; unknown
-- records answer 404 application/problem+json `{title, type, status, detail, instance}`.
-- The field rules below are this mock's own reading of the vendor's schemas: required
-- fields, string patterns, and the JSON type of every known field (strictly: numbers are
-- not accepted where strings are expected). Unknown fields are kept as given.

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local find, format, sort, remove = string.find, string.format, table.sort, table.remove
local tonumber = tonumber

local M = {}

------------------------------------------------------------------ field rules

-- String checks with the regular expression pydantic would name in its message.
local NO_SPACE = { regex = "^\\S+$", test = function(s) return find(s, "^%S+$") ~= nil end }
local NAME = { regex = "^[\\S ]*\\S[\\S ]*$",
  test = function(s) return find(s, "%S") ~= nil and not find(s, "[\t\n\r\v\f]") end }
local CODE = { regex = "^\\S([\\S ]*\\S)?$",
  test = function(s) return find(s, "^%S") ~= nil and find(s, "%S$") ~= nil and not find(s, "[\t\n\r\v\f]") end }
local OBJECT_ID = { regex = "^[0-9a-fA-F]{24}$", test = function(s) return #s == 24 and find(s, "^%x+$") ~= nil end }

local function str(check) return { t = "str", check = check } end
local STR, NUM, BOOL = str(), { t = "num" }, { t = "bool" }
local DATE, EMAIL, MAP = { t = "date" }, { t = "email" }, { t = "map" }
-- ISO code shapes (nullable): country alpha-2, currency alpha-3, language alpha-2.
local COUNTRY = { t = "code", pattern = "^%u%u$", what = "an ISO 3166-1 alpha-2 country code" }
local CURRENCY = { t = "code", pattern = "^%u%u%u$", what = "an ISO 4217 currency code" }
local LANGUAGE = { t = "code", pattern = "^%l%l$", what = "an ISO 639-1 language code" }

local function arr(item, min) return { t = "arr", item = item, min = min } end

-- An object rule from a flat list of name, rule pairs, the required names and an
-- optional whole-object check(value, loc, errors).
local function obj(list, required, check)
  local fields = {}
  for i = 1, #list, 2 do fields[#fields + 1] = { list[i], list[i + 1] } end
  local req = {}
  for _, k in ipairs(required or {}) do req[k] = true end
  return { t = "obj", fields = fields, required = req, check = check }
end

local VAT_ID = obj{ "id", STR, "countryCode", COUNTRY }
local TAX_ID = obj{ "id", STR, "type", STR }
local TEXT = obj{ "text", STR, "language", LANGUAGE }
local PAYMENT_TERMS = obj{ "paymentTermKey", STR, "descriptions", arr(TEXT) }
local ACCOUNT_ASSIGNMENT = obj{
  "externalGlAccountId", STR, "externalCostCenterId", STR, "glAccountCode", STR, "costCenterCode", STR,
  "quantity", NUM, "externalProjectId", STR, "externalOrderId", STR,
}
local TAX_CODE = obj{ "description", STR, "code", STR }
local INVOICE_LINE = obj{
  "externalId", str(NO_SPACE), "externalCompanyId", STR, "accountAssignments", arr(ACCOUNT_ASSIGNMENT),
  "type", STR, "quantity", NUM, "netAmount", NUM, "totalTaxAmount", NUM, "grossAmount", NUM,
  "unitOfMeasure", STR, "unitPrice", NUM, "taxCode", TAX_CODE, "taxJurisdictionCode", STR, "itemText", STR,
  "externalPurchaseOrderId", STR, "purchaseOrderLineNumber", STR, "centralBankIndicator", STR, "customFields", MAP,
}
local WITHHOLDING_TAX = obj{ "key", STR, "baseAmount", NUM, "amount", NUM, "currency", CURRENCY }
local DOCUMENT_REF = obj({ "id", str(OBJECT_ID), "type", str(NO_SPACE) }, { "id" })

-- An invoice names its documents either by documentId or by documents.
local function one_document(v, loc, errs)
  local function given(x) return x ~= nil and x ~= util.null end
  if not given(v.documentId) and not given(v.documents) then
    errs[#errs + 1] = { loc = loc, msg = "one of documentId, documents is required", type = "value_error" }
  end
end

local INVOICE = obj({
  "externalId", str(NO_SPACE), "documentId", str(OBJECT_ID), "documents", arr(DOCUMENT_REF, 1),
  "supplierInvoiceNumber", STR, "invoiceNumber", STR, "externalCompanyId", STR, "externalSupplierId", STR,
  "externalBankAccountId", STR, "fiscalYearLabel", STR, "issuedDate", DATE, "receivedDate", DATE,
  "postingDate", DATE, "isCanceled", BOOL, "relatedInvoice", STR, "currency", CURRENCY,
  "totalNetAmount", NUM, "totalFreightCharges", NUM, "totalOtherCharges", NUM, "totalTaxAmount", NUM,
  "totalGrossAmount", NUM, "paymentTerms", PAYMENT_TERMS, "externalApproverId", STR, "customFields", MAP,
  "headerText", STR, "type", STR, "invoiceLines", arr(INVOICE_LINE, 1), "withholdingTax", arr(WITHHOLDING_TAX),
}, { "externalId", "invoiceLines" }, one_document)

local COMPANY = obj({
  "externalId", str(NO_SPACE), "name", str(NAME), "street", STR, "addressAdditional", STR, "postcode", STR,
  "city", STR, "state", STR, "countryCode", COUNTRY, "vatIds", arr(VAT_ID), "taxIds", arr(TAX_ID),
  "customFields", MAP,
}, { "name", "externalId" })

local DEFAULT_ASSIGNMENT = obj{
  "glAccountCode", STR, "costCenterCode", STR, "externalApproverId", STR, "externalProjectId", STR,
  "externalOrderId", STR,
}
local WITHHOLDING_INFO = obj{ "description", STR, "key", STR }
local SUBSIDIARY = obj{
  "defaultAccountAssignment", DEFAULT_ASSIGNMENT, "externalCompanyId", STR, "paymentTerms", PAYMENT_TERMS,
  "blockedForPosting", BOOL, "blockedForPayment", BOOL, "enabledForAutoPosting", BOOL,
  "defaultGlAccountCode", STR, "withholdingTaxInfo", arr(WITHHOLDING_INFO),
}
local BANK_ACCOUNT = obj({
  "externalId", str(NO_SPACE), "countryCode", COUNTRY, "bankAccountNumber", STR, "bankAccountHolder", STR,
  "iban", STR, "bic", STR, "bankName", STR, "bankStreet", STR, "bankPostcode", STR, "bankCity", STR,
  "isActive", BOOL,
}, { "externalId" })

local SUPPLIER = obj({
  "defaultAccountAssignment", DEFAULT_ASSIGNMENT, "externalId", str(NO_SPACE), "name", str(NAME),
  "street", STR, "addressAdditional", STR, "postcode", STR, "city", STR, "state", STR, "countryCode", COUNTRY,
  "vatIds", arr(VAT_ID), "taxIds", arr(TAX_ID),
  "blockedForPosting", BOOL, "blockedForPayment", BOOL, "defaultGlAccountCode", STR,
  "supplierSubsidiaries", arr(SUBSIDIARY), "supplierBankAccounts", arr(BANK_ACCOUNT), "customFields", MAP,
}, { "name", "externalId" })

local MATERIAL = obj{
  "description", STR, "externalId", str(NO_SPACE), "supplierNumber", STR, "type", STR, "group", STR,
}
local PO_LINE = obj({
  "purchaseOrderLineNumber", STR, "externalCompanyId", STR, "accountAssignments", arr(ACCOUNT_ASSIGNMENT),
  "type", STR, "quantity", NUM, "status", STR, "netAmount", NUM, "totalTaxAmount", NUM, "grossAmount", NUM,
  "unitOfMeasure", STR, "unitPrice", NUM, "taxCode", TAX_CODE, "itemText", STR, "material", MATERIAL,
  "customFields", MAP,
}, { "purchaseOrderLineNumber" })
local PURCHASE_ORDER = obj({
  "externalId", str(NO_SPACE), "createdDate", DATE, "fiscalYearLabel", STR, "language", LANGUAGE,
  "externalCompanyId", STR, "type", STR, "externalSupplierId", STR, "status", STR, "currency", CURRENCY,
  "totalNetAmount", NUM, "totalFreightCharges", NUM, "totalOtherCharges", NUM, "totalTaxAmount", NUM,
  "totalGrossAmount", NUM, "paymentTerms", PAYMENT_TERMS, "customFields", MAP, "purchaseOrderLines", arr(PO_LINE),
}, { "externalId" })

local LABELLED_VALUE = obj{ "value", STR, "labels", arr(TEXT) }
local function ledger_like()
  return obj({
    "externalId", str(NO_SPACE), "code", str(CODE), "companyAssignment", arr(STR), "type", LABELLED_VALUE,
    "category", LABELLED_VALUE, "label", arr(TEXT), "shortLabel", arr(TEXT),
  }, { "externalId", "code" })
end

local APPROVER = obj({
  "externalId", str(NO_SPACE), "companyAssignment", arr(STR), "isActive", BOOL, "firstName", STR,
  "lastName", STR, "email", EMAIL, "phoneNumber", STR,
}, { "externalId" })

local CUSTOMER = obj({
  "externalId", str(NO_SPACE), "name", str(NAME), "street", STR, "addressAdditional", STR, "postcode", STR,
  "city", STR, "countryCode", COUNTRY, "vatIds", arr(VAT_ID), "taxIds", arr(TAX_ID),
  "blockedForPosting", BOOL, "blockedForPayment", BOOL, "customerSubsidiaries", arr(SUBSIDIARY),
  "customerBankAccounts", arr(BANK_ACCOUNT), "customFields", MAP,
}, { "name", "externalId" })

local EXTERNAL_ONLY = obj({ "externalId", str(NO_SPACE) }, { "externalId" })
local WITH_CODE = obj({ "externalId", str(NO_SPACE), "code", str(CODE) }, { "externalId", "code" })
local INTERNAL_ORDER = obj({ "externalId", str(NO_SPACE), "internalOrderCode", str(CODE) },
  { "externalId", "internalOrderCode" })

--- Record types: path segment → rule, whether PATCH and DELETE are offered.
M.TYPES = {
  ["invoices"] = { rule = INVOICE, patch = true, delete = true, lines = "invoiceLines", line_key = "externalId" },
  ["companies"] = { rule = COMPANY, patch = true, delete = true },
  ["suppliers"] = { rule = SUPPLIER, patch = true, delete = true },
  ["purchase-orders"] = { rule = PURCHASE_ORDER, patch = true, delete = true, lines = "purchaseOrderLines",
    line_key = "purchaseOrderLineNumber" },
  ["gl-accounts"] = { rule = ledger_like(), patch = true, delete = true },
  ["cost-centers"] = { rule = ledger_like(), delete = true },
  ["approvers"] = { rule = APPROVER, patch = true, delete = true },
  ["customers"] = { rule = CUSTOMER, patch = true, delete = true },
  ["goods-receipts"] = { rule = EXTERNAL_ONLY, patch = true, delete = true },
  ["contracts"] = { rule = EXTERNAL_ONLY, patch = true, delete = true },
  ["addresses"] = { rule = EXTERNAL_ONLY, patch = true, delete = true },
  ["products"] = { rule = EXTERNAL_ONLY, patch = true },
  ["profit-centers"] = { rule = WITH_CODE, patch = true },
  ["internal-orders"] = { rule = INTERNAL_ORDER, patch = true },
  ["projects"] = { rule = WITH_CODE, patch = true },
  ["sales-orders"] = { rule = EXTERNAL_ONLY, patch = true },
  ["quotes"] = { rule = EXTERNAL_ONLY, patch = true },
}
M.TYPE_NAMES = { "invoices", "companies", "suppliers", "purchase-orders", "gl-accounts", "cost-centers",
                 "approvers", "customers", "goods-receipts", "contracts", "addresses", "products",
                 "profit-centers", "internal-orders", "projects", "sales-orders", "quotes" }

------------------------------------------------------------------ validation

-- `loc` extended by one element.
local function at(loc, key)
  local out = {}
  for i = 1, #loc do out[i] = loc[i] end
  out[#out + 1] = key
  return out
end

local function add(errs, loc, msg, kind, ctx)
  errs[#errs + 1] = { loc = loc, msg = msg, type = kind, ctx = ctx }
end

-- A real calendar date YYYY-MM-DD.
local function valid_date(s)
  local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return false end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m < 1 or m > 12 or d < 1 then return false end
  local days = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  if m == 2 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then return d <= 29 end
  return d <= days[m]
end

-- Check value `v` (not nil, not null) against `rule`, appending problems to `errs`.
local function check(rule, v, loc, errs)
  local t = rule.t
  if t == "str" then
    if type(v) ~= "string" then return add(errs, loc, "str type expected", "type_error.str") end
    local c = rule.check
    if c and not c.test(v) then
      add(errs, loc, 'string does not match regex "' .. c.regex .. '"', "value_error.str.regex", { pattern = c.regex })
    end
  elseif t == "num" then
    if type(v) ~= "number" then add(errs, loc, "value is not a valid float", "type_error.float") end
  elseif t == "bool" then
    if type(v) ~= "boolean" then add(errs, loc, "value could not be parsed to a boolean", "type_error.bool") end
  elseif t == "date" then
    if type(v) ~= "string" or not valid_date(v) then add(errs, loc, "invalid date format", "value_error.date") end
  elseif t == "email" then
    if type(v) ~= "string" or not find(v, "^[^@%s]+@[^@%s]+%.[^@%s]+$") then
      add(errs, loc, "value is not a valid email address", "value_error.email")
    end
  elseif t == "code" then
    if type(v) ~= "string" or not find(v, rule.pattern) then
      add(errs, loc, "value is not " .. rule.what, "type_error.enum")
    end
  elseif t == "map" then
    if not util.is_object(v) then return add(errs, loc, "value is not a valid dict", "type_error.dict") end
    for k, x in pairs(v) do
      if type(x) ~= "string" then add(errs, at(loc, k), "str type expected", "type_error.str") end
    end
  elseif t == "arr" then
    if not util.is_array(v) then return add(errs, loc, "value is not a valid list", "type_error.list") end
    local items = util.items(v)
    if rule.min and #items < rule.min then
      add(errs, loc, "ensure this value has at least " .. rule.min .. " items", "value_error.list.min_items",
        { limit_value = rule.min })
    end
    for i, x in ipairs(items) do
      if x == util.null then
        add(errs, at(loc, i - 1), "none is not an allowed value", "type_error.none.not_allowed")
      else
        check(rule.item, x, at(loc, i - 1), errs)
      end
    end
  elseif t == "obj" then
    if not util.is_object(v) then return add(errs, loc, "value is not a valid dict", "type_error.dict") end
    for _, f in ipairs(rule.fields) do
      local name, sub = f[1], f[2]
      local x = v[name]
      if x == nil then
        if rule.required[name] then add(errs, at(loc, name), "field required", "value_error.missing") end
      elseif x == util.null then
        if rule.required[name] then
          add(errs, at(loc, name), "none is not an allowed value", "type_error.none.not_allowed")
        end
      else
        check(sub, x, at(loc, name), errs)
      end
    end
    if rule.check then rule.check(v, loc, errs) end
  end
end

--- Problems of `body` against the rule of record type `type_name` (empty when valid).
function M.validate(type_name, body)
  local errs = {}
  check(M.TYPES[type_name].rule, body, { "body" }, errs)
  return errs
end

-- A 422 answer for a list of problems.
local function unprocessable(errs)
  for _, e in ipairs(errs) do e.loc = util.array(e.loc) end
  return 422, { detail = errs }
end

-- The request body decoded (empty arrays kept), or nil and a 422 problem list.
local function body_json()
  local text = util.read_body()
  local mt = util.media_type()
  if mt and mt ~= "application/json" and not find(mt, "^application/[%w%.%-]+%+json$") then
    return nil, { { loc = { "body" }, msg = "value is not a valid dict", type = "type_error.dict" } }
  end
  local v, err = util.decode_keep(text)
  if v == nil then
    return nil, { { loc = { "body" }, msg = "Invalid JSON body: " .. tostring(err), type = "value_error.jsondecode" } }
  end
  return v
end

-- The 404 problem+json answer.
local function not_found(req, detail)
  return 404, {
    title = "Not found", type = "about:blank", status = 404, detail = detail,
    instance = req.path:sub(4),
  }, { ["Content-Type"] = "application/problem+json" }
end

------------------------------------------------------------------ storage

state.on_reset(function()
  local stores = {}
  for _, name in ipairs(M.TYPE_NAMES) do stores[name] = { by_ext = {}, count = 0 } end
  state.data.enrichment = stores
  state.data.lookup_tables = {}
end)

-- Insert or replace `record` under its externalId in `store`; returns the record id.
local function upsert(store, record)
  local ext = record.externalId
  local entry = store.by_ext[ext]
  if entry then
    entry.record = record
  else
    entry = { id = util.uuid(), record = record }
    store.by_ext[ext] = entry
    store.count = store.count + 1
  end
  return entry.id
end

local function drop(store, ext)
  store.by_ext[ext] = nil
  store.count = store.count - 1
end

-- Deep copy of decoded JSON.
local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

--- RFC 7396 JSON merge patch: returns the patched value (`target` may be changed).
function M.merge_patch(target, patch)
  if not util.is_object(patch) then return patch end
  if not util.is_object(target) then target = {} end
  for k, v in pairs(patch) do
    if v == util.null then
      target[k] = nil
    else
      target[k] = M.merge_patch(target[k], v)
    end
  end
  return target
end

------------------------------------------------------------------ handlers

-- POST /v2/enrichment/{type}
local function insert_handler(type_name)
  return function()
    local v, errs = body_json()
    if not v then return unprocessable(errs) end
    errs = M.validate(type_name, v)
    if errs[1] then return unprocessable(errs) end
    return 200, { id = upsert(state.data.enrichment[type_name], v) }
  end
end

-- PATCH /v2/enrichment/{type}/{externalId}
local function patch_handler(type_name)
  return function(req, params)
    if util.media_type() ~= "application/merge-patch+json" then
      util.raise(415, "Unsupported media type", "The request body must be sent as application/merge-patch+json")
    end
    local store = state.data.enrichment[type_name]
    local ext = params.externalId
    local entry = store.by_ext[ext]
    if not entry then
      return not_found(req, format("No %s record with externalId '%s' exists", type_name, ext))
    end
    local v, errs = body_json()
    if not v then return unprocessable(errs) end
    if not util.is_object(v) then
      return unprocessable{ { loc = { "body" }, msg = "value is not a valid dict", type = "type_error.dict" } }
    end
    if v.externalId == nil then -- every 2.51 PATCH schema requires it in the body
      return unprocessable{ { loc = { "body", "externalId" }, msg = "field required", type = "value_error.missing" } }
    end
    local result = M.merge_patch(copy(entry.record), v)
    if result.externalId ~= ext then
      return unprocessable{ { loc = { "body", "externalId" }, msg = "externalId cannot be changed by a patch",
                              type = "value_error" } }
    end
    errs = M.validate(type_name, result)
    if errs[1] then return unprocessable(errs) end
    entry.record = result
    return 200, result
  end
end

-- DELETE /v2/enrichment/{type}/{externalId}
local function delete_handler(type_name)
  local spec = M.TYPES[type_name]
  return function(req, params)
    local store = state.data.enrichment[type_name]
    local ext = params.externalId
    local entry = store.by_ext[ext]
    if not entry then
      return not_found(req, format("No %s record with externalId '%s' exists", type_name, ext))
    end
    local line = spec.lines and util.single(req:args().lineNumber)
    if line ~= nil and line ~= "" then
      local lines = entry.record[spec.lines]
      local list = util.is_array(lines) and util.items(lines) or {}
      for i, l in ipairs(list) do
        if type(l) == "table" and l[spec.line_key] == line then
          remove(list, i)
          if list[1] == nil then entry.record[spec.lines] = util.EMPTY_ARRAY end
          return 204
        end
      end
      return not_found(req, format("The %s record '%s' has no line '%s'", type_name, ext, line))
    end
    drop(store, ext)
    return 204
  end
end

--- POST /v2/enrichment/lookup-tables/{tableName}
function M.lookup_insert(_, params)
  local v, errs = body_json()
  if not v then return unprocessable(errs) end
  if not util.is_object(v) then
    return unprocessable{ { loc = { "body" }, msg = "value is not a valid dict", type = "type_error.dict" } }
  end
  errs = {}
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  sort(keys)
  if v.externalId == nil then add(errs, { "body", "externalId" }, "field required", "value_error.missing") end
  for _, k in ipairs(keys) do
    local x = v[k]
    if type(x) ~= "string" then
      add(errs, { "body", k }, "str type expected", "type_error.str")
    elseif k == "externalId" and not NO_SPACE.test(x) then
      add(errs, { "body", k }, 'string does not match regex "' .. NO_SPACE.regex .. '"', "value_error.str.regex",
        { pattern = NO_SPACE.regex })
    end
  end
  if errs[1] then return unprocessable(errs) end
  local tables = state.data.lookup_tables
  local store = tables[params.tableName]
  if not store then
    store = { by_ext = {}, count = 0 }
    tables[params.tableName] = store
  end
  return 200, { id = upsert(store, v) }
end

--- DELETE /v2/enrichment/lookup-tables/{tableName}/{externalId}
function M.lookup_delete(req, params)
  local store = state.data.lookup_tables[params.tableName]
  local ext = params.externalId
  if not store or not store.by_ext[ext] then
    return not_found(req, format("No row with externalId '%s' exists in lookup table '%s'", ext, params.tableName))
  end
  drop(store, ext)
  return 204
end

------------------------------------------------------------------ control API

--- GET /_mock/enrichment[/...] (see control.lua). `segments` are the decoded path
-- segments after /_mock/enrichment. Returns status, body, headers: the stored record as
-- it was sent (after patches), its id in the X-Mock-Id header.
function M.control(segments)
  local data = state.data
  if #segments == 0 then
    local out = {}
    for _, name in ipairs(M.TYPE_NAMES) do out[name] = data.enrichment[name].count end
    local tables = {}
    for name, store in pairs(data.lookup_tables) do tables[name] = store.count end
    out["lookup-tables"] = tables
    return 200, out
  end
  local store, ext
  if segments[1] == "lookup-tables" and #segments == 3 then
    store, ext = data.lookup_tables[segments[2]], segments[3]
  elseif #segments == 2 and data.enrichment[segments[1]] then
    store, ext = data.enrichment[segments[1]], segments[2]
  else
    return 404, util.problem(404, "Not found", "No such enrichment control path")
  end
  local entry = store and store.by_ext[ext]
  if not entry then return 404, util.problem(404, "Not found", "No such enrichment record") end
  return 200, entry.record, { ["X-Mock-Id"] = entry.id }
end

--- Register the enrichment routes.
function M.register(r)
  local write, delete = { scope = "enrichment.write" }, { scope = "enrichment.delete" }
  r:add("POST", "/v2/enrichment/lookup-tables/{tableName}", M.lookup_insert, write)
  r:add("DELETE", "/v2/enrichment/lookup-tables/{tableName}/{externalId}", M.lookup_delete, delete)
  for _, name in ipairs(M.TYPE_NAMES) do
    local spec = M.TYPES[name]
    r:add("POST", "/v2/enrichment/" .. name, insert_handler(name), write)
    if spec.delete then r:add("DELETE", "/v2/enrichment/" .. name .. "/{externalId}", delete_handler(name), delete) end
    if spec.patch then r:add("PATCH", "/v2/enrichment/" .. name .. "/{externalId}", patch_handler(name), write) end
  end
end

return M
