--- `client.users`: the users of the tenant (scope `users.read`).
--   client.users:get(id)            GET /users/{id}
--   client.users:list(query)        GET /users   (search, active, roles[], limit, offset)
--   client.users:pages(query), client.users:each(query)
-- @module hypatos.users
local resource = require "hypatos.resource"

local Users = {}
Users.get = resource.getter("/users/{id}")
resource.listing(Users, "/users")

return resource.class("users", Users)
