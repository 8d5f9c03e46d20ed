--- Upload every PDF of a folder, process each into a project, wait until every
-- document is final and print a table: file name → document id → final state.
--
-- WRITES: uploads the files and creates one document per file in the project.
-- Credentials come from the environment: HYPATOS_CLIENT_ID, HYPATOS_CLIENT_SECRET
-- (and HYPATOS_BASE_URL for another server, e.g. the local one `make demo` starts).
--
--   lua5.4 examples/upload_and_process.lua [folder] [project_id] [--state FILE] [--timeout SECONDS]
--
--   folder       default: data/pdfs beside this script
--   project_id   default: the first project the API lists (fine for a demo; pass one for real work)
--   --state FILE remembers "file name <TAB> document id" for every file processed; a second
--                run with the same file skips those files (resuming a half-finished batch
--                without uploading anything twice) and just waits for their documents;
--                delete a file's line to have it uploaded and processed again
--   --timeout S  overall time limit for waiting for all documents (default 900 s)
--
-- A file that cannot be uploaded or processed is reported and the rest goes on.
-- Exit status: 0 every file has a document in a final state; 2 some file could not be
-- uploaded or processed, or its document was not final in time; 1 a fatal error.
-- Runs on Lua 5.4 and LuaJIT.
-- @script upload_and_process
local hypatos = require "hypatos"

local function die(msg)
  io.stderr:write(tostring(msg), "\n")
  os.exit(1)
end

-- Arguments: two positional ones and two options.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local positional, state_path, time_limit = {}, nil, 900
local i = 1
while arg[i] do
  local a = arg[i]
  if a == "--state" then
    state_path, i = arg[i + 1] or die("--state needs a file name"), i + 1
  elseif a == "--timeout" then
    time_limit, i = tonumber(arg[i + 1]) or die("--timeout needs a number of seconds"), i + 1
  elseif a:sub(1, 2) == "--" then
    die("unknown option " .. a)
  else
    positional[#positional + 1] = a
  end
  i = i + 1
end
local folder = positional[1] or (here .. "/data/pdfs")
local project_id = positional[2]

-- The PDF files in the folder, sorted (no directory listing in standard Lua: ask ls).
local names = {}
local ls = assert(io.popen("ls -1 -- '" .. folder:gsub("'", "'\\''") .. "' 2>/dev/null"))
for name in ls:lines() do
  if name:lower():match("%.pdf$") then names[#names + 1] = name end
end
ls:close()
table.sort(names)
if #names == 0 then die("no PDF files in " .. folder) end

local client = hypatos.new()

-- Refuse to start without the scopes the whole batch needs: better than orphan uploads.
local token, terr = client:token()
if not token then die(terr) end
for _, scope in ipairs({ "files.write", "documents.write", "documents.read" }) do
  if token.scope and not (" " .. token.scope .. " "):find(" " .. scope .. " ", 1, true) then
    die("this client lacks the scope " .. scope)
  end
end

if not project_id then
  local page, err = client.projects:list({ limit = 1 })
  if not page then die(err) end
  if not page.data[1] then die("no project to process into: pass a project id") end
  project_id = page.data[1].id
end
print(("%d PDF files from %s into project %s"):format(#names, folder, project_id))

-- Files already processed by an earlier run (when a state file is used).
local known = {}
local state_file
if state_path then
  local f = io.open(state_path, "r")
  if f then
    for line in f:lines() do
      local name, id = line:match("^(.*)\t([^\t]+)$")
      if name then known[name] = id end
    end
    f:close()
  end
  local err
  state_file, err = io.open(state_path, "a")
  if not state_file then die(err) end
end

-- 1. Upload and process each file; a failure is noted and the batch goes on.
local rows = {}
for _, name in ipairs(names) do
  local row = { file = name, id = known[name] }
  rows[#rows + 1] = row
  if row.id then
    print(("  %s: document %s (processed earlier)"):format(name, row.id))
  else
    local file, err = client.files:upload({ path = folder .. "/" .. name })
    local job
    if file then job, err = client.documents:process_file({ fileId = file.id, projectId = project_id }) end
    if job then
      row.id = job.documentId
      if state_file then
        state_file:write(name, "\t", row.id, "\n")
        state_file:flush() -- written at once: a crash later loses nothing
      end
      print(("  %s: document %s"):format(name, row.id))
    else
      row.problem = (file and "processing failed: " or "upload failed: ") .. tostring(err)
      print(("  %s: %s"):format(name, row.problem))
    end
  end
end
if state_file then state_file:close() end

-- 2. Wait for all documents under one overall time limit. The documents are processed
-- in parallel by the API, so waiting for them one after the other costs no more time;
-- once the limit has passed, each remaining document is polled once for its state.
local deadline = hypatos.now() + time_limit
for _, row in ipairs(rows) do
  if row.id then
    local left = math.max(0, deadline - hypatos.now())
    local doc, err = client.documents:wait(row.id, { timeout = left, interval = 1, max_interval = 15 })
    if doc then
      row.state = doc.state
    elseif err.kind == "timeout" and err.document then
      row.state, row.problem = err.document.state, ("not final after %g s"):format(time_limit)
    else
      row.problem = "waiting failed: " .. tostring(err)
    end
  end
end

-- 3. The table and a summary.
local function pad(s, width) -- pads by characters, not bytes (names may be UTF-8)
  return s .. (" "):rep(width - #s:gsub("[\128-\191]", ""))
end
local width = #"file"
for _, row in ipairs(rows) do width = math.max(width, #row.file:gsub("[\128-\191]", "")) end
print("")
print(pad("file", width) .. "  " .. pad("document", 24) .. "  state")
local count, problems = {}, {}
for _, row in ipairs(rows) do
  print(pad(row.file, width) .. "  " .. pad(row.id or "-", 24) .. "  " .. (row.state or "-"))
  if row.state then count[row.state] = (count[row.state] or 0) + 1 end
  if row.problem then problems[#problems + 1] = "  " .. row.file .. ": " .. row.problem end
end
local parts = {}
for state, n in pairs(count) do parts[#parts + 1] = n .. " " .. state end
table.sort(parts)
print(("\n%d files: %s; %d with problems"):format(#rows, parts[1] and table.concat(parts, ", ") or "no documents",
  #problems))
if #problems > 0 then
  print(table.concat(problems, "\n"))
  os.exit(2)
end
