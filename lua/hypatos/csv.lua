--- CSV helpers (RFC 4180) for exports: JSON values flattened into columns, and
-- a reader for CSV input. Used by the `hypatos` command and
-- examples/export_documents_csv.lua.
--
-- How nested values become columns (one column per value):
--     number = {value = "R-1"}                       → number   (a {value = …} wrapper is unwrapped;
--                                                               its other keys, e.g. scores, are left out)
--     supplier = {name = {value = "ACME"}}           → supplier.name
--     items = {{description = …}, {description = …}} → items.1.description, items.2.description
-- Numbers are written in the shortest form that reads back exactly, booleans as
-- true/false, null as an empty cell. Columns sort with digit runs compared as
-- numbers (items.2 before items.10).
--
-- Cells are written safe for spreadsheets and terminals (`field`, `line`; `safe`
-- alone), since extracted values come from documents anyone can send:
--   - a cell starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`, so that
--     a spreadsheet shows it as text instead of running it as a formula
--     (`=HYPERLINK(…)` → `'=HYPERLINK(…)`; OWASP's advice against CSV injection).
--     A plain number is left as it is, whether it came as a JSON number or as a
--     string: a sign, digits, `.` and `,` and an optional exponent (`-12.5`,
--     `-1.234,56`, `+49`, `-1e-07`) cannot call anything;
--   - control characters other than TAB, CR and LF (which stay, quoted: a
--     multi-line address is one cell), DEL, C1 controls and bytes that are not
--     UTF-8 are written as visible text by `hypatos.printable.escape` (`\x1B`,
--     `\u009B`).
-- `{raw = true}` writes cells exactly as given (RFC 4180 quoting only), for a
-- program that reads the file back, never for a person or a spreadsheet. A
-- neutralised cell reads back (`parse`) with its leading `'`.
-- @module hypatos.csv

local json_encode = require("hypatos.core").json_encode
local escape = require("hypatos.printable").escape

local M = {}

--- A JSON scalar as the text of one cell ("" for null and anything else).
-- @param v a string, number, boolean or null
-- @treturn string
function M.cell(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return json_encode(v) end -- 0.1 stays 0.1, 10 stays 10
  if type(v) == "boolean" then return tostring(v) end
  return "" -- hypatos.null
end

--- Adds the values under `v` to `row` as column → text, and their column names to the set `columns`.
-- @param v any JSON value
-- @tparam string name the column name of `v` (its prefix for nested values)
-- @tparam table row column → cell text (filled in)
-- @tparam table columns set of column names (filled in)
function M.flatten(v, name, row, columns)
  if type(v) == "table" then
    if v.value ~= nil then return M.flatten(v.value, name, row, columns) end
    for k, x in pairs(v) do M.flatten(x, name .. "." .. tostring(k), row, columns) end
  else
    row[name], columns[name] = M.cell(v), true
  end
end

--- A whole object flattened: top-level keys are the first name component.
-- @tparam table obj a decoded JSON object
-- @tparam table columns set of column names (filled in)
-- @treturn table row column → cell text
function M.flatten_record(obj, columns)
  local row = {}
  if type(obj) ~= "table" then
    row.value, columns.value = M.cell(obj), true
    return row
  end
  for k, v in pairs(obj) do M.flatten(v, tostring(k), row, columns) end
  return row
end

--- Sort key of a column name: digit runs padded so that they compare as numbers.
-- @tparam string name
-- @treturn string
local function key(name)
  return (name:gsub("%d+", function(d) return ("0"):rep(12 - #d) .. d end))
end

--- The column names of a set in a stable order, with `first` (in its order) ahead of the rest.
-- @tparam table columns set of column names
-- @tparam[opt] table first names to put first (left out of the sorted rest)
-- @treturn table array of names
function M.order(columns, first)
  local skip, order = {}, {}
  for _, f in ipairs(first or {}) do skip[f] = true end
  for name in pairs(columns) do if not skip[name] then order[#order + 1] = name end end
  table.sort(order, function(a, b) return key(a) < key(b) end)
  for i = #(first or {}), 1, -1 do table.insert(order, 1, first[i]) end
  return order
end

--- Whether a cell's text is a plain number: an optional sign, digits, `.` and `,`
-- (at least one digit), an optional exponent.
-- @tparam string s
-- @treturn boolean
local function plain_number(s)
  local mantissa = s:gsub("[eE][-+]?%d+$", "", 1)
  return mantissa:find("^[-+]?[%d.,]*%d[%d.,]*$") ~= nil
end

--- A cell's text made safe for a spreadsheet and a terminal (not quoted): control
-- characters but TAB, CR and LF escaped, a leading `=`, `+`, `-`, `@`, TAB or CR
-- (unless the cell is a plain number) preceded by `'`. See the module's notes.
-- @tparam string s
-- @treturn string
function M.safe(s)
  s = escape(s, "\t\r\n")
  local first = s:sub(1, 1)
  if first ~= "" and ("=+-@\t\r"):find(first, 1, true) and not plain_number(s) then return "'" .. s end
  return s
end

--- One field: made `safe` unless `opts.raw`, then quoted when it holds a comma, a
-- quote, CR or LF (quotes doubled).
-- @tparam string s
-- @tparam[opt] table opts `{raw = true}`: the text exactly as given (quoting only)
-- @treturn string
function M.field(s, opts)
  if not (opts and opts.raw) then s = M.safe(s) end
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- One record: the fields of `row` named by `order` (missing ones empty), CRLF at
-- the end; each cell made `safe` unless `opts.raw`.
-- @tparam table row column → text (or an array of texts when `order` is nil)
-- @tparam[opt] table order column names
-- @tparam[opt] table opts `{raw = true}`: cells exactly as given (quoting only)
-- @treturn string
function M.line(row, order, opts)
  local out = {}
  if order then
    for i, name in ipairs(order) do out[i] = M.field(row[name] or "", opts) end
  else
    for i, v in ipairs(row) do out[i] = M.field(v, opts) end
  end
  return table.concat(out, ",") .. "\r\n"
end

--- Parses CSV text (RFC 4180; LF or CRLF line ends, a leading UTF-8 byte-order mark
-- dropped, quoted fields may hold line breaks) into records, each with the line it starts on.
-- Blank lines are skipped.
-- @tparam string text
-- @treturn[1] table array of `{fields…, line = n}`
-- @treturn[2] nil
-- @treturn[2] string the problem (an unterminated quote)
function M.parse(text)
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end
  local records, record, value, quoted, i, n, lineno, start = {}, {}, {}, false, 1, #text, 1, 1
  local function push_record()
    record[#record + 1] = table.concat(value)
    value = {}
    if not (#record == 1 and record[1] == "") then
      record.line = start
      records[#records + 1] = record
    end
    record = {}
  end
  while i <= n do
    local ch = text:sub(i, i)
    if quoted then
      if ch == '"' and text:sub(i + 1, i + 1) == '"' then value[#value + 1] = '"'; i = i + 1
      elseif ch == '"' then quoted = false
      else
        if ch == "\n" then lineno = lineno + 1 end
        value[#value + 1] = ch
      end
    elseif ch == '"' then quoted = true
    elseif ch == "," then record[#record + 1] = table.concat(value); value = {}
    elseif ch == "\n" or (ch == "\r" and text:sub(i + 1, i + 1) == "\n") then
      if ch == "\r" then i = i + 1 end
      push_record()
      lineno = lineno + 1
      start = lineno
    else
      value[#value + 1] = ch
    end
    i = i + 1
  end
  if quoted then return nil, ("unterminated quoted field starting on line %d"):format(start) end
  if #value > 0 or #record > 0 then push_record() end
  return records
end

return M
