--- Building blocks for resource objects (`client.users`, `client.documents`, …).
-- A resource is a table `{client = c}` whose methods call `c:request`.
-- Every method takes, as its last argument, an optional table of per-call
-- options: `timeout`, `deadline`, `max_retries`, `headers`.
-- @module hypatos.resource

local pager = require "hypatos.pager"

local M = {}

local CALL_OPTS = { timeout = true, deadline = true, max_retries = true, headers = true }

--- Merges per-call options into a request options table.
-- @tparam[opt] table opts the caller's per-call options (only read)
-- @tparam table req the request options built by the method (modified)
-- @treturn table req
function M.request_opts(opts, req)
  if opts == nil then return req end
  if type(opts) ~= "table" then
    error("hypatos: call options must be a table, got " .. type(opts), 3)
  end
  for k, v in pairs(opts) do
    if not CALL_OPTS[k] then
      error(("hypatos: unknown call option %q (allowed: timeout, deadline, max_retries, headers)")
        :format(tostring(k)), 3)
    end
    if k == "headers" and req.headers then
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
function M.want_table(v, what)
  if type(v) ~= "table" then error(("hypatos: %s must be a table, got %s"):format(what, type(v)), 3) end
  return v
end

--- Raises unless v is a string.
function M.want_string(v, what)
  if type(v) ~= "string" then error(("hypatos: %s must be a string, got %s"):format(what, type(v)), 3) end
  return v
end

--- Checks an options table against a key → type map; raises on misuse
-- ("<what>: unknown option …", "<what>: option … must be a …").
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

local DOWNLOAD_KEYS = { path = "string", progress = "function", timeout = "number", deadline = "number",
  max_retries = "number", headers = "table" }

--- GET raw bytes of `path` (with `{id}`), into memory or streamed to opts.path.
-- Used by files:download and emails:content. Sets meta.filename (decoded
-- X-Hy-Filename) and meta.content_type.
function M.download(client, path, id, opts, what)
  if opts ~= nil then M.check_opts(opts, DOWNLOAD_KEYS, what) else opts = {} end
  local value, meta = client:request("GET", path, {
    params = { id = id }, output = opts.path, raw = true, progress = opts.progress,
    timeout = opts.timeout, deadline = opts.deadline, max_retries = opts.max_retries,
    headers = opts.headers,
  })
  if value ~= nil then
    meta.filename = require("hypatos.filename").decode(meta.headers["x-hy-filename"])
    meta.content_type = meta.headers["content-type"]
  end
  return value, meta
end

--- Checks an optional query argument.
function M.check_query(query, level)
  if query ~= nil and type(query) ~= "table" then
    error("hypatos: query must be a table, got " .. type(query), (level or 2) + 1)
  end
  return query
end

--- A `get(id [, opts])` method for `path` (which holds `{id}`).
function M.getter(path)
  --- Retrieves one item by id. @treturn table item, meta | nil, err
  return function(self, id, opts)
    return self.client:request("GET", path, M.request_opts(opts, { params = { id = id } }))
  end
end

--- Adds `list(query [, opts])`, `pages(query [, opts])` and `each(query [, opts])`
-- for a paginated collection at `path` to the methods table `R`.
function M.listing(R, path)
  --- The page fetcher of pages and each: `fetch(query) → page, meta | nil, err`.
  local function fetcher(client, opts)
    return function(query)
      return client:request("GET", path, M.request_opts(opts, { query = query }))
    end
  end
  --- One page: `{data, limit, offset, totalCount}`, meta | nil, err.
  function R:list(query, opts)
    M.check_query(query)
    return self.client:request("GET", path, M.request_opts(opts, { query = query }))
  end
  --- A pager: `pager:next()` → page, meta | nil (done) | nil, err.
  function R:pages(query, opts)
    M.check_query(query)
    return pager.new(fetcher(self.client, opts), query)
  end
  --- Iterator over every item of every page; raises the error value if a page fails.
  function R:each(query, opts)
    M.check_query(query)
    return pager.each(fetcher(self.client, opts), query)
  end
  return R
end

--- Creates a resource class: `new(client)` returns `{client = client}` with
-- the methods of `R`, and a readable `tostring`.
function M.class(name, R)
  R.__index = R
  R.__name = "hypatos." .. name
  R.__tostring = function() return "hypatos.resource(" .. name .. ")" end
  return function(client) return setmetatable({ client = client }, R) end
end

return M
