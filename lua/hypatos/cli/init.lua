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

--- Raises a usage error from inside a command.
-- @tparam string message
function M.usage(message)
  error(setmetatable({ message = message }, Usage), 0)
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
local function interrupted(e)
  return type(e) == "string" and (e:find("hypatos: interrupted", 1, true) ~= nil or e:find("interrupted!$") ~= nil)
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
    local ok, c = pcall(hypatos.new, { debug = self.args.debug or nil, token_cache = cache })
    if not ok then error((tostring(c):gsub("^[^\n]-:%d+: ", ""):gsub("^hypatos%.new: ", "")), 0) end
    self.client_ = c
  end
  return self.client_
end

--- Writes one error line to stderr.
-- @param err
function Ctx:err(err)
  self.stderr:write(M.line(err), "\n")
  self.stderr:flush()
end

--- A progress line (inactive unless stderr is a terminal and --quiet is off).
-- @treturn table see `hypatos.cli.progress`
function Ctx:progress()
  return progress.new(self.show_progress, self.stderr)
end

--- Runs the command line.
-- @tparam table argv the arguments without the program name
-- @tparam[opt] table io_ `{stdout = file, stderr = file}` (default io.stdout, io.stderr)
-- @treturn integer the exit status
function M.main(argv, io_)
  io_ = io_ or {}
  local stdout, stderr = io_.stdout or io.stdout, io_.stderr or io.stderr
  local a, why, usage, name = args.parse(argv)
  if not a then -- the usage of the command it is about, and one error line
    stderr:write(usage, "\n", "hypatos: ", escape((why:gsub("[\r\n]+", " "))), " (see ", name, " --help)\n")
    return M.USAGE
  end
  local ctx = setmetatable({ args = a, stdout = stdout, stderr = stderr }, Ctx)
  ctx.show_progress = not a.quiet and progress.isatty(stderr, 2)
  ctx.format = a.format or (progress.isatty(stdout, 1) and "table" or "jsonl")
  if a.csv_raw and ctx.format ~= "csv" then
    stderr:write("hypatos: --csv-raw goes with --format csv (see hypatos --help)\n")
    return M.USAGE
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
  if getmetatable(status) == Usage then
    stderr:write("hypatos: ", escape((status.message:gsub("[\r\n]+", " "))), " (see hypatos --help)\n")
    return M.USAGE
  end
  if interrupted(status) then -- one line, without the file position lua5.4's handler adds
    ctx:err("interrupted")
    return M.INTERRUPTED
  end
  ctx:err(status)
  return M.FAIL
end

return M
