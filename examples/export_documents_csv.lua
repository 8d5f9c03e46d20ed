--- Export the documents in given states to CSV: one row per document with its id,
-- title, state, createdAt and projectId, and its extracted entities flattened into columns.
--
-- Reads only (writes the CSV file). Credentials come from the environment:
-- HYPATOS_CLIENT_ID, HYPATOS_CLIENT_SECRET (and HYPATOS_BASE_URL for another server,
-- e.g. the local one `make demo` starts).
--
--   lua5.4 examples/export_documents_csv.lua [--raw] [states] [out.csv]
--
--   states   comma-separated document states (default: done,doneAutomatically)
--   out.csv  the file to write (default, or "-": stdout). It is written as out.csv.tmp and
--            renamed when complete, so a scheduled run never leaves half a file behind.
--   --raw    cells exactly as extracted (see below): for a program reading the file, not a
--            spreadsheet.
--
-- How entities become columns (one column per value):
--   number = {value = "R-1"}                      → number   (a {value = …} wrapper is unwrapped;
--                                                               its other keys, e.g. scores, are left out)
--   supplier = {name = {value = "ACME"}}          → supplier.name
--   items = {{description = …}, {description = …}} → items.1.description, items.2.description
--     (arrays are indexed from 1: every line item keeps its own columns, nothing is lost)
-- Columns: the five document fields first, then the union of the entity columns over all
-- documents, sorted by name with numbers in numeric order (items.2 before items.10); an entity
-- named like a document field becomes entities.<name>. A document without a value gets an
-- empty cell. CSV as in RFC 4180: commas, CRLF line ends, a field holding a comma, a quote,
-- CR or LF is quoted with its quotes doubled; UTF-8 as the API sends it (no byte-order mark).
-- Numbers are written in the shortest form that reads back exactly, null as an empty cell.
-- Extracted values come from documents anyone can send, so cells are made safe (hypatos.csv):
-- a cell starting with =, +, -, @, TAB or CR gets a leading ' (a spreadsheet shows it as text
-- instead of running a formula such as =HYPERLINK(…)); a plain number such as -12.5 is left
-- alone; control characters other than TAB, CR and LF are written as \x1B, \u009B. --raw
-- turns both off.
-- Runs on Lua 5.4 and LuaJIT.
-- @script export_documents_csv
local hypatos = require "hypatos"
local csv = require "hypatos.csv" -- cells, flattening, quoting (RFC 4180)

local function die(msg)
  io.stderr:write(tostring(msg), "\n")
  os.exit(1)
end

local args, raw = {}, false
for _, a in ipairs(arg) do
  if a == "--raw" then raw = true else args[#args + 1] = a end
end
local csv_opts = { raw = raw }

local states = {}
for s in (args[1] or "done,doneAutomatically"):gmatch("[^,%s]+") do states[#states + 1] = s end
local out_path = args[2] ~= "-" and args[2] or nil

local FIELDS = { "id", "title", "state", "createdAt", "projectId" }
local is_field = {}
for _, f in ipairs(FIELDS) do is_field[f] = true end

local cell, flatten = csv.cell, csv.flatten

local client = hypatos.new()

-- 1. Every document in the states, flattened (all of them first: the columns are their union).
local rows, columns = {}, {}
local ok, err = pcall(function()
  for doc in client.documents:each({ state = states }) do
    if doc.entities == nil then -- a lightweight list item: fetch the whole document
      local full, gerr = client.documents:get(doc.id)
      if not full then error(gerr, 0) end
      doc = full
    end
    local row = {}
    for _, f in ipairs(FIELDS) do row[f] = cell(doc[f]) end
    if type(doc.entities) == "table" then
      for k, v in pairs(doc.entities) do flatten(v, is_field[k] and "entities." .. k or k, row, columns) end
    end
    rows[#rows + 1] = row
  end
end)
if not ok then die(err) end

-- 2. The columns in a stable order: digit runs compared as numbers.
local order = csv.order(columns, FIELDS)

-- 3. The CSV.
local out, tmp_path = io.stdout, nil
if out_path then
  tmp_path = out_path .. ".tmp"
  local ferr
  out, ferr = io.open(tmp_path, "wb")
  if not out then die(ferr) end
end
out:write(csv.line(order, nil, csv_opts))
for _, row in ipairs(rows) do out:write(csv.line(row, order, csv_opts)) end
if tmp_path then
  local wok, werr = out:close()
  if not wok then die(werr) end
  wok, werr = os.rename(tmp_path, out_path)
  if not wok then die(werr) end
end
io.stderr:write(("%d documents in %s, %d columns, to %s\n"):format(#rows, table.concat(states, ", "),
  #order, out_path or "stdout"))
