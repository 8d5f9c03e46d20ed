--- Offset/limit pagination over the API's list envelopes.
-- A list answer is `{data = {...}, limit = n, offset = n, totalCount = n}`.
-- Pages are fetched with the API's maximum page size (50) unless the query
-- sets `limit`. Iteration stops on an empty or short page (not on
-- `totalCount`, which can change while iterating or be missing), and when
-- the server shows it ignores paging (it answers with another offset, or
-- with more items than asked for).
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

--- Creates a pager.
-- @tparam function fetch `fetch(query) → envelope, meta | nil, err`
-- @tparam[opt] table query query parameters (API names); `offset`/`limit` honoured
-- @treturn Pager
function M.new(fetch, query)
  if query ~= nil and type(query) ~= "table" then
    error("hypatos: query must be a table, got " .. type(query), 3)
  end
  local q = copy(query)
  return setmetatable({
    fetch = fetch,
    query = q,
    offset = q.offset or 0,
    limit = q.limit or M.MAX_LIMIT,
    done = false,
    pages = 0,
  }, Pager)
end

--- Fetches the next page.
-- @treturn[1] table the page envelope (`data`, `limit`, `offset`, `totalCount`) and its meta
-- @treturn[2] nil when there are no more pages
-- @treturn[3] nil
-- @treturn[3] table the error (the pager can be asked again: it retries the same page)
function Pager:next()
  if self.done then return nil end
  local q = copy(self.query)
  q.offset, q.limit = self.offset, self.limit
  local page, meta = self.fetch(q)
  if page == nil then return nil, meta end
  local items = type(page) == "table" and page.data
  if type(items) ~= "table" then
    self.done = true
    return nil, core.error({ kind = "decode", message = "list answer has no data array",
      body = page, status = meta and meta.status })
  end
  local n = #items
  self.pages = self.pages + 1
  local asked = self.limit
  if n == 0 or n < asked
     or (type(page.offset) == "number" and page.offset ~= self.offset)
     or n > asked then
    self.done = true
  end
  self.offset = self.offset + n
  if n == 0 and self.pages > 1 then return nil end
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
-- @treturn function iterator yielding `item, index`
function M.each(fetch, query)
  local pager = M.new(fetch, query)
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
