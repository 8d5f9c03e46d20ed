--- `client.emails` (scope `emails.read`).
--   content(document_id [, {path = …}])   GET /emails/{id}/content → the merged PDF
-- Same return shapes as files:download (bytes, or true when streamed to `path`;
-- meta.filename, meta.content_type).
-- @module hypatos.emails
local resource = require "hypatos.resource"

local Emails = {}

--- The merged PDF of an email-borne document.
function Emails:content(document_id, opts)
  return resource.download(self.client, "/emails/{id}/content", document_id, opts, "emails:content")
end

return resource.class("emails", Emails)
