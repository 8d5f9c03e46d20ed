--- Commands that read resources: `token`, `<resource> list`, `<resource> get ID`,
-- `documents states ID`, `documents wait ID`, `projects schema ID`.
-- Listings go through every page with `each` and are written item by item.
-- @internal hypatos.cli.resources

local output = require "hypatos.cli.output"

local M = {}

--- A UTC timestamp (ISO 8601) from epoch seconds.
-- @tparam number t
-- @treturn string
local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

--- `hypatos token`: scopes, expiry and token URL; the token only with --show-token.
-- @tparam table ctx
-- @treturn integer exit status
local function token(ctx)
  local client = ctx:client()
  local tok, err = client:token()
  if not tok then ctx:err(err) return 1 end
  local rec = {
    scopes = tok.scope or "",
    expires_in = math.floor((tok.expires_in or 0) + 0.5),
    expires_at = tok.expires_at and iso(tok.expires_at) or nil,
    token_type = tok.token_type,
    token_url = client:options().token_url,
  }
  if ctx.args.show_token then rec.access_token = tok.access_token end
  output.single(ctx.format, rec, ctx.stdout, ctx.output)
  return 0
end

--- Writes every item of an iterator; an error raised mid-way ends the listing with exit 1.
-- @tparam table ctx
-- @tparam function iter a generic-for iterator (raises the error value when a page fails)
-- @treturn integer exit status
local function write_all(ctx, iter)
  local w = output.writer(ctx.format, ctx.stdout, nil, ctx.output)
  local ok, err = pcall(function() for item in iter do w:item(item) end end)
  w:finish()
  if not ok then
    if type(err) == "string" and err:find("interrupted", 1, true) then error(err, 0) end
    ctx:err(err)
    return 1
  end
  return 0
end

--- Writes the items of an array value.
-- @tparam table ctx
-- @tparam table arr
-- @treturn integer exit status
local function write_array(ctx, arr)
  local i = 0
  return write_all(ctx, function()
    i = i + 1
    return arr[i]
  end)
end

--- `<resource> list`.
-- @tparam table ctx
-- @tparam string name the resource
-- @treturn integer exit status
local function list(ctx, name)
  local client, a = ctx:client(), ctx.args
  local query = {}
  if name == "documents" then
    if #a.state > 0 then query.state = a.state end
    if #a.project > 0 then query.projectId = a.project end
  end
  local n = a.limit
  if not n then return write_all(ctx, client[name]:each(query)) end
  -- --limit N: pages of at most N items (the API's maximum is 50; the collections it does not
  -- paginate come whole), and no page is fetched once N items are out
  if name ~= "companies" then query.limit = math.min(n, require("hypatos.pager").MAX_LIMIT) end
  local items, k = client[name]:each(query), 0
  return write_all(ctx, function()
    if k >= n then return nil end
    k = k + 1
    return items()
  end)
end

--- `documents wait ID`: polls until a final state, shows the wait on a terminal.
-- @tparam table ctx
-- @treturn integer exit status
local function wait(ctx)
  local client, a = ctx:client(), ctx.args
  local hypatos = require "hypatos"
  local p = ctx:progress()
  local doc, err = client.documents:wait(a.id, {
    timeout = a.timeout,
    --- Sleeps between polls, drawing the wait's progress first.
    -- @tparam number s seconds
    sleep = function(s)
      p:wait("waiting for document " .. a.id, a.timeout)
      hypatos.sleep(s)
    end,
  })
  p:finish()
  if not doc then ctx:err(err) return 1 end
  output.single(ctx.format, doc, ctx.stdout, ctx.output)
  return 0
end

--- Runs the command.
-- @tparam table ctx
-- @treturn integer exit status
function M.run(ctx)
  local a = ctx.args
  if a.command == "token" then return token(ctx) end
  local name, action = a.command, a.action
  if action == "list" then return list(ctx, name) end
  if action == "wait" then return wait(ctx) end
  local r = ctx:client()[name]
  local value, err
  if action == "get" then value, err = r:get(a.id)
  elseif action == "states" then value, err = r:states(a.id)
  elseif action == "schema" then value, err = r:schema(a.id)
  end
  if value == nil then ctx:err(err) return 1 end
  if action == "states" then
    return write_array(ctx, type(value) == "table" and (value.data or value) or {})
  end
  output.single(ctx.format, value, ctx.stdout, ctx.output)
  return 0
end

return M
