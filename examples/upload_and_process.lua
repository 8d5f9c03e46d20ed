--- Upload every PDF of a folder, process each into a project, wait until every
-- document is final and print a table: file name → document id → final state.
--
-- WRITES: uploads the files and creates one document per file in the project.
-- Credentials come from the environment: HYPATOS_CLIENT_ID, HYPATOS_CLIENT_SECRET
-- (and HYPATOS_BASE_URL for another server, e.g. the local one `make demo` starts).
--
--   lua5.4 examples/upload_and_process.lua [folder] [project_id] [--state FILE] [--timeout SECONDS]
--                                          [--concurrency N]
--
--   folder       default: data/pdfs beside this script
--   project_id   default: the first project the API lists (fine for a demo; pass one for real work)
--   --state FILE remembers what became of every file: "file name <TAB> document id" once
--                processed, "<TAB>file:<file id>" once uploaded but not processed (the next
--                run processes that file without uploading it again), and "<TAB>unsure:upload"
--                or "<TAB>unsure:process:<file id>" when the upload or the processing failed in
--                a way that may have reached the server (err.outcome "unknown": may have been
--                stored; "done": stored, only the answer was lost). A second run skips processed
--                files (resuming a half-finished batch without uploading anything twice) and just
--                waits for their documents; it never sends an "unsure" file again by itself:
--                check in the Hypatos Studio, then delete the file's lines to send it again
--   --timeout S  overall time limit for waiting for all documents (default 900 s)
--   --concurrency N  files uploaded and processed (and documents waited for) at once, with
--                client:map (default 8; 1 = one after the other). Progress goes to stderr
--                when it is a terminal.
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
local positional, state_path, time_limit, concurrency = {}, nil, 900, 8
local i = 1
while arg[i] do
  local a = arg[i]
  if a == "--state" then
    state_path, i = arg[i + 1] or die("--state needs a file name"), i + 1
  elseif a == "--timeout" then
    time_limit, i = tonumber(arg[i + 1]) or die("--timeout needs a number of seconds"), i + 1
  elseif a == "--concurrency" then
    concurrency = tonumber(arg[i + 1])
    if not concurrency or concurrency < 1 or concurrency ~= math.floor(concurrency) then
      die("--concurrency needs a whole number of at least 1")
    end
    i = i + 1
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
-- The last line of a file wins: a document id, "file:<id>", "unsure:upload" or
-- "unsure:process:<file id>".
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

--- Remembers what became of a file (written at once: a crash later loses nothing).
local function remember(name, what)
  if not state_file then return end
  state_file:write(name, "\t", what, "\n")
  state_file:flush()
end

--- True when a failed call may have reached the server (the API has no idempotency key).
local function unsure(err)
  return type(err) == "table" and (err.outcome == "unknown" or err.outcome == "done")
end

--- An error with what its outcome means for the file.
local function describe(err, stored)
  if type(err) == "table" and err.outcome == "unknown" then
    return ("may have been %s: %s"):format(stored, tostring(err))
  elseif type(err) == "table" and err.outcome == "done" then
    return ("%s, only the answer was lost: %s"):format(stored, tostring(err))
  end
  return tostring(err)
end

--- Progress on stderr, only when it is a terminal: "label: done/total".
local on_tty = os.execute("test -t 2")
local tty = on_tty == true or on_tty == 0 -- Lua 5.4 / LuaJIT
local function progress(label)
  if not tty then return nil end
  return function(_, _, _, done, total)
    io.stderr:write(("\r%s: %d/%d"):format(label, done, total), done == total and "\n" or "")
  end
end

-- 1. Upload and process the files, `concurrency` at a time; a failure is noted and the
-- batch goes on. Every task shares the client's token and its rate-limit pacing.
local rows = {}
for _, name in ipairs(names) do
  local k = known[name]
  local row = { file = name }
  if k and k:match("^unsure:") then
    row.unsure = k
  elseif k and k:match("^file:") then
    row.file_id = k:sub(6)
  else
    row.id = k
  end
  rows[#rows + 1] = row
end
local results, errors = client:map(rows, function(row)
  if row.id then return row.id end
  if row.unsure then
    return nil, ("not sent again (%s in %s: it may exist already; check, then delete its lines to retry)")
      :format(row.unsure, state_path)
  end
  local file_id = row.file_id
  if not file_id then
    local file, err = client.files:upload({ path = folder .. "/" .. row.file })
    if not file then
      if unsure(err) then remember(row.file, "unsure:upload") end
      return nil, "upload failed: " .. describe(err, "stored")
    end
    file_id = file.id
  end
  local job, perr = client.documents:process_file({ fileId = file_id, projectId = project_id })
  if not job then
    remember(row.file, (unsure(perr) and "unsure:process:" or "file:") .. file_id)
    return nil, "processing failed: " .. describe(perr, "processed")
  end
  remember(row.file, job.documentId)
  return job.documentId
end, { concurrency = concurrency, on_done = progress("uploaded") })
for k, row in ipairs(rows) do
  if row.id then
    print(("  %s: document %s (processed earlier)"):format(row.file, row.id))
  elseif results[k] then
    row.id = results[k]
    print(("  %s: document %s"):format(row.file, row.id))
  else
    row.problem = tostring(errors[k])
    print(("  %s: %s"):format(row.file, row.problem))
  end
end
if state_file then state_file:close() end

-- 2. Wait for all documents under one overall time limit, `concurrency` at a time (the
-- API processes them in parallel); once the limit has passed, each remaining document is
-- polled once for its state.
local deadline = hypatos.now() + time_limit
local waiting = {}
for _, row in ipairs(rows) do if row.id then waiting[#waiting + 1] = row end end
local docs, werrs = client:map(waiting, function(row)
  local left = math.max(0, deadline - hypatos.now())
  return client.documents:wait(row.id, { timeout = left, interval = 1, max_interval = 15 })
end, { concurrency = concurrency, on_done = progress("final") })
for k, row in ipairs(waiting) do
  local doc, err = docs[k], werrs[k]
  if doc then
    row.state = doc.state
  elseif type(err) == "table" and err.kind == "timeout" and err.document then
    row.state, row.problem = err.document.state, ("not final after %g s"):format(time_limit)
  else
    row.problem = "waiting failed: " .. tostring(err)
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
