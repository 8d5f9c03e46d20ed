--- `client.projects` (scopes `projects.read`, `projects.write`).
--   get(id)                      GET   /projects/{id}
--   list(query) / pages / each   GET   /projects  (search, sort, limit, offset)
--   create(body)                 POST  /projects           (not idempotent)
--   update(id, changes)          PATCH /projects/{id}      (partial; hypatos.null clears note/retentionDays)
--   schema(id)                   GET   /projects/{id}/schema
-- @module hypatos.projects
local resource = require "hypatos.resource"

local req = resource.request_opts
local want_table = resource.want_table

local Projects = {}
Projects.get = resource.getter("/projects/{id}")
resource.listing(Projects, "/projects")

--- Creates a project → the project (201), meta.
function Projects:create(body, opts)
  want_table(body, "project")
  return self.client:request("POST", "/projects", req(opts, { json = body, idempotent = false }))
end

--- Changes some fields of a project → the project, meta. Safe to retry.
function Projects:update(id, changes, opts)
  want_table(changes, "project changes")
  return self.client:request("PATCH", "/projects/{id}",
    req(opts, { params = { id = id }, json = changes, idempotent = true }))
end

--- The project's extraction schema, meta.
function Projects:schema(id, opts)
  return self.client:request("GET", "/projects/{id}/schema", req(opts, { params = { id = id } }))
end

return resource.class("projects", Projects)
