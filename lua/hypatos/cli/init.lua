--- The `hypatos` command: `main(argv)` parses the arguments, runs one command
-- and returns the exit status (bin/hypatos passes it to os.exit).
--
-- Exit status: 0 success; 1 failure; 2 a bulk command where some items failed
-- (the others done); 64 usage error; 130 stopped by Ctrl-C (SIGINT, reported as
-- one line: `hypatos: interrupted`). Errors go to stderr, one line each, and
-- never hold a secret (the library's errors never do; the token is shown only
-- by `token --show-token`) nor a control character (escaped by
-- `hypatos.printable`: a problem's title from a hostile server cannot drive the
-- terminal).
-- @internal hypatos.cli

local args = require "hypatos.cli.args"
local progress = require "hypatos.cli.progress"
local escape = require("hypatos.printable").escape

local M = {}

--- Exit status: success.
M.OK = 0
--- Exit status: failure.
M.FAIL = 1
--- Exit status: a bulk command where some items failed (the others done).
M.PARTIAL = 2
--- Exit status: usage error.
M.USAGE = 64
--- Exit status: stopped by Ctrl-C (128 + SIGINT, as shells report it).
M.INTERRUPTED = 130

--- Modules implementing the commands, by command name.
local COMMANDS = {
  token = "hypatos.cli.resources", users = "hypatos.cli.resources", companies = "hypatos.cli.resources",
  projects = "hypatos.cli.resources", documents = "hypatos.cli.resources", files = "hypatos.cli.files",
  enrichment = "hypatos.cli.enrichment", request = "hypatos.cli.request", serve = "hypatos.cli.serve",
}

--- A usage error raised inside a command (exit status 64).
local Usage = {}
Usage.__index = Usage
Usage.__tostring = function(u) return u.message end

--- Raises a usage error from inside a command: `main` writes the usage of the command it
-- is about, then one error line, and returns 64 (as for an error the parser finds).
-- @tparam string message
-- @tparam[opt] table path the names of the command it is about, below `hypatos` (`{"enrichment"}`
--   for TYPE); default: the command run (`{"request"}`, `{"enrichment", "delete"}`)
function M.usage(message, path)
  error(setmetatable({ message = message, path = path }, Usage), 0)
end

--- One error line: "hypatos: …" with line breaks folded and other control
-- characters escaped (`\x1B`, `\u009B`), whatever the value.
-- @param err an error value, a message or anything with __tostring
-- @treturn string
function M.line(err)
  local s = escape((tostring(err):gsub("[\r\n]+", " ")))
  if s:sub(1, 9) ~= "hypatos: " then s = "hypatos: " .. s end
  return s
end

--- Whether an error is SIGINT's: raised by the library during a transfer or a wait
-- ("hypatos: interrupted"), or by lua5.4's own handler in Lua code ("…/map.lua:174: interrupted!").
-- @param e an error value
-- @treturn boolean
function M.interrupted(e)
  return type(e) == "string" and (e:find("hypatos: interrupted", 1, true) ~= nil or e:find("interrupted!$") ~= nil)
end
local interrupted = M.interrupted

--- Writes a usage error: the usage of the command it is about, then one error line.
-- @tparam file stderr
-- @tparam string usage the command's usage (see `hypatos.cli.args.usage`)
-- @tparam string why the problem
-- @tparam string name the command's name, e.g. `hypatos request`
-- @treturn integer `USAGE`
local function usage_error(stderr, usage, why, name)
  stderr:write(usage, "\n", "hypatos: ", escape((why:gsub("[\r\n]+", " "))), " (see ", name, " --help)\n")
  stderr:flush()
  return M.USAGE
end

--- The environment variables the library reads for a client's options, each with the start
-- of the library's errors about it. The command passes none of these options itself: such an
-- error is about the variable. (The credentials' own errors name HYPATOS_CLIENT_ID and
-- HYPATOS_CLIENT_SECRET already.)
local FROM_ENV = {
  { var = "HYPATOS_BASE_URL", prefix = 'option "base_url" ' }, -- the C core's options
  { var = "HYPATOS_REDIS_URL", prefix = "hypatos.redis: url " }, -- hypatos.redis.store{url = …}
  { var = "HYPATOS_REDIS_URL", prefix = "hypatos.redis: " },
}

--- An error of `hypatos.new` that is about an environment variable, reworded to name it,
-- keeping the reason (`option "base_url" must start with https://, got "x"` →
-- `HYPATOS_BASE_URL: must start with https://, got "x"`); any other error as it is. Adds no
-- value of a variable: what the library shows of a URL never holds its user info, and
-- credentials are never shown.
-- @tparam string msg the error, without its position and "hypatos.new: "
-- @treturn string
function M.env_error(msg)
  for _, e in ipairs(FROM_ENV) do
    local v = os.getenv(e.var)
    if v and v ~= "" and msg:sub(1, #e.prefix) == e.prefix then
      return e.var .. ": " .. msg:sub(#e.prefix + 1)
        :gsub("client_id/client_secret", "HYPATOS_CLIENT_ID/HYPATOS_CLIENT_SECRET")
    end
  end
  if msg == "client credentials must not contain CR or LF" then
    local vars = {}
    for _, var in ipairs({ "HYPATOS_CLIENT_ID", "HYPATOS_CLIENT_SECRET" }) do
      if (os.getenv(var) or ""):find("[\r\n]") then vars[#vars + 1] = var end
    end
    if #vars > 0 then return table.concat(vars, ", ") .. ": must not contain CR or LF" end
  end
  return msg
end

--- The context a command runs with.
local Ctx = {}
Ctx.__index = Ctx

--- The client (created on first use; missing credentials raise an error line, exit 1).
-- @treturn hypatos.Client
function Ctx:client()
  if not self.client_ then
    local hypatos = require "hypatos"
    -- the fleet's store when HYPATOS_REDIS_URL names one (hypatos.new takes it from there);
    -- else the token is kept between runs in a file of the user's (hypatos.tokenfile)
    local url = os.getenv("HYPATOS_REDIS_URL")
    local cache = not (url and url ~= "") and require("hypatos.tokenfile").cache() or nil
    local ok, c = pcall(hypatos.new, { debug = self:debug(), token_cache = cache })
    if not ok then error(M.env_error((tostring(c):gsub("^[^\n]-:%d+: ", ""):gsub("^hypatos%.new: ", ""))), 0) end
    self.client_ = c
  end
  return self.client_
end

--- The client's `debug` option: with --debug or HYPATOS_DEBUG=1, a writer of the lines to
-- stderr that clears the progress line first (each line starts on a line of its own); else nil.
-- @treturn function|nil
function Ctx:debug()
  if not (self.args.debug or require("hypatos.debuglog").from_env()) then return nil end
  return function(line)
    self:clear_progress()
    self.stderr:write(line, "\n")
    self.stderr:flush()
  end
end

--- Writes one error line to stderr, on a line of its own (the progress line cleared first).
-- @param err
function Ctx:err(err)
  self:clear_progress()
  self.stderr:write(M.line(err), "\n")
  self.stderr:flush()
end

--- A progress line (inactive unless stderr is a terminal and --quiet is off); an error line
-- clears it first, also when a command ends by an error it raises (Ctrl-C during a transfer).
-- @treturn table see `hypatos.cli.progress`
function Ctx:progress()
  local p = progress.new(self.show_progress, self.stderr)
  self.bars[#self.bars + 1] = p
  return p
end

--- Clears every progress line the command drew (each is drawn again at its next update).
function Ctx:clear_progress()
  for _, p in ipairs(self.bars) do p:finish() end
end

--- Runs the command line.
-- @tparam table argv the arguments without the program name
-- @tparam[opt] table io_ `{stdout = file, stderr = file}` (default io.stdout, io.stderr)
-- @treturn integer the exit status
function M.main(argv, io_)
  io_ = io_ or {}
  local stdout, stderr = io_.stdout or io.stdout, io_.stderr or io.stderr
  local a, why, usage, name = args.parse(argv)
  if not a then return usage_error(stderr, usage, why, name) end -- the usage of the command it is about
  local ctx = setmetatable({ args = a, stdout = stdout, stderr = stderr, bars = {} }, Ctx)
  ctx.show_progress = not a.quiet and progress.isatty(stderr, 2)
  ctx.format = a.format or (progress.isatty(stdout, 1) and "table" or "jsonl")
  if a.csv_raw and ctx.format ~= "csv" then -- both are options of the top level
    usage, name = args.usage({})
    return usage_error(stderr, usage, "--csv-raw goes with --format csv", name)
  end
  ctx.output = { csv_raw = a.csv_raw or nil }
  local ok, status = xpcall(function()
    return require(COMMANDS[a.command]).run(ctx)
  end, function(e)
    if type(e) ~= "string" or not a.debug or interrupted(e) then return e end -- usage, API error, Ctrl-C, …
    return debug.traceback(e, 2)                                              -- a bug: where, with --debug
  end)
  if ctx.client_ then ctx.client_:close() end
  if ok then return status or M.OK end
  if getmetatable(status) == Usage then -- found by the command: the usage of the command it is about
    ctx:clear_progress()
    usage, name = args.usage(status.path or args.path(a))
    return usage_error(stderr, usage, status.message, name)
  end
  if interrupted(status) then -- one line, without the file position lua5.4's handler adds
    ctx:err("interrupted")
    return M.INTERRUPTED
  end
  ctx:err(status)
  return M.FAIL
end

return M
