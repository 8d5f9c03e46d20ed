-- hypatos_mock.users — GET /v2/users (search, active, roles filters; paginated) and
-- GET /v2/users/{id}. Scope users.read. Records come from the seed data.

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"
local seed = require "hypatos_mock.seed"

local find, lower, ipairs = string.find, string.lower, ipairs

local M = {}

-- Valid role names, for checking the `roles` filter.
local ROLE_SET = {}
for _, r in ipairs(seed.ROLES) do ROLE_SET[r] = true end

-- True when one of the user's memberships carries a role in `wanted` (a set).
local function has_role(user, wanted)
  for _, access in ipairs(user.companiesAccess) do
    for _, r in ipairs(access.roles) do
      if wanted[r] then return true end
    end
  end
  return false
end

--- GET /v2/users
function M.list(req)
  local args = req:args()
  local limit, offset = util.paging(args)

  local search = util.single(args.search)
  if search == "" then search = nil end
  if search then search = lower(search) end

  local active = util.single(args.active)
  if active ~= nil then
    if active == "true" then active = true
    elseif active == "false" then active = false
    else util.raise(400, "Invalid active flag", "The active parameter must be true or false") end
  end

  local wanted
  local roles = util.multi(args.roles)
  if roles[1] ~= nil then
    wanted = {}
    for _, r in ipairs(roles) do
      if not ROLE_SET[r] then util.raise(400, "Invalid role", "Unknown role in the roles filter") end
      wanted[r] = true
    end
  end

  local data = state.data
  local items
  if not search and active == nil and not wanted then
    items = data.users
  else
    items = {}
    for _, u in ipairs(data.users) do
      if (active == nil or u.active == active)
        and (not search or find(data.user_search[u], search, 1, true))
        and (not wanted or has_role(u, wanted)) then
        items[#items + 1] = u
      end
    end
  end
  return 200, util.page(items, limit, offset)
end

--- GET /v2/users/{id}
function M.get(_, params)
  local id = util.object_id(params.id, "Invalid user ID", "user ID")
  local user = state.data.user_by_id[id]
  if not user then util.raise(404, "User does not exist", "The user with the given identifier does not exist") end
  return 200, util.record_json(user)
end

--- Register the users routes.
function M.register(r)
  r:add("GET", "/v2/users", M.list, { scope = "users.read" })
  r:add("GET", "/v2/users/{id}", M.get, { scope = "users.read" })
end

return M
