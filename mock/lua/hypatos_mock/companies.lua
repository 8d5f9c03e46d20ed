-- hypatos_mock.companies — GET /v2/companies (paginated although the vendor says it is
-- not; same rules as every list) and GET /v2/companies/{id}. Scope companies.read.

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"

local M = {}

--- GET /v2/companies
function M.list(req)
  local limit, offset = util.paging(req:args())
  return 200, util.page(state.data.companies, limit, offset)
end

--- GET /v2/companies/{id}
function M.get(_, params)
  local id = util.object_id(params.id, "Invalid company ID", "company ID")
  local company = state.data.company_by_id[id]
  if not company then
    util.raise(404, "Company does not exists", "The company with the given identifier does not exist")
  end
  return 200, util.record_json(company)
end

--- Register the companies routes.
function M.register(r)
  r:add("GET", "/v2/companies", M.list, { scope = "companies.read" })
  r:add("GET", "/v2/companies/{id}", M.get, { scope = "companies.read" })
end

return M
