--- `client.emails` (scope `emails.read`).
--     content(document_id [, {path = …}])   GET /emails/{id}/content → the merged PDF
--
-- Same return shapes as files:download (bytes, or true when streamed to `path`;
-- meta.filename, meta.content_type).
-- @module hypatos.emails
local resource = require "hypatos.resource"

local Emails = {}
local CONTENT = resource.op("emails", "content")

--- The merged PDF of an email-borne document.
-- @tparam string document_id
-- @tparam[opt] table opts `path`, `progress`, `timeout`, `deadline`, `max_retries`, `headers`
-- @treturn[1] string|true the bytes, or true when written to `path`; meta
-- @treturn[2] nil, err
function Emails:content(document_id, opts)
  return resource.download(self.client, CONTENT, document_id, opts)
end

return resource.class("emails", Emails)
