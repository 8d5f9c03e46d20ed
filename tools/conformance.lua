-- tools/conformance.lua — the two checks behind `make conformance` (driven by tools/conformance.sh).
--
--   lua5.4 tools/conformance.lua coverage DOC   every operationId of the OpenAPI document DOC beside
--                                              the method that covers it (lua/hypatos/operations.lua);
--                                              fails if one is uncovered, if operations.lua names an
--                                              operationId DOC lacks, or if the two disagree on the
--                                              HTTP operation
--   lua5.4 tools/conformance.lua run URL DOC    calls every method that has an operationId against the
--                                              Prism mock server at URL serving DOC (request validation
--                                              on); fails if Prism rejects a request, if a call sends
--                                              another HTTP operation or a query parameter DOC does not
--                                              declare for it (Prism lets those through), or if Prism
--                                              fails to reject the known-bad control calls
--
-- Needs LUA_PATH/LUA_CPATH as the Makefile sets them (lua/ and build/5.4/). Exit status: 0 all
-- good, 1 a check failed, 2 usage or an unreadable document.

local operations = require "hypatos.operations"

local function die(msg)
  io.stderr:write("conformance: ", msg, "\n")
  os.exit(2)
end

-- The operations of operations.lua that the 2.15 document covers, in their order.
local function covered_ops()
  local list = {}
  for _, o in ipairs(operations) do
    if o.operation_id then list[#list + 1] = o end
  end
  return list
end

------------------------------------------------------------------ coverage

-- Reads the document's operations with a line scan (no YAML library: lyaml is for Lua 5.1 only;
-- the vendor's document is machine-written with two-space indentation). Paths are the keys at
-- indent 2 under `paths:`, methods the keys at indent 4 below a path, every `operationId:` belongs
-- to the method above it. The `parameters:` lists of a path or a method give the names of the
-- declared query parameters (`in: query` items, and `$ref`s to `components: parameters:`).
-- Returns a list of {operation_id, method, path, line, query = {name = true, …}}.
local METHODS = { get = true, put = true, post = true, delete = true, options = true, head = true, patch = true,
  trace = true }

local function unquote(v) return (v:gsub("^['\"](.*)['\"]$", "%1")) end

local function document_ops(doc)
  local f, err = io.open(doc, "r")
  if not f then die("cannot read " .. doc .. ": " .. tostring(err)) end
  local ops, params, components = {}, {}, {}   -- params["GET /x"] / params["/x"] = {items}
  local section, path, method, block, item, comp = nil, nil, nil, nil, nil, nil
  local function close_item()
    if item and block then block.list[#block.list + 1] = item end
    item = nil
  end
  local n = 0
  for line in f:lines() do
    n = n + 1
    local indent = #line:match("^ *")
    local blank = line:match("^%s*$") or line:match("^%s*#")
    if not blank then
      -- leaving a parameters list
      if block and (indent < block.item_indent or (indent == block.item_indent and not line:match("^%s*%- "))) then
        close_item()
        block = nil
      end
      if indent == 0 then
        section, path, method, comp = line:match("^([%w_]+):"), nil, nil, nil
      elseif section == "paths" then
        if indent == 2 then
          path, method = line:match("^  (/%S*):%s*$"), nil
        elseif indent == 4 and path then
          local m = line:match("^    (%a+):%s*$")
          method = m and METHODS[m] and m:upper() or nil
          if line:match("^    parameters:%s*$") then
            block = { list = {}, item_indent = 6 }
            params[path] = block.list
          end
        elseif indent == 6 and path and method and line:match("^      parameters:%s*$") then
          block = { list = {}, item_indent = 8 }
          params[method .. " " .. path] = block.list
        elseif block then
          -- an item starts with "- key: value" at item_indent; its keys sit at item_indent + 2
          local dash, key, value = line:match("^(%s*%- )([%w_$]+):%s*(.-)%s*$")
          if dash and #dash == block.item_indent + 2 then
            close_item()
            item = {}
          else
            key, value = line:match("^%s*([%w_$]+):%s*(.-)%s*$")
            if indent ~= block.item_indent + 2 then key = nil end
          end
          if item and key then item[key] = unquote(value) end
        end
      elseif section == "components" then
        if indent == 2 then
          comp = line:match("^  parameters:%s*$") and {} or nil
          if comp then components.parameters = comp end
        elseif comp and indent == 4 then
          local name = line:match("^    ([%w_.%-]+):%s*$")
          comp.current = name and {} or nil
          if name then comp[name] = comp.current end
        elseif comp and comp.current and indent == 6 then
          local key, value = line:match("^      ([%w_$]+):%s*(.-)%s*$")
          if key then comp.current[key] = unquote(value) end
        end
      end
    end
    local id = line:match("^%s+operationId:%s*['\"]?([%w_%-%.]+)['\"]?%s*$")
    if id then
      ops[#ops + 1] = { operation_id = id, method = method or "?", path = path or "?", line = n }
    end
  end
  close_item()
  f:close()
  if #ops == 0 then die(doc .. " holds no operationId: is it an OpenAPI document?") end
  local cparams = components.parameters or {}
  for _, o in ipairs(ops) do
    o.query = {}
    for _, list in ipairs({ params[o.path] or {}, params[o.method .. " " .. o.path] or {} }) do
      for _, p in ipairs(list) do
        local ref = p["$ref"] and p["$ref"]:match("^#/components/parameters/(.+)$")
        if ref then p = cparams[ref] or {} end
        if p["in"] == "query" and p.name then o.query[p.name] = true end
      end
    end
  end
  return ops
end

local function coverage(doc)
  local dops = document_ops(doc)
  local by_id, problems = {}, {}
  for _, o in ipairs(operations) do
    if o.operation_id then
      if by_id[o.operation_id] then
        problems[#problems + 1] = ("operations.lua names %s twice (%s, %s)")
          :format(o.operation_id, by_id[o.operation_id].call, o.call)
      end
      by_id[o.operation_id] = o
    end
  end
  local width, owidth = 0, 0
  for _, d in ipairs(dops) do
    width = math.max(width, #d.operation_id)
    owidth = math.max(owidth, #d.method + 1 + #d.path)
  end
  local fmt = "  %-" .. width .. "s  %-" .. owidth .. "s  %s"
  print(("coverage: %d operationIds in %s"):format(#dops, doc))
  local in_doc, uncovered = {}, 0
  for _, d in ipairs(dops) do
    local op = d.method .. " " .. d.path
    local o = by_id[d.operation_id]
    if in_doc[d.operation_id] then
      problems[#problems + 1] = ("the document has operationId %s twice (line %d)"):format(d.operation_id, d.line)
    end
    in_doc[d.operation_id] = true
    if not o then
      uncovered = uncovered + 1
      print(fmt:format(d.operation_id, op, "UNCOVERED"))
    else
      print(fmt:format(d.operation_id, op, o.call))
      if o.method ~= d.method or o.path ~= d.path then
        problems[#problems + 1] = ("%s is %s in the document but %s %s for %s in operations.lua")
          :format(d.operation_id, op, o.method, o.path, o.call)
      end
    end
  end
  if uncovered > 0 then
    problems[#problems + 1] = ("%d operationId(s) of the document have no method"):format(uncovered)
  end
  for _, o in ipairs(operations) do
    if o.operation_id and not in_doc[o.operation_id] then
      problems[#problems + 1] = ("operations.lua names %s for %s, the document has no such operationId")
        :format(o.operation_id, o.call)
    end
  end
  for _, p in ipairs(problems) do print("  PROBLEM  " .. p) end
  print(("coverage: %d operationIds, %d covered, %d uncovered, %d problem(s)")
    :format(#dops, #dops - uncovered, uncovered, #problems))
  return #problems == 0
end

------------------------------------------------------------------ run

-- Realistic ids (24-hex ObjectIds for documents, projects, companies, users; files are UUIDs).
local DOC_ID = "6295dcd39db1ab740c3e296c"
local PROJECT_ID = "63e6663823b4c1f5287398bb"
local OTHER_PROJECT_ID = "64a1f0c2b7e4d93a5c0e1f27"
local COMPANY_ID = "63e6663823b4c1f5287398bc"
local MODEL_ID = "63e6663823b4c1f5287398bd"
local USER_IDS = { "6295dcd39db1ab740c3e2970", "6295dcd39db1ab740c3e2971" }
local FILE_ID = "5349b4dd-d278-41d0-8c09-890f4a1b2c3d"

-- A small but well-formed PDF.
local PDF = table.concat({
  "%PDF-1.4",
  "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj",
  "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj",
  "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj",
  "trailer << /Root 1 0 R >>",
  "%%EOF", "",
}, "\n")

local function en(text) return { { text = text, language = "en" } } end

-- One call per method of operations.lua that has an operationId, keyed by its `call` text.
local SAMPLES = {
  ["client:token()"] = function(c) return c:token() end,

  ["companies:get(id)"] = function(c) return c.companies:get(COMPANY_ID) end,
  ["companies:list(query)"] = function(c) return c.companies:list() end,

  ["files:upload(opts)"] = function(c)
    return c.files:upload{ data = PDF, filename = "invoice-2024-0042.pdf" }
  end,
  ["files:download(id, opts)"] = function(c) return c.files:download(FILE_ID) end,

  ["documents:get(id)"] = function(c) return c.documents:get(DOC_ID) end,
  ["documents:list(query)"] = function(c)
    return c.documents:list{ projectId = { PROJECT_ID, OTHER_PROJECT_ID }, state = { "done", "doneAutomatically" },
      sort = "-updatedAt", limit = 50, offset = 100 }
  end,
  ["documents:states(id)"] = function(c) return c.documents:states(DOC_ID) end,
  ["documents:process_file(body)"] = function(c)
    return c.documents:process_file{ fileId = FILE_ID, projectId = PROJECT_ID, externalId = "SAP-5100000123",
      externalData = { erpSystem = "sap-01", batch = "2024-05-17" } }
  end,
  ["documents:transfer(id, body)"] = function(c)
    return c.documents:transfer(DOC_ID, { successful = false, message = "Upload failed: ERP not reachable" })
  end,
  ["documents:set_external_data(id, map)"] = function(c)
    return c.documents:set_external_data(DOC_ID, { erpSystem = "sap-01", postingKey = "31" })
  end,
  ["documents:set_external_id(id, text)"] = function(c)
    return c.documents:set_external_id(DOC_ID, "15b884b0-d551-4865-bda9-4168800c9d87")
  end,
  ["documents:set_title(id, text)"] = function(c)
    return c.documents:set_title(DOC_ID, "Invoice 2024-0042 (Acme Corp.)")
  end,

  ["projects:get(id)"] = function(c) return c.projects:get(PROJECT_ID) end,
  ["projects:list(query)"] = function(c)
    return c.projects:list{ search = "Invoices", sort = "+createdAt", limit = 50, offset = 0 }
  end,
  ["projects:create(body)"] = function(c)
    return c.projects:create{
      name = "Invoices DE", note = "Incoming supplier invoices, Germany",
      ocr = { engine = "abbyy", features = { "barcodes" }, languages = { "German", "English" } },
      extractionModelId = MODEL_ID, completion = "manual", duplicates = "fail",
      members = { allow = "members", members = USER_IDS },
    }
  end,
  ["projects:schema(id)"] = function(c) return c.projects:schema(PROJECT_ID) end,

  ["emails:content(document_id, opts)"] = function(c) return c.emails:content(DOC_ID) end,

  ["enrichment.invoices:upsert(record)"] = function(c)
    return c.enrichment.invoices:upsert{
      externalId = "SUPPLIER_INVOICE-2024-0042", documentId = DOC_ID,
      supplierInvoiceNumber = "RE-10000001", invoiceNumber = "12345", externalCompanyId = "DE01",
      externalSupplierId = "0000100000", fiscalYearLabel = "2024", issuedDate = "2024-05-02",
      receivedDate = "2024-05-06", postingDate = "2024-05-07", isCanceled = false, currency = "EUR",
      totalNetAmount = 81, totalFreightCharges = 9, totalOtherCharges = 10, totalTaxAmount = 19,
      totalGrossAmount = 119, externalApproverId = "UserID#1234", type = "FI",
      paymentTerms = { paymentTermKey = "T10", descriptions = en("10 days net") },
      customFields = { costObject = "K-100" },
      invoiceLines = {
        { externalId = "00000001", externalCompanyId = "DE01", type = "Service", quantity = 2,
          netAmount = 81, totalTaxAmount = 19, grossAmount = 100.01, unitOfMeasure = "h", unitPrice = 40.5,
          taxCode = { code = "DEU_Standard", description = "DEU - Standard (19%)" },
          itemText = "Consulting", externalPurchaseOrderId = "4500016221", purchaseOrderLineNumber = "00010",
          accountAssignments = { { glAccountCode = "GL1", costCenterCode = "CO1", quantity = 2, netAmount = 81 } } },
      },
      withholdingTax = { { key = "WHT-432", baseAmount = 81, amount = 2.43, currency = "EUR" } },
    }
  end,
  ["enrichment.invoices:delete(external_id, opts)"] = function(c)
    return c.enrichment.invoices:delete("SUPPLIER_INVOICE-2024-0042", { line_number = "00000001" })
  end,
  ["enrichment.companies:upsert(record)"] = function(c)
    return c.enrichment.companies:upsert{
      externalId = "DE01", name = "Acme Deutschland GmbH", street = "Hauptstr. 1", postcode = "10115",
      city = "Berlin", state = "Berlin", countryCode = "DE",
      vatIds = { { id = "DE123456789", countryCode = "DE" } }, taxIds = { { id = "27/123/45678", type = "StNr" } },
    }
  end,
  ["enrichment.companies:delete(external_id)"] = function(c) return c.enrichment.companies:delete("DE01") end,
  ["enrichment.suppliers:upsert(record)"] = function(c)
    return c.enrichment.suppliers:upsert{
      externalId = "0000100000", name = "Cement & Co. KG", street = "Industriestr. 7", postcode = "80331",
      city = "München", countryCode = "DE", vatIds = { { id = "DE987654321", countryCode = "DE" } },
      blockedForPosting = false, blockedForPayment = false,
      defaultAccountAssignment = { glAccountCode = "GL1", costCenterCode = "CO1" },
      supplierSubsidiaries = {
        { externalCompanyId = "DE01", blockedForPosting = false, enabledForAutoPosting = true,
          paymentTerms = { paymentTermKey = "T10", descriptions = en("10 days net") },
          withholdingTaxInfo = { { key = "WHT-432", description = "Construction withholding tax" } } },
      },
      supplierBankAccounts = {
        { externalId = "12341234", countryCode = "DE", iban = "DE91100000000123456789", bic = "MARKDEF1100",
          bankAccountHolder = "Cement & Co. KG", bankName = "Deutsche Bundesbank", isActive = true },
      },
    }
  end,
  ["enrichment.suppliers:delete(external_id)"] = function(c) return c.enrichment.suppliers:delete("0000100000") end,
  ["enrichment.purchase_orders:upsert(record)"] = function(c)
    return c.enrichment.purchase_orders:upsert{
      externalId = "4500016221", createdDate = "2024-04-15", fiscalYearLabel = "2024", language = "de",
      externalCompanyId = "DE01", externalSupplierId = "0000100000", type = "Service", status = "OPEN",
      currency = "EUR", totalNetAmount = 81, totalTaxAmount = 19, totalGrossAmount = 100,
      purchaseOrderLines = {
        { purchaseOrderLineNumber = "00010", quantity = 2, unitPrice = 40.5, netAmount = 81, unitOfMeasure = "h",
          itemText = "Consulting", status = "OPEN", taxCode = { code = "DEU_Standard" },
          material = { externalId = "MAT-100", description = "Consulting hour" } },
      },
    }
  end,
  ["enrichment.purchase_orders:delete(external_id, opts)"] = function(c)
    return c.enrichment.purchase_orders:delete("4500016221", { line_number = "00010" })
  end,
  ["enrichment.gl_accounts:upsert(record)"] = function(c)
    return c.enrichment.gl_accounts:upsert{
      externalId = "0000100GL1", code = "GL1", companyAssignment = { "DE01", "US01" },
      type = { value = "OE", labels = en("Operating expenses") }, label = en("Entertainment Expenses"),
      shortLabel = en("Entertainment Exp."),
    }
  end,
  ["enrichment.gl_accounts:delete(external_id)"] = function(c) return c.enrichment.gl_accounts:delete("0000100GL1") end,
  ["enrichment.cost_centers:upsert(record)"] = function(c)
    return c.enrichment.cost_centers:upsert{
      externalId = "0000100CO1", code = "CO1", companyAssignment = { "DE01" },
      category = { value = "S", labels = en("Sales") }, label = en("Sales Engineers"), shortLabel = en("Sales Eng."),
    }
  end,
  ["enrichment.cost_centers:delete(external_id)"] = function(c)
    return c.enrichment.cost_centers:delete("0000100CO1")
  end,
  ["enrichment.approvers:upsert(record)"] = function(c)
    return c.enrichment.approvers:upsert{
      externalId = "UserID#1234", companyAssignment = { "DE01" }, isActive = true, firstName = "Koala",
      lastName = "Hinze", email = "accountant@example.com", phoneNumber = "491001234567891",
    }
  end,
  ["enrichment.approvers:delete(external_id)"] = function(c) return c.enrichment.approvers:delete("UserID#1234") end,
  ["enrichment.customers:upsert(record)"] = function(c)
    return c.enrichment.customers:upsert{
      externalId = "0000200000", name = "Rabbit Hole Sealing Ltd", street = "1 Burrow Lane", postcode = "OX1 1AA",
      city = "Oxford", countryCode = "GB", vatIds = { { id = "GB123456789", countryCode = "GB" } },
      blockedForPosting = false,
    }
  end,
  ["enrichment.customers:delete(external_id)"] = function(c) return c.enrichment.customers:delete("0000200000") end,
}

-- More calls for some methods: other code paths of the client (streamed bodies, the pager,
-- optional arguments left out, the other shape of a request body). Each gets a line of its own.
-- `ctx.client(opts)` makes another client (same hooks), `ctx.tmp` is a temporary path prefix.
local VARIANTS = {
  ["client:token()"] = {
    { "with a scope parameter", function(_, ctx)
      local other = ctx.client{ scope = { "documents.read", "documents.write", "files.write" } }
      local token, err = other:token()
      other:close()
      return token, err
    end },
  },
  ["files:upload(opts)"] = {
    { "streamed from disk, TIFF, name outside Latin-1", function(c, ctx)
      local path = ctx.tmp .. "-scan.tif"
      local f = assert(io.open(path, "wb"))
      f:write("II*\0", string.rep("\0", 4096))
      f:close()
      local value, meta = c.files:upload{ path = path, filename = "Счёт 2024-0042.tif" }
      os.remove(path)
      return value, meta
    end },
  },
  ["files:download(id, opts)"] = {
    { "streamed to disk", function(c, ctx)
      local path = ctx.tmp .. "-download.pdf"
      local value, meta = c.files:download(FILE_ID, { path = path })
      os.remove(path)
      return value, meta
    end },
  },
  ["emails:content(document_id, opts)"] = {
    { "streamed to disk", function(c, ctx)
      local path = ctx.tmp .. "-email.pdf"
      local value, meta = c.emails:content(DOC_ID, { path = path })
      os.remove(path)
      return value, meta
    end },
  },
  ["documents:list(query)"] = {
    { "first page of pages{fileId}", function(c) return c.documents:pages{ fileId = FILE_ID }:next() end },
  },
  ["projects:list(query)"] = {
    { "first page of pages()", function(c) return c.projects:pages():next() end },
  },
  ["documents:transfer(id, body)"] = {
    { "successful, no message", function(c) return c.documents:transfer(DOC_ID, { successful = true }) end },
  },
  ["documents:set_external_data(id, map)"] = {
    { "{} clears it", function(c) return c.documents:set_external_data(DOC_ID, {}) end },
  },
  ["projects:create(body)"] = {
    { "Google OCR, all members", function(c)
      return c.projects:create{ name = "Receipts", extractionModelId = MODEL_ID,
        ocr = { engine = "google", features = { "plainText" } }, members = { allow = "all" } }
    end },
  },
  ["enrichment.invoices:upsert(record)"] = {
    { "documents[] instead of documentId", function(c)
      return c.enrichment.invoices:upsert{ externalId = "SUPPLIER_INVOICE-2024-0043",
        documents = { { id = DOC_ID, type = "invoice" } },
        invoiceLines = { { externalId = "00000001", netAmount = 10.5, quantity = 1 } } }
    end },
  },
  ["enrichment.invoices:delete(external_id, opts)"] = {
    { "whole invoice", function(c) return c.enrichment.invoices:delete("SUPPLIER_INVOICE-2024-0042") end },
  },
  ["enrichment.purchase_orders:delete(external_id, opts)"] = {
    { "whole purchase order", function(c) return c.enrichment.purchase_orders:delete("4500016221") end },
  },
}

-- Known-bad calls: Prism must reject each, or the check would be toothless (a schema Prism cannot
-- compile is silently not validated at all: see tools/conformance.sh).
local CONTROLS = {
  { "invoice without invoiceLines", "POST /enrichment/invoices", function(c)
    return c.enrichment.invoices:upsert{ externalId = "SUPPLIER_INVOICE-2024-0042", currency = "EUR" }
  end },
  { "supplier with an unknown country code", "POST /enrichment/suppliers", function(c)
    return c.enrichment.suppliers:upsert{ externalId = "0000100000", name = "Cement & Co. KG", countryCode = "XX" }
  end },
  { "document list with an unknown state", "GET /documents", function(c)
    return c.documents:list{ state = { "done", "archived" } }
  end },
  { "project without ocr and members", "POST /projects", function(c)
    return c.projects:create{ name = "Invoices DE", extractionModelId = MODEL_ID }
  end },
}

-- A Lua pattern matching the URL path of operations.lua's path template ("{id}" → one segment).
local function path_pattern(path)
  local p = path:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("{[^}]*}", "[^/]+")
  return "^" .. p .. "$"
end

local function decode(json, s)
  local ok, v = pcall(json.decode, s)
  if ok then return v end
  return nil
end

local function violation_text(x)
  local where = type(x.location) == "table" and table.concat(x.location, ".") or "?"
  local message = tostring(x.message)
  if (utf8.len(message) or 0) > 160 then   -- e.g. the 250 country codes of an enum
    message = message:sub(1, utf8.offset(message, 151) - 1) .. " …"
  end
  return ("%s: %s"):format(where, message)
end

-- Prism's verdict on one answered attempt (`a` = on_response's {status, headers}; `body` = the
-- decoded answer when the client kept it). Returns the list of reasons the request was rejected
-- (empty: accepted) and the number of violations Prism found in its own (example) response.
--   * `sl-violations` header: a JSON list of {location, severity, code, message}; an Error whose
--     location starts with "request" is a rejection, "response…" entries are the document's
--     examples failing the document's own schemas (Prism validates its answers too);
--   * Content-Type application/problem+json: an answer Prism made up itself (the document declares
--     none): type https://stoplight.io/prism/errors#CODE (UNPROCESSABLE_ENTITY with a
--     `validation` list, UNAUTHORIZED, NOT_ACCEPTABLE, NO_PATH_MATCHED_ERROR, …); only
--     VIOLATIONS with nothing but response violations is not about the request;
--   * 401: Prism's answer to a request that does not meet the operation's security requirement.
local function verdict(json, a, body)
  local reasons, response_violations = {}, 0
  local h = a.headers or {}
  if h["sl-violations"] then
    local list = decode(json, h["sl-violations"])
    if type(list) ~= "table" then
      reasons[#reasons + 1] = "unreadable sl-violations header: " .. h["sl-violations"]
    else
      for _, x in ipairs(list) do
        local t = violation_text(x)
        if t:match("^response") then
          response_violations = response_violations + 1
        elseif x.severity == "Error" then
          reasons[#reasons + 1] = t
        end
      end
    end
  end
  local ctype = (h["content-type"] or ""):lower()
  if ctype:find("application/problem+json", 1, true) then
    if type(body) == "string" then body = decode(json, body) end
    local code = type(body) == "table" and type(body.type) == "string"
      and body.type:match("stoplight%.io/prism/errors#(.+)$")
    if code ~= "VIOLATIONS" or #reasons > 0 or response_violations == 0 then
      local text = code and ("Prism %s: %s"):format(code, tostring(body.title))
        or ("Prism error (problem+json, HTTP %s)"):format(tostring(a.status))
      local details = {}
      if type(body) == "table" and type(body.validation) == "table" then
        for _, x in ipairs(body.validation) do details[#details + 1] = violation_text(x) end
      end
      if #details > 0 then text = text .. " — " .. table.concat(details, "; ") end
      table.insert(reasons, 1, text)
    end
  end
  if a.status == 401 and #reasons == 0 then
    reasons[1] = "401: the security requirement is not met"
  end
  return reasons, response_violations
end

-- Calls `fn(client)` and judges it. Returns status ("ok", "REJECTED", "FAILED") and a note.
-- `expect` = {method, path template, query = declared query parameter names or nil}: the HTTP
-- operation the call must send.
local function judge(client, json, log, fn, expect, ctx)
  log.sent, log.answered = {}, {}
  local ok, value, meta = pcall(fn, client, ctx)
  if not ok then return "FAILED", "raised: " .. tostring(value) end
  local err = value == nil and meta or nil
  local answered = log.answered
  local response_violations = 0
  for i, a in ipairs(answered) do
    if a.status then
      local reasons, rv = verdict(json, a, i == #answered and err and err.body or nil)
      response_violations = response_violations + rv
      if #reasons > 0 then
        return "REJECTED", ("HTTP %s: %s"):format(tostring(a.status), table.concat(reasons, "; "))
      end
    end
  end
  if err and err.kind ~= "http" then return "FAILED", tostring(err) end
  local last = log.sent[#log.sent]
  local path = last and last.url:sub(#log.base + 1):gsub("[?#].*$", "")
  if not last or last.method ~= expect[1] or not path:match(path_pattern(expect[2])) then
    return "FAILED", ("sent %s, expected %s %s"):format(last and (last.method .. " " .. last.url) or "nothing",
      expect[1], expect[2])
  end
  -- Prism lets unknown query parameters through: check them against the document here
  if expect.query then
    local undeclared = {}
    for key in (last.url:match("%?([^#]*)") or ""):gmatch("([^&=]+)=?[^&]*") do
      key = key:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
      if not expect.query[key] and not undeclared[key] then
        undeclared[key] = true
        undeclared[#undeclared + 1] = key
      end
    end
    if #undeclared > 0 then
      return "FAILED", ("sends query parameter(s) the document does not declare for this operation: %s (%s)")
        :format(table.concat(undeclared, ", "), last.url)
    end
  end
  local status = answered[#answered] and answered[#answered].status
  local note = "→ " .. tostring(status)
  if response_violations > 0 then
    note = note .. (": request valid; Prism's answer (the document's example) breaks the document's schema"
      .. " (%d violation%s)"):format(response_violations, response_violations == 1 and "" or "s")
  elseif err then
    note = note .. ": one of the document's error answers, no request violation"
  end
  return "ok", note
end

local function run(url, doc)
  local declared = {}
  for _, d in ipairs(document_ops(doc)) do declared[d.operation_id] = d.query end
  local hypatos = require "hypatos"
  local json = hypatos.json
  local log = { base = url, sent = {}, answered = {} }
  local function new_client(extra)
    local opts = {
      base_url = url, client_id = "conformance-client", client_secret = "conformance-secret",
      max_retries = 0, timeout = 5, throttle = false,   -- Prism answers in milliseconds
      on_request = function(info) log.sent[#log.sent + 1] = info end,
      on_response = function(info) log.answered[#log.answered + 1] = info end,
    }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return hypatos.new(opts)
  end
  local client = new_client()
  local tmp = os.tmpname()   -- a prefix for the streamed files (the empty file itself goes at the end)
  local ctx = { client = new_client, tmp = tmp }
  local ops = covered_ops()
  local wcall, wop, nvariants = 0, 0, 0
  for _, o in ipairs(ops) do
    wcall = math.max(wcall, #o.call)
    wop = math.max(wop, #o.method + 1 + #o.path)
    for _, v in ipairs(VARIANTS[o.call] or {}) do
      wcall = math.max(wcall, #v[1] + 4)
      nvariants = nvariants + 1
    end
  end
  local fmt = "%-8s  %-" .. wcall .. "s  %-" .. (wop + 1) .. "s %s"
  print(("run: %d methods (and %d more calls of them) against Prism at %s"):format(#ops, nvariants, url))
  local calls, rejected, failed = 0, 0, 0
  local function report(status, call, op, note)
    calls = calls + 1
    if status == "REJECTED" then rejected = rejected + 1 elseif status == "FAILED" then failed = failed + 1 end
    print(fmt:format(status, call, op .. (status == "ok" and " " or ":"), note))
  end
  for _, o in ipairs(ops) do
    local expect = { o.method, o.path, query = declared[o.operation_id] or {} }
    local op = o.method .. " " .. o.path
    if SAMPLES[o.call] then
      local status, note = judge(client, json, log, SAMPLES[o.call], expect, ctx)
      report(status, o.call, op, note)
    else
      report("FAILED", o.call, op, "no sample call for this method in tools/conformance.lua")
    end
    for _, v in ipairs(VARIANTS[o.call] or {}) do
      local status, note = judge(client, json, log, v[2], expect, ctx)
      report(status, "  + " .. v[1], op, note)
    end
  end
  -- the controls: each must be rejected
  local toothless = 0
  for _, c in ipairs(CONTROLS) do
    local method, path = c[2]:match("^(%S+) (%S+)$")
    local status, note = judge(client, json, log, c[3], { method, path }, ctx)
    if status == "REJECTED" then
      print(("control   %s (%s): rejected as it must be: %s"):format(c[1], c[2], note))
    else
      toothless = toothless + 1
      print(("CONTROL   %s (%s): NOT rejected (%s %s): Prism does not validate this request")
        :format(c[1], c[2], status, note))
    end
  end
  client:close()
  os.remove(tmp)
  print(("run: %d calls of %d methods: %d accepted, %d rejected by Prism, %d failed otherwise; %d/%d controls rejected")
    :format(calls, #ops, calls - rejected - failed, rejected, failed, #CONTROLS - toothless, #CONTROLS))
  return rejected == 0 and failed == 0 and toothless == 0
end

------------------------------------------------------------------ main

local mode, target = arg[1], arg[2]
if mode == "coverage" and target then
  os.exit(coverage(target) and 0 or 1)
elseif mode == "run" and target and arg[3] then
  os.exit(run(target, arg[3]) and 0 or 1)
else
  die("usage: lua5.4 tools/conformance.lua coverage DOC | run URL DOC")
end
