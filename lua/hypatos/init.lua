--- hypatos — a Lua client for the Hypatos REST API v2.
--
--   local hypatos = require "hypatos"
--   local client = hypatos.new{ client_id = "…", client_secret = "…" }
--   local user, err = client.users:get("6295dcd39db1ab740c3e296c")
--
-- This module is `hypatos.core` (the C core: client, engine, transport) with
-- the Lua layer added to the same table: `new` attaches the resources
-- (`client.users`, `client.companies`, …) to every client.
-- @module hypatos

local hypatos = require "hypatos.core"

local core_new = hypatos.core_new or hypatos.new
hypatos.core_new = core_new

--- Resources attached to every client, by field name.
hypatos.resources = {
  users = require "hypatos.users",
  companies = require "hypatos.companies",
  documents = require "hypatos.documents",
  files = require "hypatos.files",
  projects = require "hypatos.projects",
  emails = require "hypatos.emails",
  enrichment = require "hypatos.enrichment",
}

--- Creates a client.
-- @tparam[opt] table opts options (see the README's table); misuse raises
-- @treturn hypatos.Client
function hypatos.new(opts)
  local client = core_new(opts)
  for name, make in pairs(hypatos.resources) do
    client[name] = make(client)
  end
  return client
end

-- hypatos.sleep and hypatos.now (from the core) are what waits in the Lua
-- layer use (documents:wait); in OpenResty replace them with ngx.sleep / ngx.now.

--- JSON helpers: `encode` (exact numbers, sorted keys, `hypatos.array()` for
-- empty arrays) and `decode` (integers stay integers, `[]` stays an array).
hypatos.json = { encode = hypatos.json_encode, decode = hypatos.json_decode,
  null = hypatos.null, array = hypatos.array }

return hypatos
