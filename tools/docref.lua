--- tools/docref.lua — the "Resource methods" topic of the HTML reference, from
-- lua/hypatos/operations.lua (so the list of methods is never stale).
--   lua5.4 tools/docref.lua [out]   write it to out (default build/docs-src/resource-methods.md)
-- make docs runs it before LDoc; config.ld lists the output as a topic.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local ops = require "hypatos.operations"

local M = {}

local BODY = {
  json = "a table, sent as JSON",
  merge_patch = "a table, sent as a JSON merge patch (`application/merge-patch+json`) "
    .. "with the path's `externalId` put into it; `hypatos.null` removes a field",
  text = "a string, sent as `text/plain`",
  query = "a table of query parameters (API names; arrays repeat the key)",
}

local SOURCES = { spec = "the vendor's 2.15 OpenAPI document", docs = "the vendor's 2.51 reference pages",
  clients = "real integrations only", none = "no public source (reachable, but may not exist)" }

--- The Lua signature of a method: `name(a, b [, opts])` (opts added unless already last).
-- @tparam string name the method name
-- @tparam table args the positional argument names
-- @tparam[opt] string resource "client": no call options
-- @treturn string
function M.signature(name, args, resource)
  if resource == "client" then return name .. "(" .. table.concat(args, ", ") .. ")" end
  local n = #args
  if args[n] == "opts" then
    if n == 1 then return name .. "(opts)" end   -- the options are the argument (files:upload)
    n = n - 1
  end
  local list = table.concat(args, ", ", 1, n)
  return ("%s(%s)"):format(name, list == "" and "[opts]" or (list .. " [, opts]"))
end

--- The resources in table order ("client" first), each once.
-- @treturn table list of resource names
function M.resources()
  local out, seen = {}, {}
  for _, o in ipairs(ops) do
    if not seen[o.resource] then
      seen[o.resource] = true
      out[#out + 1] = o.resource
    end
  end
  return out
end

--- The markdown text of the topic.
-- @treturn string
function M.render()
  local out = {}
  local function w(s) out[#out + 1] = s or "" end
  w("# Resource methods")
  w()
  w("Every method of `client.<resource>`, generated from `lua/hypatos/operations.lua` by")
  w("`tools/docref.lua` (`make docs`). Each returns `value, meta` on success and `nil, err`")
  w("on failure (see `hypatos.core.Error`); misuse (a wrong argument type, an unknown call")
  w("option) raises. `opts`, always last and optional, are the per-call options `timeout`,")
  w("`deadline`, `max_retries` and `headers` (and the extra keys a method names).")
  w("List operations also get `pages(query [, opts])` → a pager (`pager:next()` → page, meta |")
  w("nil when done | nil, err) and `each(query [, opts])` → an iterator over every item, which")
  w("raises the error value if a page fails.")
  for _, res in ipairs(M.resources()) do
    w()
    local title = res == "client" and "client" or ("client." .. res)
    w("## " .. title)
    for _, o in ipairs(ops.of(res)) do
      local self_name = res == "client" and "client" or res:match("([^.]+)$")
      w()
      w(("### %s:%s"):format(self_name, M.signature(o.name, o.args, res)))
      w()
      w(("`%s %s` — scope `%s`; %s; %s."):format(o.method, o.path, o.scope,
        o.idempotent and "idempotent: retried after any transient failure"
          or "**not idempotent**: re-sent only when it certainly did not reach the server, or on 429",
        "known from " .. SOURCES[o.source]
          .. (o.operation_id and (" (operationId `" .. o.operation_id .. "`)") or "")))
      if #o.params > 0 then
        w()
        w(("Path parameters (percent-encoded; an empty, `.` or `..` value is refused): %s."):format(
          table.concat(o.args, ", ", 1, #o.params)))
      end
      if o.body then
        w()
        w(("`%s`: %s."):format(o.args[#o.params + 1], BODY[o.body]))
      end
      if o.query_opts then
        local names = {}
        for lua_name, api in pairs(o.query_opts) do names[#names + 1] = ("`%s` (→ `?%s=`)"):format(lua_name, api) end
        table.sort(names)
        w()
        w("Extra call options sent as query parameters: " .. table.concat(names, ", ") .. ".")
      end
      if o.paginated ~= nil then
        w()
        w(o.paginated and "Paginated (offset/limit, 50 per page by default): also `pages` and `each`."
          or "Not paginated by the API (one answer holds everything): `pages` and `each` fetch it once.")
      end
      if o.special then
        w()
        w("Written by hand in its module (see the module's page for its options and results).")
      end
      if o.note then
        w()
        w("Note: " .. o.note .. ".")
      end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

if arg and arg[0] and arg[0]:match("docref%.lua$") then
  local path = arg[1] or "build/docs-src/resource-methods.md"
  local dir = path:match("^(.*)/[^/]*$")
  if dir then os.execute(("mkdir -p '%s'"):format(dir)) end
  local f = assert(io.open(path, "wb"))
  f:write(M.render())
  f:close()
end

return M
