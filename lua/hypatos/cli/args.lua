--- The command line of `hypatos`: every command, argument and option (on
-- Debian's lua-argparse). `parse(argv)` never exits except for `--help`.
-- @internal hypatos.cli.args

local argparse = require "argparse"
local output = require "hypatos.cli.output"
local tointeger = require("hypatos.cli.compat").tointeger

local M = {}

--- The resources with `list` and `get` commands.
M.RESOURCES = { "users", "companies", "projects", "documents" }

--- Seconds from a --timeout value: a number >= 0 (0: look once, as `documents:wait`'s `timeout = 0`).
-- @tparam string s
-- @treturn[1] number
-- @treturn[2] nil
-- @treturn[2] string the problem
local function timeout(s)
  local n = tonumber(s)
  if n and n >= 0 then return n end
  return nil, "--timeout must be a number >= 0, got '" .. s .. "'"
end

--- An integer from 1 to 1000 (--concurrency).
-- @tparam string s
-- @treturn[1] integer
-- @treturn[2] nil
-- @treturn[2] string the problem
local function concurrency(s)
  local n = tointeger(tonumber(s))
  if n and n >= 1 and n <= 1000 then return n end
  return nil, "--concurrency must be an integer from 1 to 1000, got '" .. s .. "'"
end

--- A positive integer (--limit).
-- @tparam string s
-- @treturn[1] integer
-- @treturn[2] nil
-- @treturn[2] string the problem
local function limit(s)
  local n = tointeger(tonumber(s))
  if n and n >= 1 then return n end
  return nil, "--limit must be an integer >= 1, got '" .. s .. "'"
end

--- Q/W (--quota): Q requests per W seconds.
-- @tparam string s
-- @treturn[1] table `{quota = Q, window = W}`
-- @treturn[2] nil
-- @treturn[2] string the problem
local function quota(s)
  local q, w = s:match("^(%d+)/(%d*%.?%d+)$")
  q, w = tonumber(q), tonumber(w)
  if q and q >= 1 and w and w > 0 then return { quota = tointeger(q), window = w } end
  return nil, "--quota must be REQUESTS/SECONDS (e.g. 100/60), got '" .. s .. "'"
end

--- A TCP port.
-- @tparam string s
-- @treturn[1] integer
-- @treturn[2] nil
-- @treturn[2] string the problem
local function port(s)
  local n = tointeger(tonumber(s))
  if n and n >= 1 and n <= 65535 then return n end
  return nil, "--port must be a port number from 1 to 65535, got '" .. s .. "'"
end

--- Builds the parser.
-- @treturn table an argparse parser
function M.parser()
  local p = argparse("hypatos", "Command line for the Hypatos document-processing API (v2).")
    :epilog("Credentials and URL come from HYPATOS_CLIENT_ID, HYPATOS_CLIENT_SECRET and HYPATOS_BASE_URL.\n"
      .. "Exit status: 0 success, 1 failure, 2 some items of a bulk command failed, 64 usage error, "
      .. "130 stopped by Ctrl-C.")
  p:command_target("command")
  p:option("--format", "Output format: json, jsonl, csv or table (default: table on a terminal, jsonl otherwise).")
    :choices(output.FORMATS)
  p:flag("--csv-raw", "With --format csv: cells exactly as received (no ' before a leading =, +, -, @, TAB or "
    .. "CR; control characters not escaped). For programs, not for spreadsheets or terminals.")
  p:flag("--quiet", "No progress on stderr.")
  p:flag("--debug", "One line per HTTP attempt on stderr (also HYPATOS_DEBUG=1).")

  local token = p:command("token", "Show the access token's scopes, expiry and token URL.")
  token:flag("--show-token", "Also show the token itself.")

  for _, r in ipairs(M.RESOURCES) do
    local c = p:command(r, "Read " .. r .. ".")
    c:command_target("action")
    local list = c:command("list", "Every " .. r:sub(1, -2) .. ", all pages, streamed.")
    list:option("--limit", "At most this many, the first ones (no page is fetched after them).")
      :convert(limit)
    if r == "documents" then
      list:option("--state", "Only documents in this state (repeatable)."):count("*")
      list:option("--project", "Only documents of this project id (repeatable)."):count("*")
    end
    c:command("get", "One " .. r:sub(1, -2) .. " by id."):argument("id", "The id.")
    if r == "documents" then
      c:command("states", "A document's state history."):argument("id", "The document id.")
      local wait = c:command("wait", "Wait until a document reaches a final state; print it.")
      wait:argument("id", "The document id.")
      wait:option("--timeout", "Give up after this many seconds (0: look once).", "600"):convert(timeout)
    elseif r == "projects" then
      c:command("schema", "A project's schema."):argument("id", "The project id.")
    end
  end

  local files = p:command("files", "Upload and download files.")
  files:command_target("action")
  local up = files:command("upload", "Upload files; optionally process them into documents and wait.")
  up:argument("path", "Files to upload."):args("+")
  up:option("--project", "Process each file into a document of this project.")
  up:option("--content-type", "Content type of every file, e.g. application/pdf (default: from each file's "
    .. "extension: pdf, jpg/jpeg, png, tif/tiff, xml).")
  up:flag("--wait", "Wait until each document is final (the first project when --project is not given).")
  up:option("--timeout", "With --wait: give up after this many seconds in all (0: look once).", "600")
    :convert(timeout)
  up:option("--concurrency", "Files in flight at once.", "4"):convert(concurrency)
  local down = files:command("download", "Download a file (default name: the server's, made safe).")
  down:argument("id", "The file id.")
  down:option("-o --output", "Write to this path ('-': stdout).")

  local e = p:command("enrichment", "Master data: upsert records from a file, delete one record.")
  e:argument("type", "Record type, e.g. suppliers, purchase_orders (or purchase-orders).")
  e:command_target("action")
  local ups = e:command("upsert", "Upsert every record of a JSONL or CSV file ('-': stdin, JSONL).")
  ups:argument("file", "The file: .csv (a header row, then one record per row) or JSON Lines.")
  ups:option("--concurrency", "Records in flight at once.", "8"):convert(concurrency)
  e:command("delete", "Delete one record."):argument("external_id", "Its externalId.")

  local req = p:command("request", "Any API call: METHOD PATH (relative to the base URL, e.g. /users).")
  req:argument("method", "GET, POST, PUT, PATCH, DELETE, …")
  req:argument("path", "e.g. /documents or /users/6295dcd39db1ab740c3e296c (sent as given)")
  req:option("-q --query", "A query parameter key=value (repeatable; a repeated key makes an array)."):count("*")
  req:option("--json", "Send this JSON file as the body ('-': stdin).")
  req:option("--data", "Send this file's bytes as the body.")
  req:option("-o --output", "Write the answer's body to this file.")

  local serve = p:command("serve", "Run the local fake Hypatos server (nginx + ngx_lua) until Ctrl-C.")
  serve:option("--port", "Port on 127.0.0.1 (default: a free one)."):convert(port)
  serve:option("--quota", "Rate limit: REQUESTS/SECONDS (e.g. 100/60)."):convert(quota)
  serve:option("--latency", "Seconds added to every API answer.", "0"):convert(function(s)
    local n = tonumber(s)
    if n and n >= 0 then return n end
    return nil, "--latency must be a number >= 0, got '" .. s .. "'"
  end)
  serve:option("--processing-time", "Seconds until a processed document is final.", "1"):convert(function(s)
    local n = tonumber(s)
    if n and n >= 0 then return n end
    return nil, "--processing-time must be a number >= 0, got '" .. s .. "'"
  end)
  return p
end

--- The usage of a parser and the name of its command, e.g. `hypatos files upload`.
-- @tparam table p an argparse parser (the top level or a command's)
-- @treturn string the usage
-- @treturn string the name
local function usage_of(p)
  local usage = p:get_usage()
  return usage, usage:match("^Usage: (.-) [%[<]") or usage:match("^Usage: (%S+)") or "hypatos"
end

--- Parses argv.
-- @tparam table argv the arguments (without the program name)
-- @treturn[1] table the parsed arguments
-- @treturn[2] nil
-- @treturn[2] string the usage error
-- @treturn[2] string the usage of the command the error is about (`hypatos files upload`'s for
--   `hypatos files upload --concurrency 0`; the top level's for an unknown command)
-- @treturn[2] string that command's name, e.g. `hypatos files upload`
function M.parse(argv)
  local p = M.parser()
  local at, why = p, nil
  local ok, res
  if type(p._parse) == "function" then
    -- argparse's pparse drops the (sub)command parser the error is about; its error handler gets it
    ok, res = pcall(p._parse, p, argv, function(parser, msg)
      at, why = parser, msg
      error(msg, 0)
    end)
    if not ok and why == nil then error(res, 0) end -- not a usage error: a bug
  else
    ok, res = p:pparse(argv)
    why = res
  end
  if ok then return res end
  return nil, why, usage_of(at)
end

--- The names of the command parsed arguments run, below `hypatos`.
-- @tparam table a the parsed arguments (from `parse`)
-- @treturn table e.g. `{"files", "upload"}`, `{"request"}`
function M.path(a)
  return { a.command, a.action }
end

--- The usage of a command, as `parse` gives it with a usage error (for one found later, by a
-- command: `hypatos request`'s for `-q novalue`).
-- @tparam table path the command's names below `hypatos` (`{"enrichment"}`, `{"files", "upload"}`;
--   `{}`: the top level); where a name is not a command, the usage of the one above it
-- @treturn string the usage
-- @treturn string the command's name, e.g. `hypatos enrichment`
function M.usage(path)
  local p = M.parser()
  for _, name in ipairs(path) do
    local sub
    for _, c in ipairs(p._commands or {}) do
      if c._name == name then sub = c break end
    end
    if not sub then break end
    p = sub
  end
  return usage_of(p)
end

return M
