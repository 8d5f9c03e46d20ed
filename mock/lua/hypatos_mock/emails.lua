-- hypatos_mock.emails — GET /v2/emails/{id}/content (emails.read): the merged PDF of an
-- e-mail-borne document; `id` is a document id. Serves the document's file when it is a
-- PDF, else a small generated PDF; streamed like file downloads (close_mid_body works).
-- Unknown document: 404 "Document does not exist".

local util = require "hypatos_mock.util"
local seed = require "hypatos_mock.seed"
local files = require "hypatos_mock.files"
local documents = require "hypatos_mock.documents"

local tostring = tostring

local M = {}

--- GET /v2/emails/{id}/content
function M.content(req, params)
  local doc = documents.find(params.id, req.now)
  local rec = files.lookup(doc.fileId)
  if rec and files.base_type(rec) == "application/pdf" then
    return files.send(req, rec, "application/pdf")
  end
  local pdf = seed.pdf({ "E-mail content", "Document " .. doc.id, "Attachment " .. tostring(rec and rec.filename
    or doc.fileId) })
  util.stream(req, 200, pdf, #pdf, { ["Content-Type"] = "application/pdf" })
end

--- Register the emails route.
function M.register(r)
  r:add("GET", "/v2/emails/{id}/content", M.content, { scope = "emails.read" })
end

return M
