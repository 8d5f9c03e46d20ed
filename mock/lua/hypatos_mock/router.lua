-- hypatos_mock.router — a small router: templates like "/v2/users/{id}" map methods to
-- handlers. Literal templates are found by one table lookup; templates with parameters
-- are tried in the order they were added. Matching works on the raw (still
-- percent-encoded) path, so an encoded "/" inside an id stays inside its segment; the
-- captured parameters are percent-decoded.

local ngx = ngx
local setmetatable, ipairs, pairs, type, assert = setmetatable, ipairs, pairs, type, assert
local find, sub, concat, sort = string.find, string.sub, table.concat, table.sort

local M = {}
M.__index = M

--- A new, empty router.
function M.new()
  return setmetatable({ exact = {}, patterned = {} }, M)
end

-- Split a template into pieces: literal strings and parameter names ({name = ...}).
-- A parameter must fill a whole path segment.
local function compile(template)
  local pieces, pos = {}, 1
  while true do
    local s, e, name = find(template, "{([%w_]+)}", pos)
    if not s then break end
    if s > pos then pieces[#pieces + 1] = sub(template, pos, s - 1) end
    assert(sub(template, s - 1, s - 1) == "/", "router: a parameter must start a path segment")
    local after = sub(template, e + 1, e + 1)
    assert(after == "" or after == "/", "router: a parameter must end its path segment")
    pieces[#pieces + 1] = { name = name }
    pos = e + 1
  end
  if pos <= #template then pieces[#pieces + 1] = sub(template, pos) end
  return pieces
end

-- Match `path` against compiled pieces with plain string operations (fast under
-- LuaJIT); returns a table of percent-decoded parameters, or nil.
local function match_pieces(pieces, path)
  local pos, n, params = 1, #path, nil
  for i = 1, #pieces do
    local p = pieces[i]
    if type(p) == "string" then
      local last = pos + #p - 1
      if sub(path, pos, last) ~= p then return nil end
      pos = last + 1
    else
      local slash = find(path, "/", pos, true)
      local stop = slash and slash - 1 or n
      if stop < pos then return nil end -- empty segment
      params = params or {}
      params[p.name] = ngx.unescape_uri(sub(path, pos, stop))
      pos = stop + 1
    end
  end
  if pos ~= n + 1 then return nil end
  return params
end

--- Register `handler` for `method` on `template`.
-- @param opts optional route options, e.g. `{scope = "users.read"}` or `{public = true}`
--   (public: no bearer token needed). Handlers are called as `handler(req, params)` and
--   return `status, body, headers` (body: table → JSON, string → raw) or nothing when
--   they sent the response themselves.
function M:add(method, template, handler, opts)
  local route
  if not find(template, "{", 1, true) then
    route = self.exact[template]
    if not route then
      route = { template = template, methods = {} }
      self.exact[template] = route
    end
  else
    for _, r in ipairs(self.patterned) do
      if r.template == template then route = r end
    end
    if not route then
      route = { template = template, pieces = compile(template), methods = {} }
      self.patterned[#self.patterned + 1] = route
    end
  end
  route.methods[method] = { handler = handler, opts = opts or {}, key = method .. " " .. template }
  return self
end

--- Find the handler for a request.
-- @return entry `{handler, opts, key}` and params on success;
--   nil, allowed-methods string when the path exists but not for this method;
--   nil when no route matches.
function M:match(method, path)
  local allowed
  local route = self.exact[path]
  if route then
    local e = route.methods[method]
    if e then return e, {} end
    allowed = route.methods
  end
  for _, r in ipairs(self.patterned) do
    local params = match_pieces(r.pieces, path)
    if params then
      local e = r.methods[method]
      if e then return e, params end
      allowed = allowed or r.methods
    end
  end
  if allowed then
    local list = {}
    for m in pairs(allowed) do list[#list + 1] = m end
    sort(list)
    return nil, concat(list, ", ")
  end
  return nil
end

--- Every registered route as "METHOD /template", sorted.
function M:list()
  local out = {}
  for _, route in pairs(self.exact) do
    for _, e in pairs(route.methods) do out[#out + 1] = e.key end
  end
  for _, route in ipairs(self.patterned) do
    for _, e in pairs(route.methods) do out[#out + 1] = e.key end
  end
  sort(out)
  return out
end

return M
