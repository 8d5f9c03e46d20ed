--- Output formats of the `hypatos` command: `json` (one JSON array for a
-- listing, the object for a single value), `jsonl` (one JSON value per line),
-- `csv` (RFC 4180, nested fields flattened as `hypatos.csv` does: `a.b`,
-- `items.1.x`), `table` (aligned columns of the top-level scalar fields, for
-- people; a single object as key/value lines, nested keys flattened).
-- `json` and `jsonl` stream item by item; `csv` and `table` collect the items
-- first (their columns are the union over all items).
--
-- Nothing a server sends reaches the terminal as a control character: `table`
-- text (headers, keys, cells) goes through `hypatos.printable.escape` (TAB, CR
-- and LF in a cell become spaces), `csv` cells are made safe by `hypatos.csv`
-- (formulas neutralised, controls escaped; `{csv_raw = true}` writes them as
-- received), and `json`/`jsonl` escape every control character, C1 included.
-- @internal hypatos.cli.output

local hypatos = require "hypatos"
local csv = require "hypatos.csv"
local escape = require("hypatos.printable").escape
local textwidth = require "hypatos.textwidth"

local encode = hypatos.json.encode

local M = {}

--- The formats, in the order --help lists them.
M.FORMATS = { "json", "jsonl", "csv", "table" }

--- Widest a table cell may be, in terminal columns (longer text is cut with "…").
M.MAX_CELL = 40

--- Text for the table format: line breaks and tabs as spaces, other control
-- characters and invalid bytes escaped (`\x1B`, `\u009B`, `\xE9`).
-- @tparam string s
-- @treturn string
local function text(s)
  return escape((s:gsub("[\t\r\n]", " ")))
end

--- A cell for the table format: scalars as text, nested values as compact JSON;
-- cut to `MAX_CELL` columns at the end, or at the start when `left` (a path).
-- @param v
-- @tparam[opt] boolean left cut the start, keeping the end
-- @treturn string
local function table_cell(v, left)
  local s
  if type(v) == "table" and v ~= hypatos.null then s = encode(v) else s = text(csv.cell(v)) end
  return textwidth.cut(s, M.MAX_CELL, left and "left" or nil)
end

--- Writes rows (arrays of strings) as columns aligned by display width (`hypatos.textwidth`:
-- `Jürgen`, a combining mark, CJK).
-- @tparam file out
-- @tparam table rows
local function write_columns(out, rows)
  local widths = {}
  for _, r in ipairs(rows) do
    for i, c in ipairs(r) do widths[i] = math.max(widths[i] or 0, textwidth.width(c)) end
  end
  for _, r in ipairs(rows) do
    local parts = {}
    for i, c in ipairs(r) do
      parts[i] = i < #r and textwidth.pad(c, widths[i]) or c
    end
    out:write((table.concat(parts, "  "):gsub("%s+$", "")), "\n")
  end
end

--- The table columns for a list of objects: `id` first, then every top-level key
-- holding a scalar in some item, sorted (nested values: see json or csv).
-- @tparam table items
-- @treturn table column names
local function table_columns(items)
  local set = {}
  for _, it in ipairs(items) do
    if type(it) == "table" then
      for k, v in pairs(it) do
        if type(v) ~= "table" or v == hypatos.null then set[tostring(k)] = true end
      end
    end
  end
  set.id = nil
  local order = csv.order(set)
  local has_id = false
  for _, it in ipairs(items) do if type(it) == "table" and it.id ~= nil then has_id = true end end
  if has_id then table.insert(order, 1, "id") end
  return order
end

local Writer = {}
Writer.__index = Writer

--- A writer for a listing.
-- @tparam string format one of `FORMATS`
-- @tparam[opt] file out default io.stdout
-- @tparam[opt] table columns fixed column order for csv/table (default: from the items)
-- @tparam[opt] table opts `{csv_raw = true}`: csv cells as received (see `hypatos.csv`);
--   `{cut_left = {path = true}}`: table cells of these columns too long are cut at the start
--   (a path keeps its file name)
-- @treturn table with `item(value)` and `finish()`
function M.writer(format, out, columns, opts)
  return setmetatable({ format = format, out = out or io.stdout, n = 0, items = {}, columns = columns,
    csv_opts = { raw = opts and opts.csv_raw or nil }, cut_left = opts and opts.cut_left or {} }, Writer)
end

--- Adds one item (written at once for json/jsonl).
-- @param value a decoded JSON value
function Writer:item(value)
  self.n = self.n + 1
  local f, out = self.format, self.out
  if f == "jsonl" then
    out:write(encode(value), "\n")
    out:flush()
  elseif f == "json" then
    out:write(self.n == 1 and "[\n" or ",\n", encode(value))
  else
    self.items[#self.items + 1] = value
  end
end

--- Ends the listing: closes the JSON array, or writes the collected csv/table.
function Writer:finish()
  local f, out = self.format, self.out
  if f == "json" then
    out:write(self.n == 0 and "[]\n" or "\n]\n")
  elseif f == "csv" then
    local columns, rows = {}, {}
    for i, it in ipairs(self.items) do rows[i] = csv.flatten_record(it, columns) end
    local order = self.columns or csv.order(columns, columns.id and { "id" } or nil)
    if #order > 0 then out:write(csv.line(order, nil, self.csv_opts)) end
    for _, r in ipairs(rows) do out:write(csv.line(r, order, self.csv_opts)) end
  elseif f == "table" then
    local order = self.columns or table_columns(self.items)
    local rows = { {} }
    for i, name in ipairs(order) do rows[1][i] = text(name) end
    for _, it in ipairs(self.items) do
      local r = {}
      for i, name in ipairs(order) do
        local v -- (not `a and b or c`: a field holding false is shown as false, not as missing)
        if type(it) == "table" then v = it[name] elseif name == "value" then v = it end
        r[i] = v == nil and "-" or table_cell(v, self.cut_left[name])
        if r[i] == "" then r[i] = "-" end
      end
      rows[#rows + 1] = r
    end
    if #order > 0 then write_columns(out, rows) end
  end
  out:flush()
end

--- Writes one value (a `get`): json/jsonl the value on one line, csv a header and
-- one row, table `key  value` lines with nested keys flattened. An answer that is
-- not JSON (a string) is written as one line of text, escaped.
-- @tparam string format
-- @param value
-- @tparam[opt] file out default io.stdout
-- @tparam[opt] table opts as for `writer`
function M.single(format, value, out, opts)
  out = out or io.stdout
  if type(value) == "string" then
    out:write(text(value), "\n")
  elseif format == "json" or format == "jsonl" or type(value) ~= "table" then
    out:write(encode(value), "\n")
  elseif format == "csv" then
    local w = M.writer("csv", out, nil, opts)
    w:item(value)
    w:finish()
  else
    local columns = {}
    local row = csv.flatten_record(value, columns)
    local rows = {}
    for _, name in ipairs(csv.order(columns, columns.id and { "id" } or nil)) do
      rows[#rows + 1] = { text(name), text(row[name]) }
    end
    write_columns(out, rows)
  end
  out:flush()
end

return M
