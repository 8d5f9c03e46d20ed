-- hypatos_mock.companies — GET /v2/companies and GET /v2/companies/{id}. Scope
-- companies.read. Like the real API ("For now pagination is not implemented"), the list
-- holds every company whatever `limit` and `offset` say; the envelope echoes the limit
-- (clamped) and offset that were asked for, so a client that pages over it would see the
-- same companies again.

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"

local M = {}

--- GET /v2/companies
function M.list(req)
  local limit, offset = util.paging(req:args())
  local all = state.data.companies
  local page = util.page(all, #all, 0)
  return 200, (page:gsub('"limit":%d+,"offset":%d+}$', '"limit":' .. limit .. ',"offset":' .. offset .. '}'))
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
