-- hypatos_mock.einvoices — the e-invoices group, which the vendor names but does not
-- describe; here so that clients can exercise raw (XML) bodies in both directions:
--
--   POST /v2/e-invoices       (documents.write) XML body (application/xml or text/xml),
--                             streamed to disk → 201 {id}
--   GET  /v2/e-invoices/{id}  (documents.read) the stored XML, Content-Type application/xml
--
-- Errors: 400 "Content type not supported", 400 "Payload data is invalid" (empty body),
-- 404 "E-invoice does not exist".

local state = require "hypatos_mock.state"
local util = require "hypatos_mock.util"
local files = require "hypatos_mock.files"

local os = os

local M = {}

state.on_reset(function()
  state.data.einvoices = {}
end)

--- POST /v2/e-invoices
function M.create(req)
  local mt = util.media_type()
  if mt ~= "application/xml" and mt ~= "text/xml" then
    util.raise(400, "Content type not supported", "The e-invoice must be sent as application/xml or text/xml")
  end
  local id = util.uuid()
  local path, size = files.store_body(req, "einvoice-" .. id)
  if size == 0 then
    os.remove(path)
    util.raise(400, "Payload data is invalid", "The e-invoice must not be empty")
  end
  state.data.einvoices[id] = { id = id, path = path, size = size }
  return 201, { id = id }
end

--- GET /v2/e-invoices/{id}
function M.get(req, params)
  local rec = state.data.einvoices[params.id]
  if not rec then
    util.raise(404, "E-invoice does not exist", "The e-invoice with given identifier does not exist")
  end
  util.stream(req, 200, rec, rec.size, { ["Content-Type"] = "application/xml" })
end

--- Register the e-invoices routes.
function M.register(r)
  r:add("POST", "/v2/e-invoices", M.create, { scope = "documents.write" })
  r:add("GET", "/v2/e-invoices/{id}", M.get, { scope = "documents.read" })
end

return M
