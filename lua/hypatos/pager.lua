--- Offset/limit pagination over the API's list envelopes.
-- A list answer is `{data = {...}, limit = n, offset = n, totalCount = n}`.
-- Pages are fetched with the API's maximum page size (50) unless the query
-- sets `limit`; a larger `limit` is sent as 50 (the server clamps it anyway).
-- `limit` and `offset` may be integers or strings of digits ("20"); anything
-- else raises, naming the key. Iteration stops on an empty or short page (not
-- on `totalCount`, which can change while iterating or be missing) — a page is
-- short against the limit the server says it applied (the envelope's
-- `limit`), else the limit sent — and when the server shows it ignores paging
-- (it answers with another offset, or with more items than asked for); a page
-- the server repeats is never yielded twice. Collections the API does not
-- paginate (companies) are fetched once.
-- @module hypatos.pager

local core = require "hypatos.core"

local M = {}

--- The API's largest page size.
M.MAX_LIMIT = 50

local Pager = {}
Pager.__index = Pager

--- Copies a query table (never modifies the caller's).
local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

--- A non-negative integer from a query's `limit`/`offset` (number or digit string);
-- raises naming the key otherwise.
local function nonneg(v, key, default, level)
  if v == nil then return default end
  local n = v
  if type(v) == "string" and v:match("^%s*%d+%s*$") then n = tonumber(v) end
  if type(n) == "number" and n >= 0 and n == math.floor(n) and n < 2 ^ 31 then
    return math.floor(n)
  end
  error(("hypatos: query %q must be a non-negative integer (a number or a string of digits), got %s")
    :format(key, type(v) == "string" and ("%q"):format(v) or type(v) == "number" and tostring(v) or type(v)), level + 1)
end

--- A copy of a `list` call's query with `limit` and `offset` checked as pages and each check
-- them: a number or a string of digits, else an error naming the key (at the caller of the
-- caller's caller: the user's line); a `limit` above the API maximum (or 0) becomes
-- `MAX_LIMIT`, as the server would clamp it. A query without either is returned as it is.
-- @tparam table query the query (API names)
-- @treturn table the query to send
function M.page_query(query)
  if query.limit == nil and query.offset == nil then return query end
  local q = copy(query)
  if q.offset ~= nil then q.offset = nonneg(q.offset, "offset", 0, 3) end
  if q.limit ~= nil then
    local limit = nonneg(q.limit, "limit", M.MAX_LIMIT, 3)
    q.limit = (limit == 0 or limit > M.MAX_LIMIT) and M.MAX_LIMIT or limit
  end
  return q
end

--- Creates a pager.
-- @tparam function fetch `fetch(query) → envelope, meta | nil, err`
-- @tparam[opt] table query query parameters (API names); `offset`/`limit` honoured
-- @tparam[opt] boolean single the collection is not paginated: one fetch, query sent as given
-- @treturn Pager
function M.new(fetch, query, single)
  if query ~= nil and type(query) ~= "table" then
    error("hypatos: query must be a table, got " .. type(query), 3)
  end
  local q = copy(query)
  local self = setmetatable({ fetch = fetch, query = q, single = single, done = false, pages = 0 }, Pager)
  if not single then
    self.offset = nonneg(q.offset, "offset", 0, 3)
    self.limit = math.min(nonneg(q.limit, "limit", M.MAX_LIMIT, 3), M.MAX_LIMIT)
    if self.limit == 0 then self.limit = M.MAX_LIMIT end
  end
  return self
end

--- Fetches the next page.
-- @treturn[1] table the page envelope (`data`, `limit`, `offset`, `totalCount`) and its meta
-- @treturn[2] nil when there are no more pages
-- @treturn[3] nil
-- @treturn[3] table the error (the pager can be asked again: it retries the same page)
function Pager:next()
  if self.done then return nil end
  local q = copy(self.query)
  if not self.single then q.offset, q.limit = self.offset, self.limit end
  local page, meta = self.fetch(q)
  if page == nil then return nil, meta end
  local items = type(page) == "table" and page.data
  if type(items) ~= "table" then
    self.done = true
    return nil, core.error({ kind = "decode", message = "list answer has no data array",
      body = page, status = meta and meta.status, outcome = "done" })
  end
  local n = #items
  self.pages = self.pages + 1
  if self.single then
    self.done = true
    return page, meta
  end
  local applied = self.limit
  if type(page.limit) == "number" and page.limit == math.floor(page.limit) then
    if page.limit > 0 and page.limit < applied then applied = page.limit end
  end
  local moved = type(page.offset) == "number" and page.offset ~= self.offset
  if n == 0 or n < applied or moved or n > self.limit then
    self.done = true
  end
  self.offset = self.offset + n
  -- an empty last page, or a later page the server answered from another offset
  -- (it ignores paging: that page repeats what was yielded), ends the iteration
  if self.pages > 1 and (n == 0 or moved) then return nil end
  return page, meta
end

--- Iterates over pages: `for page in pager:iter() do … end` (raises on error).
function Pager:iter()
  return function()
    local page, err = self:next()
    if page == nil and err ~= nil then error(err, 0) end
    return page
  end
end

--- Iterates over items across pages, for a generic `for`.
-- Raises the error value when a page fails (catch with pcall if needed).
-- @tparam function fetch see `new`
-- @tparam[opt] table query
-- @tparam[opt] boolean single see `new`
-- @treturn function iterator yielding `item, index`
function M.each(fetch, query, single)
  local pager = M.new(fetch, query, single)
  local items, i, count = {}, 0, 0
  return function()
    while true do
      i = i + 1
      if items[i] ~= nil then
        count = count + 1
        return items[i], count
      end
      local page, err = pager:next()
      if page == nil then
        if err ~= nil then error(err, 0) end
        return nil
      end
      items, i = page.data, 0
    end
  end
end

return M
