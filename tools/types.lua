--- tools/types.lua — types/hypatos.d.lua, the Lua Language Server (LuaLS)
-- definitions of the public API, generated so that they never go stale:
-- * the resource classes (`hypatos.Documents`, `hypatos.EnrichmentInvoices`, …) and their
--   methods from lua/hypatos/operations.lua (the methods are made at run time, so an
--   editor cannot see them in the sources);
-- * `hypatos.Options` and `hypatos.Error` (with the `hypatos.ErrorKind` alias) from the
--   `Options` and `Error` tables documented in doc/core.lua;
-- * the rest (client methods, pager, JSON helpers) from the text below.
--
--   lua5.4 tools/types.lua           print the file
--   lua5.4 tools/types.lua --write   write types/hypatos.d.lua (commit it)
-- spec/07-types_spec.lua fails when the committed file differs from this output.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local ops = require "hypatos.operations"

local M = {}

M.OUTPUT = "types/hypatos.d.lua"

--- `purchase_orders` → `PurchaseOrders`.
-- @tparam string s a snake_case name
-- @treturn string
local function camel(s)
  return (s:gsub("^%l", string.upper):gsub("_(%w)", string.upper))
end

--- The LuaLS class of a resource: "documents" → "hypatos.Documents",
-- "enrichment.lookup_tables" → "hypatos.EnrichmentLookupTables".
-- @tparam string resource a resource of the operations table
-- @treturn string
function M.class_of(resource)
  local parts = {}
  for part in resource:gmatch("[^.]+") do parts[#parts + 1] = camel(part) end
  return "hypatos." .. table.concat(parts)
end

--- The resources in table order, without "client" (whose token method is written below).
-- @treturn table
function M.resources()
  local out, seen = {}, {}
  for _, o in ipairs(ops) do
    if o.resource ~= "client" and not seen[o.resource] then
      seen[o.resource] = true
      out[#out + 1] = o.resource
    end
  end
  return out
end

--------------------------------------------------------- doc/core.lua tables

--- The `@tfield`s of the LDoc table `name` in doc/core.lua (and, for Error, the bullet
-- list of kinds above it).
-- @tparam string text doc/core.lua
-- @tparam string name "Options" or "Error"
-- @treturn table fields `{type, name, optional, doc}` in order
-- @treturn table bullets `{name, doc}` (`* \`name\` — doc` lines of the comment)
function M.ldoc_table(text, name)
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local stop
  for i, l in ipairs(lines) do
    if l:match("^%-%- @table " .. name .. "$") then stop = i end
  end
  assert(stop, "doc/core.lua has no @table " .. name)
  local start = stop
  while start > 1 and lines[start - 1]:match("^%-%-") do start = start - 1 end
  local fields, bullets, last = {}, {}, nil
  for i = start, #lines do
    local l = lines[i]
    if not l:match("^%-%-") then break end
    local opt, ty, fname, doc = l:match("^%-%- @tfield(%S*)%s+(%S+)%s+([%w_]+)%s*(.*)$")
    local bname, bdoc = l:match("^%-%- %* `([%w_]+)` — (.*)$")
    if ty then
      last = { type = ty, name = fname, optional = opt == "[opt]", doc = doc }
      fields[#fields + 1] = last
    elseif bname then
      last = { name = bname, doc = bdoc }
      bullets[#bullets + 1] = last
    elseif last and l:match("^%-%-   ") then
      last.doc = last.doc .. " " .. l:match("^%-%-%s+(.*)$")
    else
      last = nil
    end
  end
  return fields, bullets
end

-- LDoc types → LuaLS types, and fields whose type LDoc cannot say exactly
local LDOC_TYPES = { ["string|{string,...}"] = "string|string[]", ["string|table"] = "string|table" }
local FIELD_TYPES = {
  region = '"eu"|"us"', driver = '"auto"|"curl"|"ngx"', token_cache = "hypatos.TokenCache",
  on_request = "fun(info: table)", on_response = "fun(info: table)", random = "fun(): number",
  kind = "hypatos.ErrorKind",
}

--- `---@field` lines for LDoc fields.
-- @tparam table fields from `ldoc_table`
-- @tparam boolean all_optional every field optional (options)
-- @treturn string
local function field_lines(fields, all_optional)
  local out = {}
  for _, f in ipairs(fields) do
    local ty = FIELD_TYPES[f.name] or LDOC_TYPES[f.type] or f.type
    local q = (all_optional or f.optional) and "?" or ""
    out[#out + 1] = ("---@field %s%s %s %s"):format(f.name, q, ty, f.doc)
  end
  return table.concat(out, "\n")
end

------------------------------------------------------------------ resources

local BODY_TYPES = { json = "table", merge_patch = "table", text = "string", query = "hypatos.Query?" }
local RETURNS = [[
---@return any|nil value the decoded JSON (`true` for an empty answer); nil on failure
---@return hypatos.Meta|hypatos.Error meta meta on success, the error on failure]]

-- Methods written by hand (operations marked `special`): parameters and results.
local SPECIAL = {
  ["files:upload"] = {
    params = { { "opts", "hypatos.UploadOptions", "`path` or `data`, and how to send it" } },
    returns = "---@return {id: string}|nil file `{id}` of the uploaded file; nil on failure\n"
      .. "---@return hypatos.Meta|hypatos.Error meta meta on success, the error on failure",
  },
  ["files:download"] = {
    params = { { "id", "string", "file id" }, { "opts?", "hypatos.DownloadOptions", "`path` to stream to, …" } },
    returns = "---@return string|true|nil bytes the bytes, or true when written to `opts.path`\n"
      .. "---@return hypatos.DownloadMeta|hypatos.Error meta meta (with `filename`, `content_type`), or the error",
  },
  ["emails:content"] = {
    params = { { "document_id", "string", "document id" },
      { "opts?", "hypatos.DownloadOptions", "`path` to stream to, …" } },
    returns = "---@return string|true|nil bytes the merged PDF, or true when written to `opts.path`\n"
      .. "---@return hypatos.DownloadMeta|hypatos.Error meta meta (with `filename`, `content_type`), or the error",
  },
  ["documents:set_external_data"] = {
    params = { { "id", "string", "document id" },
      { "map", "table<string, string|number|boolean>", "at most 20 keys of at most 50 characters" },
      { "opts?", "hypatos.CallOptions", "per-call options" } },
    returns = "---@return true|nil ok true; nil on failure (kind `invalid`: nothing sent)\n"
      .. "---@return hypatos.Meta|hypatos.Error meta meta on success, the error on failure",
  },
  ["enrichment.lookup_tables:insert"] = {
    params = { { "table_name", "string", "the lookup table" },
      { "row", "table<string, string>", "one flat row of strings holding `externalId`" },
      { "opts?", "hypatos.CallOptions", "per-call options" } },
    returns = RETURNS,
  },
}

--- The `---@param` lines and parameter names of a generated method.
-- @tparam table o the operation
-- @treturn string lines
-- @treturn table names
local function params_of(o)
  local lines, names = {}, {}
  local function add(name, ty, doc)
    local plain = name:gsub("%?$", "")
    names[#names + 1] = plain
    lines[#lines + 1] = ("---@param %s %s %s"):format(name, ty, doc)
  end
  for i = 1, #o.params do add(o.args[i], "string", "path parameter `{" .. o.params[i] .. "}`") end
  if o.body then
    local ty = BODY_TYPES[o.body]
    local name = o.args[#o.params + 1]
    if ty:sub(-1) == "?" then name, ty = name .. "?", ty:sub(1, -2) end
    add(name, ty, o.body == "query" and "query parameters (API names)" or ("the body (" .. o.body .. ")"))
  end
  add("opts?", o.query_opts and (M.class_of(o.resource) .. camel(o.name) .. "Options") or "hypatos.CallOptions",
    "per-call options")
  return table.concat(lines, "\n"), names
end

--- The summary line of an operation's method.
local function summary(o)
  local s = ("%s %s — scope `%s`"):format(o.method, o.path, o.scope)
  if not o.idempotent then s = s .. "; not idempotent (re-sent only when it certainly did not arrive)" end
  if o.note then s = s .. "; " .. o.note end
  return "---" .. s
end

--- The definitions of one resource class.
-- @tparam string resource
-- @treturn string
function M.resource_class(resource)
  local class = M.class_of(resource)
  local var = class:gsub("^hypatos%.", "")
  local out = {}
  local function w(s) out[#out + 1] = s end
  w(("---`client.%s`"):format(resource))
  w("---@class " .. class)
  w("---@field client hypatos.Client the client the methods call")
  if resource == "documents" then
    w("---@field TERMINAL_STATES string[] states a document ends in (`wait`'s default)")
    w("---@field MAX_EXTERNAL_KEYS integer the API keeps at most this many external-data keys")
    w("---@field MAX_EXTERNAL_KEY_LENGTH integer … and drops keys longer than this many characters")
  end
  w(("local %s = {}"):format(var))
  for _, o in ipairs(ops.of(resource)) do
    local key = resource .. ":" .. o.name
    w("")
    w(summary(o))
    local sp = SPECIAL[key]
    local names = {}
    if sp then
      for _, p in ipairs(sp.params) do
        names[#names + 1] = (p[1]:gsub("%?$", ""))
        w(("---@param %s %s %s"):format(p[1], p[2], p[3]))
      end
      w(sp.returns)
    else
      assert(not o.special, "tools/types.lua: no SPECIAL entry for " .. key)
      local lines
      lines, names = params_of(o)
      w(lines)
      if o.paginated ~= nil then
        w("---@return hypatos.Page|nil page `{data, limit, offset, totalCount}`; nil on failure")
        w("---@return hypatos.Meta|hypatos.Error meta meta on success, the error on failure")
      else
        w(RETURNS)
      end
    end
    w(("function %s:%s(%s) end"):format(var, o.name, table.concat(names, ", ")))
    if o.paginated ~= nil then
      w("")
      w("---A pager over every page of `" .. o.name .. "`" .. (o.paginated and "" or " (fetched once)"))
      w("---@param query? hypatos.Query query parameters (API names)")
      w("---@param opts? hypatos.CallOptions per-call options")
      w("---@return hypatos.Pager")
      w(("function %s:pages(query, opts) end"):format(var))
      w("")
      w("---An iterator over every item of every page (raises the error value if a page fails)")
      w("---@param query? hypatos.Query query parameters (API names)")
      w("---@param opts? hypatos.CallOptions per-call options")
      w("---@return fun(): table, integer")
      w(("function %s:each(query, opts) end"):format(var))
    end
    if o.query_opts then
      local extra = {}
      w("")
      w(("---@class %s%sOptions: hypatos.CallOptions"):format(class, camel(o.name)))
      for lua_name, api in pairs(o.query_opts) do
        extra[#extra + 1] = ("---@field %s? integer|string sent as `?%s=`"):format(lua_name, api)
      end
      table.sort(extra)
      w(table.concat(extra, "\n"))
    end
  end
  if resource == "documents" then
    w("")
    w("---Polls `get(id)` until the document reaches one of `opts.states` (default `TERMINAL_STATES`)")
    w("---@param id string document id")
    w("---@param opts? hypatos.WaitOptions")
    w("---@return table|nil document the document; nil on failure (kind `timeout`: `err.document`)")
    w("---@return hypatos.Meta|hypatos.Error meta meta on success, the error on failure")
    w(("function %s:wait(id, opts) end"):format(var))
  end
  return table.concat(out, "\n")
end

--- The `hypatos.Enrichment` class: one field per record type, and lookup_tables.
local function enrichment_class()
  local out = { "---`client.enrichment`: one object per record type", "---@class hypatos.Enrichment" }
  for _, res in ipairs(M.resources()) do
    local name = res:match("^enrichment%.(.+)$")
    if name then out[#out + 1] = ("---@field %s %s"):format(name, M.class_of(res)) end
  end
  return table.concat(out, "\n")
end

--- The resource fields of `hypatos.Client`.
local function client_fields()
  local out = {}
  for _, res in ipairs(M.resources()) do
    if not res:find(".", 1, true) then
      out[#out + 1] = ("---@field %s %s `client.%s`"):format(res, M.class_of(res), res)
    end
  end
  out[#out + 1] = "---@field enrichment hypatos.Enrichment `client.enrichment.<type>`"
  return table.concat(out, "\n")
end

------------------------------------------------------------------- the file

local HEAD = [[
---@meta hypatos
-- types/hypatos.d.lua — Lua Language Server definitions for hypatos.
-- GENERATED by tools/types.lua from lua/hypatos/operations.lua and doc/core.lua: do not
-- edit; run `lua5.4 tools/types.lua --write`. Point LuaLS at this directory
-- (`"workspace.library": ["types"]` in .luarc.json) to complete `client.documents:` and
-- check argument types.

---@alias hypatos.ErrorKind
%s

---An error value (`nil, err`): a table with `__tostring` (one line, no secret)
---@class hypatos.Error
%s

---The options of `hypatos.new` (every key checked; unknown keys raise)
---@class hypatos.Options
%s

---`token_cache` option: share tokens between processes or nginx workers
---@class hypatos.TokenCache
---@field get fun(key: string, refused?: string): table|nil the cached token, or nil
---@field set fun(key: string, token: table) store `{access_token, expires_at, lifetime, scope}`

---What a successful call returns second
---@class hypatos.Meta
---@field status integer the HTTP status
---@field headers table<string, string> the answer's headers, names in lower case
---@field attempts integer attempts made
---@field elapsed number seconds, retries and waits included
---@field rate_limit hypatos.RateLimit|nil the rate-limit state after the call

---`meta` of a download: also the file name (decoded, never use it as a path without
---`hypatos.filename.safe`) and the content type
---@class hypatos.DownloadMeta: hypatos.Meta
---@field filename string|nil
---@field content_type string|nil

---@class hypatos.RateLimit
---@field limit integer|nil requests per window
---@field remaining integer|nil requests left in the window
---@field reset number|nil seconds until the window resets
---@field reset_at number|nil when it resets (`hypatos.now()` clock)
---@field window number|nil the window in seconds
---@field policy string|nil the policy header as sent

---Per-call options, the last argument of every resource method
---@class hypatos.CallOptions
---@field timeout? number seconds per attempt
---@field deadline? number seconds for the whole call, retries and waits included
---@field max_retries? integer retries after the first attempt
---@field headers? table<string, string> extra request headers

---Options of `client:request`
---@class hypatos.RequestOptions: hypatos.CallOptions
---@field params? table<string, string|number> values for `{name}` placeholders (percent-encoded)
---@field query? hypatos.Query query parameters (arrays repeat the key)
---@field json? any a body encoded as JSON
---@field body? string a body as is
---@field body_file? string a file to stream as the body
---@field content_type? string the body's content type
---@field output? string stream a 2xx answer to this path
---@field raw? boolean return the bytes, not decoded JSON
---@field idempotent? boolean may be re-sent after it may have reached the server
---@field progress? fun(dlnow: integer, dltotal: integer, ulnow: integer, ultotal: integer)

---@alias hypatos.Query table<string, string|number|boolean|(string|number)[]>

---@class hypatos.UploadOptions: hypatos.CallOptions
---@field path? string the file to upload (streamed from disk); or `data`
---@field data? string the bytes to upload; or `path`
---@field content_type? string default: from the name's extension (pdf, jpg/jpeg, png, tif/tiff, xml)
---@field filename? string default: the base name of `path` (sent as X-Hy-Filename)
---@field progress? fun(dlnow: integer, dltotal: integer, ulnow: integer, ultotal: integer)

---@class hypatos.DownloadOptions: hypatos.CallOptions
---@field path? string stream to this file (it appears only once complete)
---@field progress? fun(dlnow: integer, dltotal: integer, ulnow: integer, ultotal: integer)

---@class hypatos.WaitOptions
---@field states? string[] default `documents.TERMINAL_STATES`
---@field timeout? number seconds (default 600)
---@field interval? number first wait in seconds (default 1)
---@field max_interval? number longest wait in seconds (default 30)
---@field sleep? fun(seconds: number) default: the client's driver's
---@field now? fun(): number default: the client's driver's

---@class hypatos.MapOptions
---@field concurrency? integer tasks in flight, 1–1000 (default 8)
---@field on_done? fun(i: integer, result: any, err: any, done: integer, total: integer)

---A list answer
---@class hypatos.Page
---@field data table[] the items
---@field limit integer
---@field offset integer
---@field totalCount integer|nil

---@class hypatos.Pager
local Pager = {}

---The next page; nil when there are no more; nil, err on failure (ask again to retry it)
---@return hypatos.Page|nil page
---@return hypatos.Meta|hypatos.Error|nil meta
function Pager:next() end

---Iterates over pages (raises the error value on failure)
---@return fun(): hypatos.Page
function Pager:iter() end

---The token `client:token()` returns (its `tostring` hides the token)
---@class hypatos.Token
---@field access_token string
---@field token_type string
---@field expires_at number
---@field expires_in number
---@field scope string
---@field scopes string[]

---A client (`hypatos.new`). `close`, garbage collection and `<close>` release it.
---@class hypatos.Client
%s
local Client = {}

---Any API call: method and path relative to `base_url`
---@param method string the HTTP method
---@param path string the path, with `{name}` placeholders filled from `opts.params`
---@param opts? hypatos.RequestOptions
---@return any|nil value the decoded JSON, `true` for an empty answer, or bytes; nil on failure
---@return hypatos.Meta|hypatos.Error meta meta on success, the error on failure
function Client:request(method, path, opts) end

---The client's token, fetched if none is usable
---@return hypatos.Token|nil token
---@return hypatos.Error|nil err
function Client:token() end

---`fn(item, i)` for every item, up to `opts.concurrency` at once (one token, one quota)
---@generic T
---@param items T[]
---@param fn fun(item: T, i: integer): any, any
---@param opts? hypatos.MapOptions
---@return table results `results[i]`: fn's first value (`n = #items`)
---@return table errors `errors[i]`: fn's second value, or what it raised
function Client:map(items, fn, opts) end

---The rate-limit state read from the last answers (nil before any)
---@return hypatos.RateLimit|nil
function Client:rate_limit() end

---Attempts sent so far
---@return {requests: integer, token_requests: integer}
function Client:stats() end

---The effective options that are not secret
---@return table
function Client:options() end

---Prepares a call without running it (for drivers written in Lua)
---@param method string
---@param path string
---@param opts? hypatos.RequestOptions
---@return any|nil call a hypatos.Call; nil on bad data
---@return hypatos.Error|nil err
function Client:prepare(method, path, opts) end

---Prepares the token request alone
---@return any call a hypatos.Call
function Client:prepare_token() end

---Closes the connections and forgets the token; idempotent
function Client:close() end

%s

]]

local TAIL = [[
---JSON helpers
---@class hypatos.JSON
---@field encode fun(value: any): string exact numbers, sorted keys; raises on values JSON cannot hold
---@field decode fun(text: string): any, string? integers stay integers, `[]` stays an array
---@field null table the JSON null
---@field array fun(t?: table): table marks a table as a JSON array (`[]` even when empty)

---@class hypatos
---@field VERSION string the library's version
---@field json hypatos.JSON
---@field null table the JSON null (`hypatos.json.null`)
---@field resources table<string, fun(client: hypatos.Client): table> resource constructors by field name
local hypatos = {}

---Creates a client with the resources attached
---@param opts? hypatos.Options credentials default to HYPATOS_CLIENT_ID / HYPATOS_CLIENT_SECRET
---@return hypatos.Client
function hypatos.new(opts) end

---Makes an error value from a table (needs `kind` and `message`)
---@param fields table
---@return hypatos.Error
function hypatos.error(fields) end

---Whether `v` is a hypatos error value
---@param v any
---@return boolean
function hypatos.is_error(v) end

---@param value any
---@return string
function hypatos.json_encode(value) end

---@param text string
---@return any value
---@return string? problem
function hypatos.json_decode(text) end

---Marks a table as a JSON array (`[]` even when empty)
---@param t? table
---@return table
function hypatos.array(t) end

---Wall-clock seconds (the engine's clock)
---@return number
function hypatos.now() end

---Blocks the process (the libcurl driver's sleep); inside nginx use `ngx.sleep`
---@param seconds number
function hypatos.sleep(seconds) end

---The sleep and clock functions of a client's driver
---@param client hypatos.Client
---@return fun(seconds: number) sleep
---@return fun(): number now
function hypatos.clock(client) end

---The version of the libcurl in use
---@return string
function hypatos.curl_version() end

return hypatos
]]

--- The whole file.
-- @tparam[opt] string core_doc the text of doc/core.lua (read from disk when nil)
-- @treturn string
function M.render(core_doc)
  if not core_doc then
    local f = assert(io.open("doc/core.lua", "rb"))
    core_doc = f:read("a")
    f:close()
  end
  local options = M.ldoc_table(core_doc, "Options")
  local errors, kinds = M.ldoc_table(core_doc, "Error")
  local alias = {}
  for _, k in ipairs(kinds) do alias[#alias + 1] = ('---| "%s" # %s'):format(k.name, k.doc) end
  local classes = {}
  for _, res in ipairs(M.resources()) do classes[#classes + 1] = M.resource_class(res) end
  classes[#classes + 1] = enrichment_class()
  local head = HEAD:format(table.concat(alias, "\n"), field_lines(errors, false), field_lines(options, true),
    client_fields(), table.concat(classes, "\n\n"))
  return head .. TAIL
end

if arg and arg[0] and arg[0]:match("types%.lua$") then
  local text = M.render()
  if arg[1] == "--write" then
    os.execute("mkdir -p types")
    local f = assert(io.open(M.OUTPUT, "wb"))
    f:write(text)
    f:close()
  else
    io.write(text)
  end
end

return M
