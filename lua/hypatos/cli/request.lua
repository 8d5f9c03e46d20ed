--- The `request` command: a call of any method and path of the API.
-- `request METHOD PATH [-q key=value]... [--json FILE|-] [--data FILE] [-o FILE]`:
-- any API call through `client:request` (retries, token, pacing as usual).
-- A JSON answer is written as one line of JSON, other bytes as they are; with
-- `-o` the body is streamed to the file (which appears only once complete).
-- @internal hypatos.cli.request

local hypatos = require "hypatos"
local filename = require "hypatos.filename"
local cli = require "hypatos.cli"

local M = {}

--- The whole content of a file ("-": stdin), or nil, err.
-- @tparam string path
-- @treturn[1] string
-- @treturn[2] nil
-- @treturn[2] string
local function slurp(path)
  if path == "-" then return io.stdin:read("*a") end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

--- Runs the command.
-- @tparam table ctx
-- @treturn integer exit status
function M.run(ctx)
  local a = ctx.args
  local method = a.method:upper()
  if not method:match("^[A-Z]+$") then cli.usage("METHOD must be letters, e.g. GET, got '" .. a.method .. "'") end
  local path = a.path
  if path:sub(1, 1) ~= "/" then path = "/" .. path end
  -- braces are literal here, not client:request's {name} placeholders
  path = path:gsub("[{}]", function(b) return ("%%%02X"):format(b:byte()) end)
  local query = {}
  for _, kv in ipairs(a.query) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then cli.usage("-q wants key=value, got '" .. kv .. "'") end
    local old = query[k]
    if old == nil then query[k] = v
    elseif type(old) == "table" then old[#old + 1] = v
    else query[k] = { old, v } end
  end
  if a.json and a.data then cli.usage("give --json or --data, not both") end
  local opts = { query = next(query) and query or nil, output = a.output }
  if a.json then
    local text, err = slurp(a.json)
    if not text then ctx:err(err) return 1 end
    local ok, value, why = pcall(hypatos.json.decode, text)
    if not ok or value == nil then
      ctx:err(("--json %s is not JSON: %s"):format(a.json, tostring(ok and why or value)))
      return 1
    end
    opts.body, opts.content_type = text, "application/json"
  elseif a.data then
    local f = io.open(a.data, "rb")
    if not f then ctx:err(("--data %s cannot be read"):format(a.data)) return 1 end
    f:close()
    opts.body_file = a.data
    opts.content_type = filename.content_type(a.data) or "application/octet-stream"
  end
  local value, err = ctx:client():request(method, path, opts)
  if value == nil then ctx:err(err) return 1 end
  if a.output then return 0 end
  if type(value) == "table" then
    ctx.stdout:write(hypatos.json.encode(value), "\n")
  elseif type(value) == "string" then
    ctx.stdout:write(value)
  end
  ctx.stdout:flush()
  return 0
end

return M
