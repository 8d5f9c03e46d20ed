--- tools/doccheck.lua — fails (exit 1) on a public function without documentation
-- (make lint). Plain Lua, no library.
--
--   lua5.4 tools/doccheck.lua [root]
--
-- Lua: every file under lua/hypatos/ (recursively, so new sub-packages such as
-- lua/hypatos/cli/ are covered once they exist). A public function is one a user
-- can reach: `function M.x(`, `function Class:y(`, `M.x = function(`,
-- `R[name] = function(`, a `name = function(` field of a table constructor (methods
-- of tables handed to users), and `return function(` (a module that is a function).
-- Names starting with `_` (metamethods, private helpers) and `local function`s are
-- not public. Each needs, right above it (no blank line), a comment block that
-- starts with `---` and says something (at least three words), with an `@param` or
-- `@tparam` for every named parameter (`_`, `self` and `...` aside). LDoc silently skips
-- a `---` comment whose first line holds a `--` with no `-` after it (`--- Run --quiet.`):
-- that is an error in a module comment, and above a public function of a module that is
-- not `@internal`.
--
-- C: every Lua-visible function of hypatos.core — the entries of the luaL_Reg
-- tables in csrc/binding/*.c and the functions stored into a table with
-- lua_pushcfunction/lua_pushcclosure + lua_setfield (metamethods `__*` aside) —
-- needs a `/** … */` doc comment right above its definition, and a documented
-- stub in doc/core.lua (`function core.name(` for the module table,
-- `function Client:name(` for a method of the hypatos.Client metatable, …), which
-- is what the HTML reference shows. Every option of csrc/binding/options.c (plus
-- `driver`, handled in Lua) must appear in the `hypatos.Options` class of
-- types/hypatos.d.lua and in doc/core.lua.

local root = arg and arg[1] or "."
local function rel(path) return (path:gsub("^%./", "")) end

local problems = {}
local function problem(file, line, fmt, ...)
  problems[#problems + 1] = ("%s:%d: " .. fmt):format(rel(file), line, ...)
end

local function read_lines(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local lines = {}
  for l in f:lines() do lines[#lines + 1] = l end
  f:close()
  return lines
end

local function read_text(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Files below `dir` whose names end in `suffix`, sorted (uses find(1)).
local function files_under(dir, suffix)
  local out = {}
  local p = io.popen(("find '%s' -type f -name '*%s' 2>/dev/null | sort"):format(dir, suffix))
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

---------------------------------------------------------------------------- Lua

--- The name of the public function defined on this line (nil when there is none)
-- and its parameter list.
-- @tparam string line a line of Lua
-- @treturn string|nil the function's name ("[…]" for `R[k] = function`)
-- @treturn string|nil the text between its parentheses
local function lua_public(line)
  if line:match("^%s*local%s") then return nil end
  local name = line:match("^%s*function%s+[%w_%.]+[.:]([%w_]+)%s*%(")
    or line:match("^%s*[%w_%.]+%.([%w_]+)%s*=%s*function%s*%(")
    or line:match("^%s*[%w_%.]+%[[^%]]+%]%s*=%s*function%s*%(") and "[…]"
    or line:match("^%s*([%w_]+)%s*=%s*function%s*%(")
    or line:match("^return%s+function%s*%(") and "(module)"
  if name and name:sub(1, 1) == "_" then return nil end
  return name, name and line:match("function%s*[%w_%.:]*%s*%(([^)]*)%)")
end

--- The named parameters the comment block does not document.
-- @tparam table block the comment lines
-- @tparam string params the parameter list
-- @treturn table names
local function undocumented_params(block, params)
  local documented = {}
  for _, l in ipairs(block) do
    local p = l:match("@param%S*%s+([%w_%.]+)") or l:match("@tparam%S*%s+%S+%s+([%w_%.]+)")
    if p then documented[p] = true end
  end
  local missing = {}
  for p in (params or ""):gmatch("[%w_%.]+") do
    if p ~= "_" and p ~= "self" and p ~= "..." and not documented[p] then missing[#missing + 1] = p end
  end
  return missing
end

--- The comment block right above line i (nil when there is none).
local function comment_above(lines, i)
  local j = i - 1
  while j >= 1 and lines[j]:match("^%s*%-%-") do j = j - 1 end
  if j == i - 1 then return nil end
  local block = {}
  for k = j + 1, i - 1 do block[#block + 1] = lines[k] end
  return block
end

--- True when the block is an LDoc comment that says something.
local function documented(block)
  if not block or not block[1]:match("^%s*%-%-%-") then return false end
  local words = 0
  for _, l in ipairs(block) do
    local text = l:gsub("^%s*%-+", "")
    for _ in text:gmatch("%a[%w_']*") do words = words + 1 end
  end
  return words >= 3
end

--- True when LDoc ignores the doc comment that starts with this line: a `--` after other
-- text with no `-` after it makes LDoc take the line for a `---- banner ----` (its
-- lang.lua, end_comment_), so the comment is skipped without a warning (a module comment
-- too: the module is then named after its file, its summary taken from a function).
-- @tparam string line the first line of a `---` comment
-- @treturn boolean
local function ldoc_skips(line)
  return (line:gsub("^%s+", "") .. "\n"):match("[^%-]%-%-+[^-]*\n$") ~= nil
end

local lua_files = files_under(root .. "/lua/hypatos", ".lua")
local lua_checked = 0
for _, path in ipairs(lua_files) do
  local lines = read_lines(path)
  local in_long_string = false
  local internal = false   -- `@internal` in the module comment: not in the reference's public part
  for _, l in ipairs(lines) do
    if not l:match("^%-%-") then break end
    if l:match("^%-%-%s*@internal%s") then internal = true end
  end
  for i, line in ipairs(lines) do
    -- skip the inside of long strings ([[ … ]]): code examples in help texts
    if in_long_string then
      if line:find("]]", 1, true) then in_long_string = false end
    else
      if i == 1 and line:match("^%-%-%-") and ldoc_skips(line) then
        problem(path, i, "LDoc skips this module comment: its first line has a `--` with no `-` after it "
          .. "(start with a plain summary sentence)")
      end
      local name, params = lua_public(line)
      if name then
        lua_checked = lua_checked + 1
        local block = comment_above(lines, i)
        if not internal and block and block[1]:match("^%s*%-%-%-") and ldoc_skips(block[1]) then
          problem(path, i, "LDoc skips the comment of %s: its first line has a `--` with no `-` after it", name)
        elseif not documented(block) then
          problem(path, i, "public function %s has no LDoc comment (--- what it does, params, returns)", name)
        else
          local missing = undocumented_params(block, params)
          if #missing > 0 then
            problem(path, i, "public function %s: no @param/@tparam for %s", name, table.concat(missing, ", "))
          end
        end
      end
      if line:find("%[%[") and not line:find("]]", line:find("%[%[") + 2, true) and not line:match("^%s*%-%-") then
        in_long_string = true
      end
    end
  end
end

------------------------------------------------------------------------------ C

local binding = files_under(root .. "/csrc/binding", ".c")
local header = read_text(root .. "/csrc/binding/binding.h") or ""
local sources = {}     -- path → text
local mt_names = {}    -- macro → "hypatos.Client"
for macro, value in header:gmatch('#define%s+([%w_]+_MT)%s+"([^"]+)"') do mt_names[macro] = value end
for _, path in ipairs(binding) do
  sources[path] = read_text(path)
  for macro, value in sources[path]:gmatch('#define%s+([%w_]+_MT)%s+"([^"]+)"') do mt_names[macro] = value end
end

local visible = {}     -- {lua = "Client:request" | "core.new", cfunc = "client_request", file, line}
local function line_of(text, pos)
  local n = 1
  for _ in text:sub(1, pos):gmatch("\n") do n = n + 1 end
  return n
end

for _, path in ipairs(binding) do
  local text = sources[path]
  -- luaL_Reg tables: the type is the metatable created right after (else the module)
  for pos, body, after in text:gmatch("()luaL_Reg%s+[%w_]+%[%]%s*=%s*(%b{})%s*;()") do
    local following = text:sub(after, after + 200)
    local macro = following:match("luaL_newmetatable%(%s*L%s*,%s*([%w_]+)%s*%)")
    local owner = macro and mt_names[macro] and mt_names[macro]:match("^hypatos%.(.+)$")
    for name, cfunc in body:gmatch('{%s*"([^"]+)"%s*,%s*([%w_]+)%s*}') do
      visible[#visible + 1] = { lua = owner and (owner .. ":" .. name) or ("core." .. name), cfunc = cfunc,
        file = path, line = line_of(text, pos) }
    end
  end
  -- lua_pushcfunction / lua_pushcclosure followed by lua_setfield(L, -n, "name")
  for pos, cfunc, name in text:gmatch(
      '()lua_pushc%a+%(%s*L%s*,%s*([%w_]+)[^;]*;%s*lua_setfield%(%s*L%s*,%s*%-%d+%s*,%s*"([^"]+)"%s*%)') do
    if name:sub(1, 2) ~= "__" then
      visible[#visible + 1] = { lua = "core." .. name, cfunc = cfunc, file = path, line = line_of(text, pos) }
    end
  end
end

--- The file, line and doc comment of the definition of C function `cfunc`.
local function c_definition(cfunc)
  for _, path in ipairs(binding) do
    local text = sources[path]
    local pos = text:find("\n[%w_ ]-int%s+" .. cfunc .. "%s*%(%s*lua_State")
    if pos then
      local before = text:sub(1, pos)
      local comment = before:match("(/%*.-%*/)%s*\n$")
      -- only the last comment block counts, and only if it closes right above the definition
      if comment then
        local last = comment:match(".*(/%*.-%*/)$") or comment
        comment = last
      end
      return path, line_of(text, pos + 1), comment
    end
  end
end

local stub = read_text(root .. "/doc/core.lua") or ""
for _, v in ipairs(visible) do
  local path, line, comment = c_definition(v.cfunc)
  if not path then
    problem(v.file, v.line, "%s: no definition of %s found in csrc/binding", v.lua, v.cfunc)
  elseif not comment or not comment:match("^/%*%*[^*]") or select(2, comment:gsub("%a+", "")) < 3 then
    problem(path, line, "%s (Lua %s) has no /** doc comment */ right above it", v.cfunc, v.lua)
  end
  local stub_name = v.lua:gsub("[.:]", { ["."] = "%.", [":"] = ":" })
  local at = stub:find("\nfunction%s+" .. stub_name .. "%s*%(")
  if not at then
    problem("doc/core.lua", 1, "%s (C %s) is not documented (add `function %s(…) end` with its LDoc comment)",
      v.lua, v.cfunc, v.lua)
  elseif not stub:sub(1, at - 1):match("([^\n]*)$"):match("^%s*%-%-") then
    problem("doc/core.lua", line_of(stub, at + 1), "%s has no LDoc comment", v.lua)
  end
end

------------------------------------------------------------------------ options

local options_c = read_text(root .. "/csrc/binding/options.c") or ""
local specs = options_c:match("optspec%s+SPECS%[%]%s*=%s*(%b{})") or ""
local option_names = { "driver", "debug" }
for name in specs:gmatch('{%s*"([%w_]+)"') do option_names[#option_names + 1] = name end
local types_file = read_text(root .. "/types/hypatos.d.lua") or ""
local options_class = types_file:match("%-%-%-@class hypatos%.Options\n(.-)\n[^%-]") or ""
for _, name in ipairs(option_names) do
  if not options_class:find("---@field " .. name .. "?", 1, true)
      and not options_class:find("---@field " .. name .. " ", 1, true) then
    problem("types/hypatos.d.lua", 1, "option %s is not a field of ---@class hypatos.Options", name)
  end
  if not stub:find("\n%-%-%s*@tfield%S*%s+%S+%s+" .. name .. "%f[^%w_]") then
    problem("doc/core.lua", 1, "option %s is not documented in the Options table", name)
  end
end

if #problems > 0 then
  for _, p in ipairs(problems) do io.stderr:write(p, "\n") end
  io.stderr:write(("doccheck: %d undocumented public function(s) or option(s)\n"):format(#problems))
  os.exit(1)
end
print(("doccheck: %d Lua functions in %d files, %d Lua-visible C functions, %d options: all documented")
  :format(lua_checked, #lua_files, #visible, #option_names))
