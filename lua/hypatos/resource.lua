--- Building blocks for resource objects (`client.users`, `client.documents`, …).
-- A resource is a table `{client = c}` whose methods call `c:request`. The
-- methods of plain operations are generated from `hypatos.operations`; a
-- resource module writes by hand only what is special (uploads, downloads,
-- validation before sending, waiting).
-- Every method takes, as its last argument, an optional table of per-call
-- options: `timeout`, `deadline`, `max_retries`, `headers`.
-- @internal hypatos.resource

local core = require "hypatos.core"
local pager = require "hypatos.pager"
local operations = require "hypatos.operations"

local M = {}

local CALL_OPTS = { timeout = true, deadline = true, max_retries = true, headers = true }

--- Merges per-call options into a request options table.
-- @tparam[opt] table opts the caller's per-call options (only read)
-- @tparam table req the request options built by the method (modified)
-- @tparam[opt] table extra more allowed keys (e.g. an operation's query_opts), skipped here
-- @tparam[opt=3] number level the error level for misuse
-- @treturn table req
function M.request_opts(opts, req, extra, level)
  level = level or 3
  if opts == nil then return req end
  if type(opts) ~= "table" then
    error("hypatos: call options must be a table, got " .. type(opts), level)
  end
  for k, v in pairs(opts) do
    if extra and extra[k] then -- luacheck: ignore 542
      -- handled by the caller (no goto: the module also loads in PUC-Rio Lua 5.1)
    elseif not CALL_OPTS[k] then
      local allowed = "timeout, deadline, max_retries, headers"
      if extra then
        for name in pairs(extra) do allowed = allowed .. ", " .. name end
      end
      error(("hypatos: unknown call option %q (allowed: %s)"):format(tostring(k), allowed), level)
    elseif k == "headers" and req.headers then
      local merged = {}
      for hk, hv in pairs(req.headers) do merged[hk] = hv end
      for hk, hv in pairs(v) do merged[hk] = hv end
      req.headers = merged
    else
      req[k] = v
    end
  end
  return req
end

--- Raises unless v is a table ("<what> must be a table, got …").
-- @param v the value
-- @tparam string what its name in the message
-- @tparam[opt=3] number level the error level
function M.want_table(v, what, level)
  if type(v) ~= "table" then
    error(("hypatos: %s must be a table, got %s"):format(what, type(v)), level or 3)
  end
  return v
end

--- Raises unless v is a string.
-- @param v the value
-- @tparam string what its name in the message
-- @tparam[opt=3] number level the error level
function M.want_string(v, what, level)
  if type(v) ~= "string" then
    error(("hypatos: %s must be a string, got %s"):format(what, type(v)), level or 3)
  end
  return v
end

--- Checks an options table against a key → type map; raises on misuse
-- ("<what>: unknown option …", "<what>: option … must be a …"), at the level
-- of the caller of the method that calls this.
-- @tparam table opts the caller's options (only read)
-- @tparam table keys option name → `type()` name
-- @tparam string what the method, for the message
-- @treturn table opts
function M.check_opts(opts, keys, what)
  if type(opts) ~= "table" then
    error(("hypatos: %s expects an options table, got %s"):format(what, type(opts)), 3)
  end
  for k, v in pairs(opts) do
    local want = keys[k]
    if not want then error(("hypatos: %s: unknown option %q"):format(what, tostring(k)), 3) end
    if type(v) ~= want then
      error(("hypatos: %s: option %q must be a %s, got %s"):format(what, k, want, type(v)), 3)
    end
  end
  return opts
end

--- Checks an optional query argument: nil or a table, else raises
-- "query must be a table, got …".
-- @param query the argument
-- @tparam[opt=2] number level the error level, seen from the caller of check_query
-- @treturn table|nil query
function M.check_query(query, level)
  if query ~= nil and type(query) ~= "table" then
    error("hypatos: query must be a table, got " .. type(query), (level or 2) + 1)
  end
  return query
end

--- The URL of operation `o` with its path parameters filled in (for error values).
-- @tparam table client
-- @tparam table o an operation
-- @tparam[opt] table params path parameter values by name
-- @treturn string
function M.url(client, o, params)
  local path = o.path:gsub("{([%w_]+)}", function(p)
    local v = params and params[p]
    return v ~= nil and tostring(v):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)
      or "{" .. p .. "}"
  end)
  return client:options().base_url .. path
end

--- An "invalid" error value for operation `o`: nothing was sent.
-- @tparam table client the client (for the URL in the error)
-- @tparam table o the operation
-- @tparam string message what is wrong
-- @tparam[opt] table params path parameter values by name
-- @treturn nil
-- @treturn table the error (`kind = "invalid"`)
function M.invalid(client, o, message, params)
  return nil, core.error({ kind = "invalid", message = message, method = o.method, url = M.url(client, o, params) })
end

--- Sends operation `o` for resource object `self`.
-- The arguments are those of `o.args` (path parameters, then the body or
-- query argument), then the per-call options.
-- @tparam table self the resource object (`self.client`)
-- @tparam table o the operation (from `hypatos.operations`)
-- @tparam number level error level for misuse, seen from the caller of `invoke`
-- @param ... the method's arguments
-- @return what `client:request` returns
function M.invoke(self, o, level, ...)
  local args = { ... }
  local here, helper = level + 1, level + 2   -- error levels: raised in invoke, in a helper it calls
  local what = o.resource .. ":" .. o.name
  local params
  for i, p in ipairs(o.params) do
    local v = args[i]
    if v == nil then
      error(("hypatos: %s: path parameter %q is missing"):format(what, p), here)
    elseif type(v) ~= "string" and (type(v) ~= "number" or v ~= math.floor(v)) then
      error(("hypatos: %s: path parameter %q must be a string, got %s"):format(what, p,
        type(v) == "number" and "a non-integer number" or type(v)), here)
    end
    params = params or {}
    params[p] = v
  end
  local req = { params = params, idempotent = o.idempotent }
  local i = #o.params + 1
  if o.body == "json" then
    req.json = M.want_table(args[i], what .. " " .. o.args[i], helper)
  elseif o.body == "merge_patch" then
    local changes = M.want_table(args[i], what .. " " .. o.args[i], helper)
    local ext = params.externalId
    if changes.externalId ~= nil and changes.externalId ~= ext then
      return M.invalid(self.client, o, ("the changes hold externalId %q, the path %q: a patch cannot change it")
        :format(tostring(changes.externalId), tostring(ext)), params)
    end
    local body = {}
    for k, v in pairs(changes) do body[k] = v end
    body.externalId = ext
    req.json = body
    req.headers = { ["Content-Type"] = "application/merge-patch+json" }
  elseif o.body == "text" then
    req.body = M.want_string(args[i], what .. " " .. o.args[i], helper)
    req.content_type = "text/plain; charset=utf-8"
  elseif o.body == "query" then
    req.query = M.check_query(args[i], here)
  end
  if o.body then i = i + 1 end
  local opts = args[i]
  if opts ~= nil and o.query_opts then
    if type(opts) ~= "table" then error("hypatos: call options must be a table, got " .. type(opts), here) end
    for name, api in pairs(o.query_opts) do
      if opts[name] ~= nil then
        req.query = req.query or {}
        req.query[api] = tostring(opts[name])
      end
    end
  end
  M.request_opts(opts, req, o.query_opts, helper)
  return self.client:request(o.method, o.path, req)
end

--- How a client's calls may go straight to the core: set by `hypatos` (init.lua), which
-- knows the client's driver. Returns a function and its first argument: `client:call` and
-- the client for libcurl outside a `client:map` task, the task's `call` and the task inside
-- one, `hypatos.ngx.call` and the client inside nginx; nothing when calls take
-- `client:request`.
-- @tparam table client
-- @treturn[1] function `fn(recv, op, …)` → value, meta | nil, err | nothing
-- @return[1] recv its first argument
-- @treturn[2] nil
function M.direct(client) return nil end -- luacheck: ignore 212 (replaced by init.lua)

--- A method for operation `o`: `method(self, …)` → the client's direct call of the
-- operation compiled once (`core.op`; `M.direct`), when the call needs nothing more (no
-- call options, arguments of the usual types) and the client's driver allows; else
-- `invoke(self, o, …)`.
local function method_for(o)
  local body = o.body == "json" and "json" or o.body == "query" and "query" or nil
  local op = (body or not o.body) and not o.query_opts and core.op(o.method, o.path, o.idempotent and true or false,
    body)
  return function(self, ...)
    if op then
      local fn, recv = M.direct(self.client)
      if fn then
        local a, b = fn(recv, op, ...)
        if a ~= nil or b ~= nil then return a, b end -- nothing at all: the general path
      end
    end
    local a, b = M.invoke(self, o, 2, ...)
    return a, b
  end
end

--- Adds `list(query [, opts])`, `pages(query [, opts])` and `each(query [, opts])`
-- for the list operation `o` to the methods table `R`.
-- `o.paginated == false`: one answer holds everything; pages/each fetch it once.
local function add_listing(R, o)
  local single = o.paginated == false
  local function fetcher(client, opts)
    return function(query)
      return client:request(o.method, o.path, M.request_opts(opts, { query = query }, nil, 4))
    end
  end
  local one_page = method_for(o)
  --- One page: `{data, limit, offset, totalCount}`, meta | nil, err. `limit` and `offset`
  -- are checked and `limit` clamped as pages and each do (not for an unpaginated list).
  -- @tparam[opt] table query query parameters (API names)
  -- @param[opt] ... call options
  -- @function list
  -- @local
  R[o.name] = function(self, query, ...)
    if not single and type(query) == "table" then query = pager.page_query(query) end
    return one_page(self, query, ...)
  end
  --- A pager: `pager:next()` → page, meta | nil (done) | nil, err.
  -- @tparam[opt] table query query parameters (API names); `limit`/`offset` honoured
  -- @tparam[opt] table opts call options, for every page
  function R:pages(query, opts)
    M.check_query(query)
    M.request_opts(opts, {}, nil, 3)
    local p = pager.new(fetcher(self.client, opts), query, single)   -- not a tail call: error levels
    return p
  end
  --- Iterator over every item of every page; raises the error value if a page fails.
  -- @tparam[opt] table query query parameters (API names)
  -- @tparam[opt] table opts call options, for every page
  function R:each(query, opts)
    M.check_query(query)
    M.request_opts(opts, {}, nil, 3)
    return pager.each(fetcher(self.client, opts), query, single)
  end
end

--- Fills the methods table `R` of resource `name` from the operations table:
-- a method per plain operation (list operations also get pages and each).
-- Operations marked `special` must already be in `R` (written by hand).
-- @tparam string name the resource ("documents", "enrichment.invoices", …)
-- @tparam table R the methods table
-- @treturn table R
function M.generate(name, R)
  for _, o in ipairs(operations.of(name)) do
    if o.special then
      assert(type(R[o.name]) == "function", "hypatos: " .. o.call .. " is special but not written")
    elseif o.paginated ~= nil then
      add_listing(R, o)
    else
      R[o.name] = method_for(o)
    end
  end
  return R
end

--- Creates a resource class: `new(client)` returns `{client = client}` with
-- the methods of `R` (completed from the operations table), and a readable
-- `tostring`.
-- @tparam string name the resource name
-- @tparam[opt] table R hand-written methods
-- @treturn function new(client)
function M.class(name, R)
  R = M.generate(name, R or {})
  R.__index = R
  R.__name = "hypatos." .. name
  R.__tostring = function() return "hypatos.resource(" .. name .. ")" end
  return function(client) return setmetatable({ client = client }, R) end
end

local DOWNLOAD_KEYS = { path = "string", progress = "function", timeout = "number", deadline = "number",
  max_retries = "number", headers = "table" }

--- GET raw bytes of operation `o` (one `{id}` parameter), into memory or
-- streamed to opts.path. Used by files:download and emails:content. Sets
-- meta.filename (decoded X-Hy-Filename; never use it as a path without
-- `hypatos.filename.safe`) and meta.content_type.
-- @tparam table client the client
-- @tparam table o the operation
-- @tparam string id the value of its path parameter
-- @tparam[opt] table opts `path`, `progress`, `timeout`, `deadline`, `max_retries`, `headers`
--   (anything else raises)
-- @treturn[1] string|true the bytes, or true when written to `opts.path`; meta
-- @treturn[2] nil, err
function M.download(client, o, id, opts)
  if opts ~= nil then M.check_opts(opts, DOWNLOAD_KEYS, o.resource .. ":" .. o.name) else opts = {} end
  local value, meta = client:request(o.method, o.path, {
    params = { [o.params[1]] = id }, output = opts.path, raw = true, progress = opts.progress,
    timeout = opts.timeout, deadline = opts.deadline, max_retries = opts.max_retries,
    headers = opts.headers,
  })
  if value ~= nil then
    meta.filename = require("hypatos.filename").decode(meta.headers["x-hy-filename"])
    meta.content_type = meta.headers["content-type"]
  end
  return value, meta
end

--- The operation `name` of resource `res` (raises if the table lacks it).
-- @tparam string res the resource, e.g. "files"
-- @tparam string name the method name, e.g. "upload"
-- @treturn table the operation
function M.op(res, name)
  for _, o in ipairs(operations.of(res)) do
    if o.name == name then return o end
  end
  error("hypatos: no operation " .. res .. ":" .. name)
end

return M
