--- Quickstart: the token and its scopes, the tenant company, every active user.
-- Credentials come from the environment: HYPATOS_CLIENT_ID, HYPATOS_CLIENT_SECRET
-- (and HYPATOS_BASE_URL for another server, e.g. the local one `make demo` starts).
--   lua5.4 examples/quickstart.lua
local hypatos = require "hypatos"
local textwidth = require "hypatos.textwidth" -- columns by display width: Jürgen, Zoë, 山田

local pad = textwidth.pad

local client = hypatos.new()

-- 1. A token, and what it allows.
local token = assert(client:token())
print("granted scopes: " .. table.concat(token.scopes, " "))
for _, needed in ipairs({ "companies.read", "users.read" }) do
  if not token.scope:find(needed, 1, true) then
    error("this client lacks the scope " .. needed)
  end
end

-- 2. The tenant: the first company the client can see.
local companies = assert(client.companies:list())
local tenant = companies.data[1]
print(("tenant: %s (%s)"):format(tenant.name, tenant.id))

-- 3. Every active user, page after page (50 per request).
local count = 0
for user in client.users:each({ active = true }) do
  count = count + 1
  local roles = {}
  for _, access in ipairs(user.companiesAccess) do
    if access.companyId == tenant.id then roles = access.roles end
  end
  print(("%3d  %s %s %s"):format(count, pad(user.name, 28), pad(user.email, 42), table.concat(roles, ",")))
end
print(("%d active users"):format(count))

-- What the rate limit looks like after all this.
local rl = client:rate_limit()
if rl then print(("quota: %s left of %s"):format(rl.remaining, rl.limit)) end
client:close() -- (plain Lua 5.4 could say `local client <close> = …`; LuaJIT cannot parse that)
