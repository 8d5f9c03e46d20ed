--- The `files` commands: upload files (and process them into documents), download one.
-- `files upload PATH... [--project ID] [--wait] [--timeout S] [--concurrency N]
-- [--content-type T]` and `files download ID [-o PATH]`.
--
-- Upload: every file through `client:map` (one token, one quota), sent as
-- `--content-type` or as its extension says (a file with neither fails, nothing
-- sent, with an error naming `--content-type`), optionally
-- processed into a document of `--project` and, with `--wait`, waited for until
-- final (then without `--project`: the first project the API lists). One result
-- per file, in the order given: path, file id, document id, state (and the error,
-- also written to stderr, and its `outcome`). Exit 0 when every file went through,
-- 2 when some failed, 1 when all did. A document's final state ("failed" too) is
-- reported, not counted as a failure of the command. A failed upload or processing
-- whose outcome is `unknown` ("may have been stored" / "processed") or `done`
-- ("stored, answer lost") is said so on stderr, and counted in a last line: such
-- files must not be uploaded again blindly (the API has no idempotency key).
--
-- Download: streamed to a file that appears only once complete; its default name
-- is the server's file name reduced by `hypatos.filename.safe` (never the raw
-- name), else the file id; an existing file is not overwritten unless named with -o.
-- @internal hypatos.cli.files

local hypatos = require "hypatos"
local core = require "hypatos.core"
local filename = require "hypatos.filename"
local output = require "hypatos.cli.output"

local M = {}

local COLUMNS = { "path", "fileId", "documentId", "state", "error", "outcome" }

--- What a failed step's outcome means for the file, by step (`err.outcome`).
local MEANING = {
  upload = { unknown = "may have been stored", done = "stored, answer lost" },
  process = { unknown = "may have been processed", done = "processed, answer lost" },
}

--- Size of a file in bytes, or nil.
-- @tparam string path
-- @treturn integer|nil
local function size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

--- One error line without the "hypatos: " prefix (for the result table).
-- @param err
-- @treturn string
local function short(err)
  return (tostring(err):gsub("[\r\n]+", " "):gsub("^hypatos: ", ""))
end

--- `files upload`.
-- @tparam table ctx
-- @treturn integer exit status
local function upload(ctx)
  local a, client = ctx.args, ctx:client()
  local project = a.project
  if a.wait and not project then
    local page, err = client.projects:list({ limit = 1 })
    if not page then ctx:err(err) return 1 end
    project = page.data and page.data[1] and page.data[1].id
    if not project then ctx:err("--wait needs a project: there is none, and --project was not given") return 1 end
  end
  local paths = a.path
  local total, sent = 0, {}
  for i, p in ipairs(paths) do
    total = total + (size(p) or 0)
    sent[i] = 0
  end
  local bar = ctx:progress()
  local uploaded, done_n = 0, 0
  local deadline = hypatos.now() + a.timeout
  local function show()
    if a.wait and uploaded == #paths then
      bar:count(("waiting for %d documents"):format(#paths), done_n, #paths)
    else
      local s = 0
      for i = 1, #paths do s = s + sent[i] end
      bar:bytes(("uploading %d file%s"):format(#paths, #paths == 1 and "" or "s"), s, total)
    end
  end
  local recs = {}                            -- what is known of each file, failed or not
  local _, errors = client:map(paths, function(path, i)
    local rec = { path = path }
    recs[i] = rec
    if not a.content_type and not filename.content_type(filename.basename(path)) then
      rec.step = "upload" -- the library would say "pass content_type": name the command's option
      return nil, core.error({ kind = "invalid", message = ("cannot tell the content type of %q from its name; "
        .. "give --content-type (e.g. --content-type application/pdf)"):format(filename.basename(path)) })
    end
    local f, err = client.files:upload{ path = path, content_type = a.content_type, progress = function(_, _, ulnow)
      sent[i] = ulnow
      show()
    end }
    uploaded = uploaded + 1
    if not f then
      rec.step = "upload"
      return nil, err
    end
    sent[i] = size(path) or sent[i]
    rec.fileId = f.id
    if not project then return rec end
    local doc
    doc, err = client.documents:process_file{ fileId = f.id, projectId = project }
    if not doc then
      rec.step = "process"
      return nil, err
    end
    rec.documentId = doc.documentId
    if not a.wait then
      local current = client.documents:get(doc.documentId)
      rec.state = current and current.state or nil
      return rec
    end
    local final
    final, err = client.documents:wait(doc.documentId, { timeout = math.max(deadline - hypatos.now(), 0) })
    if not final then
      if type(err) == "table" and err.document then rec.state = err.document.state end
      return nil, err
    end
    rec.state = final.state
    return rec
  end, { concurrency = a.concurrency, on_done = function()
    done_n = done_n + 1
    show()
  end })
  bar:finish()
  local failed, maybe, lost = 0, 0, 0
  local w = output.writer(ctx.format, ctx.stdout, COLUMNS,
    { csv_raw = ctx.output.csv_raw, cut_left = { path = true } }) -- a long path keeps its file name
  for i, p in ipairs(paths) do
    local rec, err = recs[i] or { path = p }, errors[i]
    local step = rec.step
    rec.step = nil
    if err ~= nil then
      failed = failed + 1
      rec.error = short(err)
      local outcome = type(err) == "table" and err.outcome or nil
      rec.outcome = outcome
      local meaning = MEANING[step] and MEANING[step][outcome]
      if outcome == "unknown" and meaning then maybe = maybe + 1 end
      if outcome == "done" and meaning then lost = lost + 1 end
      ctx:err(p .. ": " .. (meaning and (meaning .. ": ") or "") .. short(err))
    end
    w:item(rec)
  end
  w:finish()
  if maybe + lost > 0 then
    ctx:err(("%d file%s may have been stored or processed and %d %s stored or processed with the answer "
      .. "lost: check before sending them again"):format(maybe, maybe == 1 and "" or "s", lost,
      lost == 1 and "was" or "were"))
  end
  if failed == 0 then return 0 end
  return failed == #paths and 1 or 2
end

--- A path in the current directory that does not exist yet, for a download in progress.
-- @tparam string id the file id
-- @treturn string
local function temp_name(id)
  local base = ".hypatos-download-" .. (filename.safe(id) or "file")
  for n = 0, 1000 do
    local p = base .. (n > 0 and ("-" .. n) or "") .. ".part"
    if not size(p) then return p end
  end
  return base .. ".part"
end

--- `files download`.
-- @tparam table ctx
-- @treturn integer exit status
local function download(ctx)
  local a, client = ctx.args, ctx:client()
  local bar = ctx:progress()
  local function progress(dlnow, dltotal)
    bar:bytes("downloading " .. a.id, dlnow, dltotal)
  end
  if a.output == "-" then
    local bytes, err = client.files:download(a.id, { progress = progress })
    bar:finish()
    if not bytes then ctx:err(err) return 1 end
    ctx.stdout:write(bytes)
    ctx.stdout:flush()
    return 0
  end
  local target = a.output or temp_name(a.id)
  local ok, meta = client.files:download(a.id, { path = target, progress = progress })
  bar:finish()
  if not ok then ctx:err(meta) return 1 end
  if not a.output then
    local name = filename.safe(meta.filename) or filename.safe(a.id) or "download"
    if size(name) then
      os.remove(target)
      ctx:err(("%s exists already; name the file with -o"):format(name))
      return 1
    end
    local renamed, err = os.rename(target, name)
    if not renamed then
      os.remove(target)
      ctx:err(err)
      return 1
    end
    target = name
  end
  ctx.stdout:write(target, "\n")
  return 0
end

--- Runs the command.
-- @tparam table ctx
-- @treturn integer exit status
function M.run(ctx)
  if ctx.args.action == "upload" then return upload(ctx) end
  return download(ctx)
end

return M
