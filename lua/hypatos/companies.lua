--- `client.companies`: companies the client may see (scope `companies.read`).
--   client.companies:get(id)        GET /companies/{id}
--   client.companies:list(query)    GET /companies
--   client.companies:pages(query), client.companies:each(query)
-- The first company of the list is the tenant.
-- @module hypatos.companies
local resource = require "hypatos.resource"

local Companies = {}
Companies.get = resource.getter("/companies/{id}")
resource.listing(Companies, "/companies")

return resource.class("companies", Companies)
