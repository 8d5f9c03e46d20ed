--- examples/openresty/handler.lua — the content handlers of examples/openresty/nginx.conf.
-- Each runs in the content phase, so the client's calls go over cosockets and other
-- requests of the worker are served while they wait.
local cjson = require "cjson"

local M = {}

--- Answers an error value as a JSON problem (never with a secret: errors hold none).
local function fail(err)
  ngx.status = err.status and err.status < 500 and err.status or 502
  ngx.say(cjson.encode({ error = err.kind, message = err.message }))
end

--- GET /companies → every company the client may see (the first is the tenant).
function M.companies(client)
  local out = {}
  local ok, err = pcall(function()
    for company in client.companies:each() do out[#out + 1] = { id = company.id, name = company.name } end
  end)
  if not ok then return fail(type(err) == "table" and err or { kind = "error", message = tostring(err) }) end
  ngx.say(cjson.encode(out))
end

--- GET /users → the first five users (id, email).
function M.users(client)
  local page, err = client.users:list({ limit = 5 })
  if not page then return fail(err) end
  local out = {}
  for i, u in ipairs(page.data) do out[i] = { id = u.id, email = u.email } end
  ngx.say(cjson.encode(out))
end

--- GET /users/<id> → one user.
function M.user(client, id)
  local user, err = client.users:get(id)
  if not user then return fail(err) end
  ngx.say(cjson.encode({ id = user.id, email = user.email, name = user.name, active = user.active }))
end

return M
