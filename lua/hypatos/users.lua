--- `client.users`: the users of the tenant (scope `users.read`).
--     client.users:get(id)            GET /users/{id}
--     client.users:list(query)        GET /users   (search, active, roles[], limit, offset)
--     client.users:pages(query), client.users:each(query)
--
-- Every method is generated from `hypatos.operations`.
-- @module hypatos.users
return require("hypatos.resource").class("users")
