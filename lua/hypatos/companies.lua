--- `client.companies`: companies the client may see (scope `companies.read`).
--     client.companies:get(id)        GET /companies/{id}
--     client.companies:list(query)    GET /companies  (not paginated: every company in one answer)
--     client.companies:pages(query), client.companies:each(query)  (one fetch)
--
-- The first company of the list is the tenant. Every method is generated
-- from `hypatos.operations`.
-- @module hypatos.companies
return require("hypatos.resource").class("companies")
