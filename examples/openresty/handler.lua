--- examples/openresty/handler.lua — the content handlers of examples/openresty/nginx.conf.
-- Each runs in the content phase, so the client's calls go over cosockets and other
-- requests of the worker are served while they wait.
--
-- A call fails in one of two ways (README "Errors"):
-- * it raises for misuse: a mistake in the calling code, found before anything is sent — a
--   path parameter that is missing (`users:get(nil)`: "path parameter "id" is missing") or of
--   the wrong type, an unknown option. Raised inside a handler, nginx answers 500 and logs it.
--   So a value that comes from the request (`ngx.var.arg_id` is nil without `?id=`) is checked
--   before it reaches a call, and a bad one answers 400 (see `user`);
-- * everything else returns `nil, err`: what the API answered (`err.kind == "http"`,
--   `err.status` 404 for an unknown id), an empty id (`"invalid"`, nothing sent), the network,
--   timeouts, refused credentials. `answer_error` turns those into a status of this service.
local cjson = require "cjson"

local M = {}

--- Answers a JSON problem with `status`.
local function problem(status, kind, message)
  ngx.status = status
  ngx.say(cjson.encode({ error = kind, message = message }))
end

--- Answers an error value (`nil, err` of a call; errors never hold a secret): 404 when the API
-- has no such thing, 400 for data the library refused before sending, 504 for a timeout, and
-- 502 for the rest (the API's other refusals, the network, credentials: not the caller's fault).
local function answer_error(err)
  local status = 502
  if err.status == 404 then status = 404
  elseif err.kind == "invalid" then status = 400
  elseif err.kind == "timeout" then status = 504 end
  problem(status, err.kind, err.message)
end

--- GET /companies → every company the client may see (the first is the tenant).
function M.companies(client)
  local out = {}
  -- an iterator cannot return nil, err: each() raises the error value of a failed page
  local ok, err = pcall(function()
    for company in client.companies:each() do out[#out + 1] = { id = company.id, name = company.name } end
  end)
  if not ok then
    if type(err) == "table" then return answer_error(err) end
    error(err, 0) -- anything else is a bug here: nginx's 500, and its message in the error log
  end
  ngx.say(cjson.encode(out))
end

--- GET /users → the first five users (id, email).
function M.users(client)
  local page, err = client.users:list({ limit = 5 })
  if not page then return answer_error(err) end
  local out = {}
  for i, u in ipairs(page.data) do out[i] = { id = u.id, email = u.email } end
  ngx.say(cjson.encode(out))
end

--- GET /users/<id> (the location's regex admits only ids) and GET /user?id=<id> → one user.
-- @param id the id from the request: nil when `?id=` is missing
function M.user(client, id)
  -- `client.users:get(nil)` raises (misuse): the request's mistake, so check it here and
  -- answer 400 rather than let nginx answer 500
  if id == nil or id == "" then
    return problem(400, "bad_request", 'query parameter "id" is missing: GET /user?id=<user id>')
  end
  if not id:match("^%x+$") or #id ~= 24 then
    return problem(400, "bad_request", 'query parameter "id" must be a user id (24 hexadecimal digits)')
  end
  local user, err = client.users:get(id)
  if not user then return answer_error(err) end
  ngx.say(cjson.encode({ id = user.id, email = user.email, name = user.name, active = user.active }))
end

return M
