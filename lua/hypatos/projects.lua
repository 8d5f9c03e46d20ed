--- `client.projects` (scopes `projects.read`, `projects.write`).
--     get(id)                      GET   /projects/{id}
--     list(query) / pages / each   GET   /projects  (search, sort, limit, offset)
--     create(body)                 POST  /projects           (not idempotent)
--     update(id, changes)          PATCH /projects/{id}      (partial; hypatos.null clears note/retentionDays)
--     schema(id)                   GET   /projects/{id}/schema
--
-- Every method is generated from `hypatos.operations`.
-- @module hypatos.projects
return require("hypatos.resource").class("projects")
