--- Load supplier master data from a CSV file into Hypatos enrichment, one record per
-- request (the API has no bulk insert), and print what was loaded and what was refused.
--
-- WRITES: upserts one supplier per CSV row (by externalId: running it twice changes
-- nothing); with --delete it deletes the suppliers the CSV lists instead.
-- Credentials come from the environment: HYPATOS_CLIENT_ID, HYPATOS_CLIENT_SECRET
-- (and HYPATOS_BASE_URL for another server, e.g. the local one `make demo` starts).
--
--   lua5.4 examples/load_master_data.lua [suppliers.csv] [--delete] [--concurrency N]
--
--   suppliers.csv  default: data/suppliers.csv beside this script. RFC 4180 CSV in UTF-8
--                  with a header row: supplier_id, name, street, postcode, city, country,
--                  vat_id (several VAT ids separated by ";"); empty cells are left out.
--   --concurrency N  requests in flight at once, with client:map (default 8; 1 = one after
--                  the other). Progress goes to stderr when it is a terminal.
--
-- No pauses are needed between requests however many rows there are: the client paces
-- itself (all tasks together) from the API's rate-limit headers and waits out a 429 on its own.
-- A row the API refuses (e.g. 422: a missing externalId, a country code that is not ISO
-- 3166 alpha-2) is reported with the API's reason and the rest goes on; a failure that is
-- not the row's fault (credentials, network, rate limit after retries) stops the run.
-- Exit status: 0 all rows loaded (or deleted); 2 some rows failed; 1 a fatal error.
-- Runs on Lua 5.4 and LuaJIT.
-- @script load_master_data
local hypatos = require "hypatos"

local function die(msg)
  io.stderr:write(tostring(msg), "\n")
  os.exit(1)
end

-- CSV header → API field of the supplier record (vat_id is built into vatIds below).
local COLUMNS = { supplier_id = "externalId", name = "name", street = "street", postcode = "postcode",
  city = "city", country = "countryCode" }

local delete, path, concurrency = false, nil, 8
local argi = 1
while arg[argi] do
  local a = arg[argi]
  if a == "--delete" then
    delete = true
  elseif a == "--concurrency" then
    concurrency = tonumber(arg[argi + 1])
    if not concurrency or concurrency < 1 or concurrency ~= math.floor(concurrency) then
      die("--concurrency needs a whole number of at least 1")
    end
    argi = argi + 1
  elseif a:sub(1, 2) == "--" then
    die("unknown option " .. a)
  else
    path = a
  end
  argi = argi + 1
end
path = path or ((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/data/suppliers.csv")

--- Parses RFC 4180 CSV (quoted fields may hold commas, quotes and line breaks;
-- CRLF or LF line ends). Returns a list of records (lists of strings), each with
-- `line` set to its first line number, or nil and a message.
local function parse_csv(text)
  local records, record, pos, line = {}, { line = 1 }, 1, 1
  text = text:gsub("^\239\187\191", "") -- a byte-order mark, as spreadsheets write it
  while pos <= #text do
    local value
    if text:sub(pos, pos) == '"' then
      local stop = pos
      repeat
        stop = text:find('"', stop + 1, true)
        if not stop then return nil, ("line %d: unclosed quote"):format(line) end
        local doubled = text:sub(stop + 1, stop + 1) == '"'
        if doubled then stop = stop + 1 end
      until not doubled
      value = text:sub(pos + 1, stop - 1):gsub('""', '"')
      pos = stop + 1
      local _, breaks = value:gsub("\n", "")
      line = line + breaks
    else
      local stop = text:find("[,\r\n]", pos) or #text + 1
      value, pos = text:sub(pos, stop - 1), stop
    end
    record[#record + 1] = value
    local c = text:sub(pos, pos)
    if c == "," then
      pos = pos + 1
    elseif c == "\r" or c == "\n" or c == "" then
      pos = pos + ((text:sub(pos, pos + 1) == "\r\n") and 2 or 1)
      line = line + 1
      if #record > 1 or record[1] ~= "" then records[#records + 1] = record end -- not a blank line
      record = { line = line }
    else
      return nil, ("line %d: unexpected %q after a quoted field"):format(line, c)
    end
  end
  return records
end

local f, ferr = io.open(path, "rb")
if not f then die(ferr) end
local records, perr = parse_csv(f:read("*a"))
f:close()
if not records then die(path .. ": " .. perr) end
local header = table.remove(records, 1) or die(path .. ": empty file")
local column = {}
for i, name in ipairs(header) do column[name:match("^%s*(.-)%s*$")] = i end
if not column.supplier_id then die(path .. ": no supplier_id column") end

--- The supplier record of a CSV row, in the API's field names.
local function supplier(record)
  local rec = {}
  for name, api in pairs(COLUMNS) do
    local v = column[name] and (record[column[name]] or ""):match("^%s*(.-)%s*$")
    if v and v ~= "" then rec[api] = v end
  end
  local vat_ids = {}
  for id in (column.vat_id and record[column.vat_id] or ""):gmatch("[^;%s]+") do
    vat_ids[#vat_ids + 1] = { id = id, countryCode = rec.countryCode }
  end
  if vat_ids[1] then rec.vatIds = vat_ids end
  return rec
end

-- Failures that are not the record's fault: stop instead of failing every row alike.
local FATAL = { auth = true, network = true, timeout = true, rate_limited = true }

local client = hypatos.new()
local suppliers = client.enrichment.suppliers
local done, missing, skipped, failures = 0, 0, 0, {}
local started = hypatos.now()
local on_tty = os.execute("test -t 2")
local tty = on_tty == true or on_tty == 0 -- Lua 5.4 / LuaJIT
local fatal -- the first failure that is not a row's fault: the other tasks stop sending
local results, errors = client:map(records, function(record)
  local rec = supplier(record)
  if fatal then return nil, "skipped" end
  if delete and not rec.externalId then return "skipped" end
  local ok, err
  if delete then ok, err = suppliers:delete(rec.externalId) else ok, err = suppliers:upsert(rec) end
  if not ok and (FATAL[err.kind] or err.status == 401 or err.status == 403) then fatal = fatal or err end
  return ok and "done", err
end, { concurrency = concurrency, on_done = tty and function(_, _, _, n, total)
  io.stderr:write(("\r%d/%d rows"):format(n, total), n == total and "\n" or "")
end or nil })
if fatal then die(fatal) end
for k, record in ipairs(records) do
  local err = errors[k]
  if results[k] == "done" then
    done = done + 1
  elseif results[k] == "skipped" then
    skipped = skipped + 1
  elseif delete and type(err) == "table" and err.status == 404 then
    missing = missing + 1
  else -- for a 422 the message lists every problem, e.g. "body.countryCode: value is not …"
    failures[#failures + 1] = ("  line %d (%s): %s"):format(record.line, supplier(record).externalId or "no externalId",
      type(err) == "table" and err.message or tostring(err))
  end
end

print(("%s: %d rows in %.2f s"):format(path, #records, hypatos.now() - started))
if delete then
  print(("deleted: %d, not found: %d, without externalId: %d"):format(done, missing, skipped))
else
  print(("upserted: %d"):format(done))
end
print(("failed: %d"):format(#failures))
if failures[1] then
  print(table.concat(failures, "\n"))
  os.exit(2)
end
