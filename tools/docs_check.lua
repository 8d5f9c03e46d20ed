--- tools/docs_check.lua — checks the HTML reference LDoc wrote (`make docs` runs it after
-- LDoc, so `make lint` does too). Plain Lua, no library; fails (exit 1) naming each problem.
--
--   lua5.4 tools/docs_check.lua [dir]     dir: the built reference (default build/docs)
--
-- What it checks, against the sources (lua/hypatos/**, doc/core.lua, examples/, doc/ldoc/):
--  1. Code is shown as written: inside every <code> and <pre> no typographic entity
--     (&ndash; &mdash; &ldquo; &rsquo; &hellip; …, what SmartyPants makes of -- and quotes) and
--     no markup (<em>, <strong>, <a>); and no code span became a link to the Lua manual
--     (LDoc's backtick references made `debug` and `table` such links).
--  2. The index lists under "Modules" exactly the modules a program uses (`@module`) and
--     under "Internals" exactly the others (`@internal`: the command line, the building
--     blocks; INTERNAL below says which those are), each with its page.
--  3. Every module's summary in the index is the first sentence of its module comment (not
--     a function's comment, not a sentence cut inside a code span).
--  4. Every example (examples/**/*.lua) is listed, with a page showing its header comment.
--  5. Every page links the stylesheet, and it is doc/ldoc/ldoc.css (bordered tables with a
--     header row, code blocks that scroll, a wide content column).

local dir = (arg and arg[1] or "build/docs"):gsub("/$", "")

--- Modules a program does not use: they must be `@internal`, all others `@module`.
local INTERNAL = { "^hypatos%.cli$", "^hypatos%.cli%.", "^hypatos%.cosocket$", "^hypatos%.debuglog$",
  "^hypatos%.http1$", "^hypatos%.operations$", "^hypatos%.resource$" }

local problems = {}
local function problem(fmt, ...) problems[#problems + 1] = fmt:format(...) end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Files below `root` whose names end in `suffix`, sorted (uses find(1)).
local function files_under(root, suffix)
  local out = {}
  local p = io.popen(("find '%s' -type f -name '*%s' 2>/dev/null | sort"):format(root, suffix))
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'", nbsp = " ",
  ldquo = '"', rdquo = '"', lsquo = "'", rsquo = "'", ndash = "--", mdash = "---", hellip = "..." }

--- The text of an HTML fragment: tags dropped, entities decoded (SmartyPants' undone), spaces collapsed.
local function text_of(html)
  local s = html:gsub("<[^>]*>", "")
  s = s:gsub("&#(%d+);", function(n) return utf8.char(tonumber(n)) end)
  s = s:gsub("&(%a+);", function(e) return ENTITIES[e] end)
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

if not read(dir .. "/index.html") then
  io.stderr:write(("docs_check: %s/index.html is missing (run make docs)\n"):format(dir))
  os.exit(1)
end
local pages = files_under(dir, ".html")

-------------------------------------------------------------- 1. code as written

local SAFE = { amp = true, lt = true, gt = true, quot = true, apos = true }
for _, page in ipairs(pages) do
  local html = read(page)
  local rel = page:sub(#dir + 2)
  local function scan(kind, body)
    for e in body:gmatch("&(%a+);") do
      if not SAFE[e] then
        problem("%s: &%s; inside <%s>: %s", rel, e, kind, text_of(body):sub(1, 80))
        return
      end
    end
    local tag = kind == "code" and (body:match("<(em)>") or body:match("<(strong)>") or body:match("<(a)%s"))
    if tag then problem("%s: <%s> inside <code>: %s", rel, tag, text_of(body):sub(1, 80)) end
  end
  for body in html:gmatch("<code>(.-)</code>") do scan("code", body) end
  for body in html:gmatch("<pre[^>]*>(.-)</pre>") do scan("pre", body) end
  -- (a parameter's type, <a class="type" href=…>string</a>, may link there: it is no code span)
  for label in html:gmatch('<a href="https?://www%.lua%.org/manual/[^"]*">(.-)</a>') do
    problem("%s: `%s` became a link to the Lua manual", rel, text_of(label))
  end
end

---------------------------------------------------------- 2, 3. modules, summaries

--- The module comment of a source file: tag ("module"/"internal"), name, text before the tag.
local function module_comment(path)
  local text, lines, started = read(path), {}, false
  for line in text:gmatch("([^\n]*)\n") do
    if not started then
      if line:match("^%-%-%-") then started = true elseif not line:match("^%s*$") then return nil end
    end
    if started then
      if not line:match("^%-%-") then return nil end
      local tag, name = line:match("^%-%-%s*@(%a+)%s+([%w_.]+)")
      if tag then return tag, name, table.concat(lines, " ") end
      lines[#lines + 1] = line:gsub("^%-%-%-?%s?", "")
    end
  end
end

local function internal(name)
  for _, p in ipairs(INTERNAL) do if name:match(p) then return true end end
  return false
end

local sources = files_under("lua/hypatos", ".lua")
sources[#sources + 1] = "doc/core.lua"
local expected = { Modules = {}, Internals = {} }
local comment_of = {}
for _, path in ipairs(sources) do
  local tag, name, text = module_comment(path)
  if not tag or (tag ~= "module" and tag ~= "internal") then
    problem("%s: no module comment (`--- summary.` … `-- @module name` or `-- @internal name`) at the top", path)
  else
    if internal(name) and tag ~= "internal" then
      problem("%s: %s is not for programs to use: `@internal %s`, not `@module`", path, name, name)
    elseif not internal(name) and tag ~= "module" then
      problem("%s: %s is public: `@module %s` (or add it to INTERNAL in tools/docs_check.lua)", path, name, name)
    end
    local list = tag == "internal" and expected.Internals or expected.Modules
    list[#list + 1] = name
    comment_of[name] = text
  end
end
table.sort(expected.Modules)
table.sort(expected.Internals)

--- The index's sections: kind → list of {name, href, summary (HTML)}.
local index = read(dir .. "/index.html")
local content = index:match('<div id="content">(.-)</div> <!%-%- id="content" %-%->') or ""
local listed = {}
local starts = {}
for at in content:gmatch("()<h2>") do starts[#starts + 1] = at end
starts[#starts + 1] = #content + 1
for i = 1, #starts - 1 do
  local chunk = content:sub(starts[i] + 4, starts[i + 1] - 1)
  local kind, tbl = chunk:match("^([^<]+)</h2>"), chunk:match('<table class="module_list">(.-)</table>')
  if kind and tbl then
    local rows = {}
    for href, name, summary in tbl:gmatch('<td class="name"[^>]*><a href="([^"]+)">([^<]+)</a></td>%s*'
        .. '<td class="summary">(.-)</td>') do
      rows[#rows + 1] = { name = name, href = href, summary = summary }
    end
    listed[kind] = rows
  end
end

for _, kind in ipairs({ "Modules", "Internals" }) do
  local rows = listed[kind] or {}
  local names = {}
  for _, r in ipairs(rows) do names[#names + 1] = r.name end
  local want, got = table.concat(expected[kind], " "), table.concat(names, " ")
  if want ~= got then
    problem("index.html: %q lists\n    %s\n  expected\n    %s", kind, got == "" and "(nothing)" or got, want)
  end
  for _, r in ipairs(rows) do
    if not read(dir .. "/" .. r.href) then problem("index.html: %s links to %s, which is missing", r.name, r.href) end
    local comment = comment_of[r.name]
    if not comment then
      problem("index.html: %s (summary %q) is no module of the sources: LDoc skipped the module comment "
        .. "and named the file after its path", r.name, text_of(r.summary))
    else
      local summary, source = text_of(r.summary), comment:gsub("`", ""):gsub("%s+", " ")
      if r.summary:find("`", 1, true) then
        problem("index.html: the summary of %s cuts a code span: %s", r.name, summary)
      elseif summary == "" or source:sub(1, #summary) ~= summary then
        problem("index.html: the summary of %s is %q, not the first sentence of its module comment (%q)",
          r.name, summary, source:sub(1, 80))
      end
    end
  end
end

------------------------------------------------------------------- 4. examples

local examples = files_under("examples", ".lua")
local rows = {}
for _, r in ipairs(listed.Examples or {}) do rows[r.name] = r end
if #examples == 0 then problem("examples/: no example found (run from the repository root)") end
for _, path in ipairs(examples) do
  local base = path:match("([^/]+)$")
  local r = rows[base]
  local first = (read(path) or ""):match("^([^\n]*)")
  if not r then
    problem("index.html: the example %s is not listed under \"Examples\" (config.ld `examples`)", path)
  else
    local page = read(dir .. "/" .. r.href) or ""
    if not text_of(page):find(text_of(first), 1, true) then
      problem("%s: does not show the header comment of %s (%q)", r.href, path, first)
    end
    if text_of(r.summary) == "" then problem("index.html: the example %s has no summary", base) end
  end
end

--------------------------------------------------------------------- 5. style

local css, ours = read(dir .. "/ldoc.css"), read("doc/ldoc/ldoc.css")
if not ours then
  problem("doc/ldoc/ldoc.css is missing")
else
  if css ~= ours then problem("%s/ldoc.css is not doc/ldoc/ldoc.css (config.ld: style = \"doc/ldoc\")", dir) end
  for _, rule in ipairs({
    { "th, td {[^}]*border:", "bordered table cells" },
    { "\nth {[^}]*background:", "a header row" },
    { "\npre {[^}]*overflow%-x: auto", "code blocks that scroll" },
    { "#content {[^}]*max%-width: %d+em", "a content column as wide as the window (up to a measure)" },
  }) do
    if not ours:find(rule[1]) then problem("doc/ldoc/ldoc.css: no rule for %s (%s)", rule[2], rule[1]) end
  end
end
for _, page in ipairs(pages) do
  local rel = page:sub(#dir + 2)
  local up = rel:find("/", 1, true) and "../" or ""
  if not read(page):find('<link rel="stylesheet" href="' .. up .. 'ldoc.css"', 1, true) then
    problem("%s: does not link %sldoc.css", rel, up)
  end
end

if #problems > 0 then
  for _, p in ipairs(problems) do io.stderr:write(p, "\n") end
  io.stderr:write(("docs_check: %d problem(s) in the HTML reference %s/\n"):format(#problems, dir))
  os.exit(1)
end
print(("docs_check: %d pages: code as written, %d modules and %d internals with their summaries, "
  .. "%d examples, the stylesheet"):format(#pages, #expected.Modules, #expected.Internals, #examples))
