-- hypatos_mock.seed — deterministic seed data for the fake Hypatos server.
--
-- Everything is computed from the record index, so every server instance (and every
-- reset) produces byte-identical data. Pure Lua: no ngx API, so it also loads on
-- Lua 5.4 (`require "mock.lua.hypatos_mock.seed"`) for tests that want the facts.
--
-- Facts clients may rely on: 3 companies (the first is the tenant), 57 users of which
-- every fifth (index 5, 10, ..., 55) is inactive (11 inactive, 46 active), users with
-- index 1, 20 and 39 are internal Hypatos staff (`isInternal = true`, @hypatos.ai).
-- 4 projects (the second one, "Supplier Invoices EU (touchless)", completes
-- automatically), 26 files (one per document plus an unattached XML e-invoice) and 25
-- documents, all in a terminal state, with extracted entities; GET /_mock/seed lists them.

local format, lower, floor, concat = string.format, string.lower, math.floor, table.concat

local M = {}

M.ROLES = { "installationAdmin", "installationClerk", "admin", "clerk", "manager", "supportSpecialist" }

M.USER_COUNT = 57

-- Companies: {name, mail domain, active, creation time (epoch seconds)}.
local COMPANIES = {
  { "Hypatos Demo GmbH", "hypatos-demo.example", true, 1676043832 },
  { "Nordlicht Logistik AG", "nordlicht-logistik.example", true, 1678271455 },
  { "Acme Supplies Ltd", "acme-supplies.example", false, 1684158020 },
}

-- Given names and family names: {display form, ASCII form for the e-mail address}.
local FIRST = {
  { "Anna", "anna" }, { "Jürgen", "juergen" }, { "Sofia", "sofia" }, { "Mehmet", "mehmet" },
  { "Chloé", "chloe" }, { "Lukas", "lukas" }, { "Priya", "priya" }, { "Oliver", "oliver" },
  { "Zoë", "zoe" }, { "Hiroshi", "hiroshi" }, { "Fatima", "fatima" }, { "Mateo", "mateo" },
  { "Elena", "elena" }, { "Kwame", "kwame" }, { "Ingrid", "ingrid" }, { "Rafael", "rafael" },
  { "Mia", "mia" }, { "Tomasz", "tomasz" }, { "Aisha", "aisha" }, { "Noah", "noah" },
}
local LAST = {
  { "Schmidt", "schmidt" }, { "Müller", "mueller" }, { "García", "garcia" }, { "Nowak", "nowak" },
  { "Okafor", "okafor" }, { "Rossi", "rossi" }, { "Tanaka", "tanaka" }, { "Dubois", "dubois" },
  { "Larsen", "larsen" }, { "Kowalski", "kowalski" }, { "Silva", "silva" }, { "Ivanova", "ivanova" },
  { "Becker", "becker" }, { "O'Brien", "obrien" }, { "Fischer", "fischer" }, { "Weber", "weber" },
  { "Lindqvist", "lindqvist" }, { "Haddad", "haddad" }, { "Nguyen", "nguyen" },
}

-- Role sets handed out round-robin to ordinary memberships.
local ROLE_SETS = {
  { "clerk" }, { "admin" }, { "manager", "clerk" }, { "clerk" }, { "manager" },
  { "admin", "manager" }, { "clerk", "supportSpecialist" },
}
-- Role sets for internal (Hypatos staff) users.
local INTERNAL_ROLE_SETS = {
  { "installationAdmin" }, { "installationClerk", "supportSpecialist" }, { "installationAdmin", "admin" },
}

-- ISO-8601 UTC timestamp with microseconds, the API's createdAt style.
local function iso(t, micros)
  return os.date("!%Y-%m-%dT%H:%M:%S", t) .. format(".%06dZ", micros % 1000000)
end

-- A 24-hex ObjectId: 4-byte timestamp, fixed 5-byte "machine" part, 3-byte counter.
local function object_id(t, machine, counter)
  return format("%08x%s%06x", t, machine, counter)
end

-- Build the companies list (index 1 is the tenant).
local function build_companies()
  local list = {}
  for i, c in ipairs(COMPANIES) do
    list[i] = {
      id = object_id(c[4], "9db1ab740c", 0x3e2960 + i),
      name = c[1],
      active = c[3],
      createdAt = iso(c[4], 384990 + i * 1111),
      domain = c[2], -- internal helper field, stripped from API output
    }
  end
  return list
end

-- Primary company index of user i: half the users belong to the tenant.
local function primary_company(i)
  local m = i % 4
  if m == 1 or m == 2 then return 1 elseif m == 3 then return 2 end
  return 3
end

-- Build user number i (1-based) given the companies.
local function build_user(i, companies)
  local first = FIRST[(i * 7) % #FIRST + 1]
  local last = LAST[(i * 11) % #LAST + 1]
  local internal = (i % 19 == 1)
  local pc = primary_company(i)
  local created = 1680016579 + i * 97531 -- spread over roughly two months per ten users
  local domain = internal and "hypatos.ai" or companies[pc].domain
  local email = format("%s.%s@%s", first[2], last[2], domain)
  if i % 6 == 0 then email = format("%s%s%d@%s", first[2]:sub(1, 1), last[2], i, domain) end

  -- Memberships: the primary company first; most users also belong to the next company
  -- and two in three to the third; every eleventh user to the primary one only.
  -- Internal users see every company.
  local member_of = { pc }
  if internal then
    member_of = { 1, 2, 3 }
  elseif i % 11 ~= 0 then
    member_of[2] = pc % 3 + 1
    if i % 3 ~= 1 then member_of[3] = (pc + 1) % 3 + 1 end
  end
  local access = {}
  for k, ci in ipairs(member_of) do
    local c = companies[ci]
    local roles
    if internal then
      roles = INTERNAL_ROLE_SETS[(i + k) % #INTERNAL_ROLE_SETS + 1]
    else
      roles = ROLE_SETS[(i * 3 + k) % #ROLE_SETS + 1]
    end
    local copy = {}
    for r = 1, #roles do copy[r] = roles[r] end
    access[k] = {
      companyId = c.id,
      companyName = c.name,
      active = not (k > 1 and i % 7 == 0),
      createdAt = iso(created + k * 3600, (i * 7919 + k * 104729) % 1000000),
      roles = copy,
    }
  end

  return {
    id = object_id(created, "7a3cd6803f", 0x112200 + i),
    email = email,
    name = first[1] .. " " .. last[1],
    companiesAccess = access,
    active = (i % 5 ~= 0),
    isInternal = internal,
  }
end

------------------------------------------------------------------ documents, files, projects

-- The empty-array marker of util.lua (same literal; this module must not need cjson).
local EMPTY_ARRAY = "__hypatos_mock_empty_array__"
M.EMPTY_ARRAY = EMPTY_ARRAY

M.DOCUMENT_COUNT = 25

-- Round to cents.
local function cents(x)
  return floor(x * 100 + 0.5) / 100
end

-- Escape text for a PDF string literal.
local function pdf_text(s)
  return (s:gsub("[\\()]", "\\%0"))
end

--- A small valid one-page PDF showing `lines` (ASCII strings), with a correct xref table.
function M.pdf(lines)
  local content = { "BT /F1 14 Tf 72 770 Td 18 TL" }
  for _, l in ipairs(lines) do content[#content + 1] = "(" .. pdf_text(l) .. ") '" end
  content[#content + 1] = "ET"
  local stream = concat(content, "\n")
  local objects = {
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
      .. " /Resources << /Font << /F1 5 0 R >> >> >>",
    format("<< /Length %d >>\nstream\n%s\nendstream", #stream, stream),
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  }
  local out, offsets = { "%PDF-1.4\n" }, {}
  local pos = #out[1]
  for i, body in ipairs(objects) do
    offsets[i] = pos
    local text = format("%d 0 obj\n%s\nendobj\n", i, body)
    out[#out + 1] = text
    pos = pos + #text
  end
  local xref = { format("xref\n0 %d\n0000000000 65535 f \n", #objects + 1) }
  for i = 1, #objects do xref[#xref + 1] = format("%010d 00000 n \n", offsets[i]) end
  out[#out + 1] = concat(xref)
  out[#out + 1] = format("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", #objects + 1, pos)
  return concat(out)
end

-- A 1x1 white PNG (signature, IHDR, IDAT, IEND with their CRCs).
local PNG_1X1 = "\137PNG\013\010\026\010\000\000\000\013IHDR\000\000\000\001\000\000\000\001\008\002"
  .. "\000\000\000\144wS\222\000\000\000\012IDATx\156c\248\255\255?\000\005\254\002\254\013\239F\184"
  .. "\000\000\000\000IEND\174B`\130"

-- Little-endian 16/32-bit integers as bytes.
local function le16(n) return string.char(n % 256, floor(n / 256) % 256) end
local function le32(n) return le16(n % 65536) .. le16(floor(n / 65536)) end

-- A 1x1 8-bit grey uncompressed TIFF (header, one IFD of 8 entries, one pixel).
local function tiff_1x1()
  local entries = {
    { 256, 3, 1, 1 }, { 257, 3, 1, 1 }, { 258, 3, 1, 8 }, { 259, 3, 1, 1 }, { 262, 3, 1, 1 },
    { 273, 4, 1, 8 + 2 + 8 * 12 + 4 }, { 278, 3, 1, 1 }, { 279, 4, 1, 1 },
  }
  local out = { "II*\0", le32(8), le16(#entries) }
  for _, e in ipairs(entries) do
    local value = e[2] == 3 and (le16(e[4]) .. "\0\0") or le32(e[4])
    out[#out + 1] = le16(e[1]) .. le16(e[2]) .. le32(e[3]) .. value
  end
  out[#out + 1] = le32(0) .. "\255"
  return concat(out)
end

-- An XRechnung-like XML e-invoice.
local function xml_invoice(number, amount)
  return format('<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl:'
    .. 'schema:xsd:Invoice-2">\n  <ID>%s</ID>\n  <DocumentCurrencyCode>EUR</DocumentCurrencyCode>\n'
    .. '  <LegalMonetaryTotal><PayableAmount currencyID="EUR">%.2f</PayableAmount></LegalMonetaryTotal>\n'
    .. '</Invoice>\n', number, amount)
end

-- Suppliers that appear on the extracted invoices: {name, country, VAT id}.
local SUPPLIERS = {
  { "Nordwind Bürobedarf GmbH", "DE", "DE811234567" },
  { "Alpenblick Catering AG", "CH", "CHE123456789" },
  { "Rheinfracht Logistik KG", "DE", "DE298765432" },
  { "Baltic Paper Sp. z o.o.", "PL", "PL5261234567" },
  { "Lumière Services SARL", "FR", "FR40303265045" },
}
local ITEMS = {
  "Copy paper A4, 80 g/m2 (box)", "Toner cartridge black", "Catering for workshop", "Pallet transport",
  "Office chair, ergonomic", "Cleaning service (monthly)", "Laptop docking station", "Printer maintenance",
}

--- Extracted invoice entities for document number `n` created at epoch `t`: values wrapped
-- as `{value = ...}`; amounts consistent (net + 19 % tax = gross, rounded to cents).
function M.invoice_entities(n, t)
  local sup = SUPPLIERS[n % #SUPPLIERS + 1]
  local items, net = {}, 0
  for k = 1, n % 3 + 1 do
    local qty = (n + k) % 4 + 1
    local unit = ((n * 37 + k * 53) % 9000 + 500) / 100
    local amount = cents(qty * unit)
    items[k] = {
      description = { value = ITEMS[(n + k) % #ITEMS + 1] },
      quantity = { value = qty },
      unitPrice = { value = unit },
      amount = { value = amount },
    }
    net = net + amount
  end
  net = cents(net)
  local tax = cents(net * 0.19)
  return {
    number = { value = format("%s-%s-%04d", os.date("!%Y", t), sup[2], n) },
    issuedAt = { value = os.date("!%Y-%m-%d", t - 86400 * (n % 9 + 1)) },
    dueAt = { value = os.date("!%Y-%m-%d", t + 86400 * 30) },
    currency = { value = sup[2] == "CH" and "CHF" or (sup[2] == "PL" and "PLN" or "EUR") },
    totalNetAmount = { value = net },
    totalTaxAmount = { value = tax },
    totalGrossAmount = { value = cents(net + tax) },
    supplier = { name = { value = sup[1] }, vatId = { value = sup[3] }, countryCode = { value = sup[2] } },
    items = items,
  }
end

-- One data point of a project schema.
local function data_point(internal, display, kind)
  return { internalName = internal, displayName = display, type = kind, source = { type = "extractor" },
           normalization = EMPTY_ARRAY, rules = {} }
end

--- The schema a project gets when none is given (also used by the seed projects).
function M.default_schema(version)
  return {
    version = version or 1,
    dataPoints = {
      data_point("number", "Number", "string"),
      data_point("issuedAt", "Issued At", "date"),
      data_point("currency", "Currency", "string"),
      data_point("totalNetAmount", "Total Net Amount", "number"),
      data_point("totalGrossAmount", "Total Gross Amount", "number"),
      data_point("supplierName", "Supplier Name", "string"),
    },
    features = { derivation = false },
    enrichment = {},
    normalization = {},
    validation = {},
  }
end

-- Projects: {name, completion, duplicates, ocr, members kind, note, retentionDays, isLive, created}.
local PROJECTS = {
  { "Supplier Invoices DE", "manual", "fail",
    { engine = "abbyy", features = { "barcodes" }, languages = { "German", "English" } }, "all",
    "Incoming supplier invoices of the German entities", 365, true, 1717406711 },
  { "Supplier Invoices EU (touchless)", "automatic", "allow",
    { engine = "google", features = { "barcodes", "plainText" } }, "all", nil, nil, true, 1719838512 },
  { "Purchase Orders", "manual", "fail",
    { engine = "abbyy", features = EMPTY_ARRAY, languages = { "English" } }, "members",
    "Order confirmations and purchase orders", 90, false, 1722516313 },
  { "Receipts Archive", "manual", "allow",
    { engine = "google", features = { "disableBoxFilter" } }, "all", nil, 30, nil, 1725194114 },
}

-- Build the projects (and their schemas) given the users.
local function build_projects(users)
  local list, schemas = {}, {}
  for i, p in ipairs(PROJECTS) do
    local creator = users[i * 2].id
    local members = { allow = "all" }
    if p[5] == "members" then members = { allow = "members", members = { users[2].id, users[3].id, users[6].id } } end
    local rec = {
      id = object_id(p[9], "a41c07e2b5", 0x5a0000 + i),
      name = p[1], completion = p[2], duplicates = p[3], ocr = p[4], members = members,
      note = p[6], retentionDays = p[7], isLive = p[8],
      extractionModelId = object_id(p[9] - 86400, "e0de1c0ffe", 0x100 + i),
      createdAt = iso(p[9], 120000 + i * 4321), createdBy = creator,
      updatedAt = iso(p[9] + 3600 * i, 500000 + i * 77), updatedBy = creator,
    }
    list[i] = rec
    local schema = M.default_schema(i)
    if i == 3 then
      schema.dataPoints = {
        data_point("orderNumber", "Order Number", "string"),
        data_point("orderedAt", "Ordered At", "date"),
        data_point("totalAmount", "Total Amount", "number"),
      }
      schema.features.derivation = true
    end
    schemas[rec.id] = schema
  end
  return list, schemas
end

-- Final states of the seeded documents: index -> extra state after the final one, or a
-- replacement final state.
local function seed_states(i, automatic)
  local final = automatic and "doneAutomatically" or "done"
  if i == 9 then return { "new", "processing", "failed" } end
  if i == 13 then return { "new", "processing", "extracted", "rejected" } end
  if i == 17 then return { "new", "processing", "split" } end -- divided into new documents
  if i == 22 then return { "new", "processing", "junk" } end
  local s = { "new", "processing", "extracted", final }
  if i % 7 == 0 then s[5] = "transferFailed" elseif i % 5 == 0 then s[5] = "transferred" end
  return s
end

-- Offsets (seconds after creation) of the states in a seeded history.
local STATE_DELAY = { 0, 2, 41, 1800, 7200 }

-- Build files and documents given projects and users.
local function build_documents(projects, users)
  local files, documents, internal = {}, {}, {}
  for i = 1, M.DOCUMENT_COUNT do
    local created = 1735732800 + i * 3 * 86400 + i * 3607
    local micros = (i * 104729) % 1000000
    local t = created + micros / 1e6
    local ctype, filename, data
    if i == 12 then
      ctype, filename, data = "image/tiff", format("fax-%04d.tif", i), tiff_1x1()
    elseif i % 8 == 3 then
      ctype, filename, data = "image/png", format("scan %04d.png", i), PNG_1X1
    else
      ctype, filename = "application/pdf", format("invoice-2025-%04d.pdf", i)
      data = M.pdf({ "INVOICE " .. format("2025-%04d", i), "Seeded document " .. i })
    end
    local file = {
      id = format("%08x-%04x-4%03x-%04x-%012x", 0x3f2a1c00 + i, 0x7b1e, 0x0c5 + i, 0x8000 + 0x1a0 + i,
        0x5eed00000000 + i * 7919),
      contentType = ctype, filename = filename, data = data, size = #data,
    }
    files[i] = file

    local project = projects[(i - 1) % #projects + 1]
    local states = seed_states(i, project.completion == "automatic")
    local history = {}
    for k, st in ipairs(states) do
      local at = t + STATE_DELAY[k] + k * 0.013
      history[k] = { state = st, updatedAt = iso(floor(at), floor((at % 1) * 1e6)), at = at }
    end
    local last = history[#history]
    local user = users[(i % 10) + 1]
    local doc = {
      id = object_id(created, "c0ffee5eed", 0x7d0000 + i),
      title = filename,
      state = last.state,
      createdAt = history[1].updatedAt, createdBy = user.id,
      updatedAt = last.updatedAt, updatedBy = user.id,
      fileId = file.id,
      projectId = project.id,
      entities = M.invoice_entities(i, created),
    }
    if i % 3 == 0 then doc.externalId = format("ERP-%05d", 40000 + i) end
    if i % 4 == 0 then doc.externalData = { erpSystem = "sap-01", batch = format("B%03d", i), priority = i % 3 } end
    for _, h in ipairs(history) do
      if h.state == "done" or h.state == "doneAutomatically" then
        doc.completedAt = h.updatedAt
        doc.completedBy = h.state == "done" and user.id or "system"
      end
    end
    documents[i] = doc
    internal[doc] = { created = t, updated = last.at, history = history, files = { file.id } }
  end
  local xml = xml_invoice("XR-2025-0001", 238.0)
  files[#files + 1] = {
    id = "0b7e1d2c-5a4f-4e3d-9c2b-1a0f9e8d7c6b", contentType = "application/xml",
    filename = "xrechnung-0001.xml", data = xml, size = #xml,
  }
  return files, documents, internal
end

--- Build a fresh copy of all seed data.
-- @return table `{companies, company_by_id, users, user_by_id, user_search}` (user_search maps a
--   user record to its lower-cased "name\nemail" text)
function M.build()
  local companies = build_companies()
  local users = {}
  for i = 1, M.USER_COUNT do users[i] = build_user(i, companies) end
  -- Strip helper fields so the records are exactly what the API serves.
  for _, c in ipairs(companies) do c.domain = nil end
  local company_by_id, user_by_id, user_search = {}, {}, {}
  for _, c in ipairs(companies) do company_by_id[c.id] = c end
  for _, u in ipairs(users) do
    user_by_id[u.id] = u
    -- Pre-lowered search text (ASCII case folding only), kept outside the record.
    user_search[u] = lower(u.name) .. "\n" .. lower(u.email)
  end
  local projects, schemas = build_projects(users)
  local files, documents, doc_internal = build_documents(projects, users)
  local project_by_id, file_by_id, document_by_id = {}, {}, {}
  for _, p in ipairs(projects) do project_by_id[p.id] = p end
  for _, f in ipairs(files) do file_by_id[f.id] = f end
  for _, d in ipairs(documents) do document_by_id[d.id] = d end
  return { companies = companies, company_by_id = company_by_id, users = users, user_by_id = user_by_id,
           user_search = user_search,
           projects = projects, project_by_id = project_by_id, schemas = schemas,
           files = files, file_by_id = file_by_id,
           documents = documents, document_by_id = document_by_id, doc_internal = doc_internal }
end

--- Summary of the seed (served by GET /_mock/seed).
-- @param data the table returned by build()
function M.summary(data)
  local active, internal = 0, 0
  for _, u in ipairs(data.users) do
    if u.active then active = active + 1 end
    if u.isInternal then internal = internal + 1 end
  end
  local companies = {}
  for i, c in ipairs(data.companies) do companies[i] = { id = c.id, name = c.name, active = c.active } end
  local projects = {}
  for i, p in ipairs(data.projects) do
    projects[i] = { id = p.id, name = p.name, completion = p.completion, duplicates = p.duplicates,
                    engine = p.ocr.engine }
  end
  local documents, states = {}, {}
  for i = 1, M.DOCUMENT_COUNT do
    local d = data.documents[i]
    documents[i] = { id = d.id, state = d.state, projectId = d.projectId, fileId = d.fileId, title = d.title,
                     createdAt = d.createdAt, externalId = d.externalId }
    states[d.state] = (states[d.state] or 0) + 1
  end
  local function file_fact(f)
    return { id = f.id, contentType = f.contentType, filename = f.filename, size = f.size }
  end
  local files = { total = #data.files }
  for i = 1, #data.files do
    local f = data.files[i]
    if i == 1 then files.first = file_fact(f) end
    if f.contentType == "image/png" and not files.png then files.png = file_fact(f) end
    if f.contentType == "image/tiff" and not files.tiff then files.tiff = file_fact(f) end
    if f.contentType == "application/xml" and not files.xml then files.xml = file_fact(f) end
  end
  return {
    tenant = { id = data.companies[1].id, name = data.companies[1].name },
    companies = companies,
    users = { total = #data.users, active = active, inactive = #data.users - active, internal = internal,
              first = { id = data.users[1].id, name = data.users[1].name, email = data.users[1].email } },
    projects = projects,
    automatic_project = { id = data.projects[2].id, name = data.projects[2].name },
    documents = documents,
    document_states = states,
    files = files,
  }
end

return M
