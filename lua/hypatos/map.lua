--- `client:map(items, fn, opts)`: many calls in flight at once, one token, one quota.
--
--     local results, errors = client:map(files, function(path, i)
--       local f, err = client.files:upload{ path = path }
--       if not f then return nil, err end
--       return client.documents:process_file{ fileId = f.id, projectId = project }
--     end, { concurrency = 8, on_done = function(i, result, err, done, total) … end })
--     -- results[i]: the document job; errors[i]: nil, or why item i failed
--
-- `fn(item, i)` runs once per item in a task: a coroutine (plain Lua; up to
-- `concurrency` of them, each running one item after another) or an
-- `ngx.thread` (inside nginx); every client method works unchanged inside it,
-- and a wait on the network, a backoff or pacing lets the other tasks run. In
-- plain Lua one libcurl multi handle (`core.multi`) performs every attempt on
-- this thread; inside nginx each task's calls go over cosockets as usual.
-- All tasks share the client's token (one fetch; the others wait for it) and
-- its rate-limit state, so together they stay within the announced quota.
--
-- Results follow Lua's `nil, err` convention: `results[i]` is fn's first value;
-- `errors[i]` is fn's second value only when the first is nil or false (so the
-- natural `return client.users:get(id)`, whose success is `value, meta`, leaves
-- `errors[i]` nil), or what the task raised. Both have `n = #items` and a `#`
-- equal to it (Lua 5.4; on LuaJIT use `.n`). A task that raises is collected like an
-- error; the other tasks go on. Ctrl-C (SIGINT) stops every transfer at once
-- (partial downloads never reach their path) and re-raises
-- "hypatos: interrupted"; so does an error raised by `on_done`.
-- @module hypatos.map

local core = require "hypatos.core"

local M = {}

--- The default number of tasks in flight.
M.DEFAULT_CONCURRENCY = 8

local YIELD = {}                                    -- what the scheduler's own yields carry
local sched_of = setmetatable({}, { __mode = "k" }) -- task coroutine → its scheduler

local Sched = {}
Sched.__index = Sched

--- The scheduler running the current coroutine, if it is a map task of `client`
-- (the client's methods then send their attempts through it).
-- @param client a `hypatos.Client`
-- @treturn table|nil the scheduler, or nil outside a task of this client
function M.current(client)
  local co = coroutine.running()
  local s = co and sched_of[co]
  if s and s.client == client then return s end
  return nil
end

--- Makes the current task wait `seconds` while the other tasks run.
-- @tparam number seconds how long (negative counts as 0)
function Sched:sleep(seconds)
  local co = coroutine.running()
  self.timers[#self.timers + 1] = { at = core.now() + (seconds > 0 and seconds or 0), co = co }
  coroutine.yield(YIELD)
end

--- Ends a task's call: out of the multi, closed; re-raises what its steps raised.
local function finish(self, call, ok, a, b)
  self.waiting[call] = nil
  if not self.closed then self.multi:remove(call) end
  call:close()
  if not ok then error(a, 0) end
  return a, b
end

--- Drives a prepared call from inside a task: `multi:run` steps it (token cache,
-- store and hooks inside) and starts its attempts in the multi, and the task yields
-- while they are in flight. Closes the call. Each step is protected on its own and
-- the task yields outside any pcall: Lua 5.1 cannot yield across one (LuaJIT and
-- 5.2+ can).
-- @param call a `hypatos.Call` (from `client:prepare`)
-- @tparam[opt] function progress `fn(dlnow, dltotal, ulnow, ultotal)` for its transfers
-- @return what `client:request` returns
function Sched:run(call, progress)
  local multi = self.multi
  local ok, what, a, b = pcall(multi.run, multi, call, core.now(), progress)
  while true do
    if not ok then return finish(self, call, false, what) end
    if what == "send" then
      self.waiting[call] = coroutine.running()
      coroutine.yield(YIELD)
      local raised = self.raised[call]
      if raised ~= nil then -- the progress function raised: its own error, as in a blocking call
        self.raised[call] = nil
        return finish(self, call, false, raised)
      end
    elseif what == "sleep" then
      self:sleep(a)
    elseif what == "done" then
      return finish(self, call, true, a, b)
    else
      return finish(self, call, true, nil, a)
    end
    ok, what, a, b = pcall(multi.run, multi, call, core.now(), progress)
  end
end

--- `client:request` inside a task (same arguments and results).
-- @tparam string method the HTTP method
-- @tparam string path the path relative to `base_url`
-- @tparam[opt] table opts request options
-- @return value, meta | nil, err
function Sched:request(method, path, opts)
  local call, err = self.client:prepare(method, path, opts)
  if not call then return nil, err end
  return self:run(call, type(opts) == "table" and opts.progress or nil)
end

--- `client:call(op, …)` inside a task (a resource method's direct call): the same
-- arguments and results, nothing at all for a call that takes the general path.
-- @param op a `hypatos.Op`
-- @return value, meta | nil, err | nothing
function Sched:call(op, ...)
  local call, err = self.client:prepare_op(op, ...)
  if call then return self:run(call) end
  if err ~= nil then return nil, err end
end

--- `client:token()` inside a task.
-- @return token | nil, err
function Sched:token()
  return self:run(self.client:prepare_token())
end

--- Checks map's arguments; returns the options with defaults.
local function check(items, fn, opts, level)
  if type(items) ~= "table" then
    error("hypatos: client:map items must be an array (table), got " .. type(items), level)
  end
  if type(fn) ~= "function" then error("hypatos: client:map fn must be a function, got " .. type(fn), level) end
  if opts ~= nil and type(opts) ~= "table" then
    error("hypatos: client:map options must be a table, got " .. type(opts), level)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "concurrency" and k ~= "on_done" then
      error(("hypatos: client:map: unknown option %q (allowed: concurrency, on_done)"):format(tostring(k)), level)
    end
  end
  local c = opts.concurrency
  if c == nil then
    c = M.DEFAULT_CONCURRENCY
  elseif type(c) ~= "number" or c ~= math.floor(c) or c < 1 or c > 1000 then
    error("hypatos: client:map: option \"concurrency\" must be an integer from 1 to 1000, got " .. tostring(c),
      level)
  end
  if opts.on_done ~= nil and type(opts.on_done) ~= "function" then
    error("hypatos: client:map: option \"on_done\" must be a function, got " .. type(opts.on_done), level)
  end
  return c, opts.on_done
end

--- Result tables with n and a length of #items.
local function results_table(n)
  return setmetatable({ n = n }, { __len = function() return n end })
end

--- Stores what task i ended with: fn's values (ok) or what it raised.
local function collect(results, errors, i, ok, a, b)
  if not ok then
    results[i], errors[i] = nil, a
  elseif a == nil or a == false then
    results[i], errors[i] = a, b
  else
    results[i], errors[i] = a, nil -- a success: its second value (e.g. meta) is no error
  end
end

--- Whether a coroutine can yield across `pcall`: Lua 5.2+ and LuaJIT, not Lua 5.1.
-- (Known from the version, not probed: inside nginx a yield at `require` time would
-- reach OpenResty's scheduler.)
local PCALL_YIELDS = _VERSION ~= "Lua 5.1" or type(rawget(_G, "jit")) == "table"

--- Plain Lua: coroutines over one libcurl multi handle. Up to `concurrency` workers,
-- each a coroutine that takes the next item when its last is done (where `pcall` can
-- yield; on Lua 5.1 one coroutine per item): no coroutine, closure or table per item.
-- The scheduler reports the items done (`on_done`) after each resume, outside the
-- workers, so what `on_done` raises stops the map.
local function map_curl(client, items, fn, concurrency, on_done)
  local n = #items
  local results, errors = results_table(n), results_table(n)
  local s = setmetatable({ client = client, multi = core.multi(), waiting = {}, timers = {}, raised = {} }, Sched)
  local next_i, running, done = 1, 0, 0
  local item_of = {}                         -- worker coroutine → the item it runs
  local ended, nended = {}, 0                -- items done since the scheduler last reported

  local function finished(i, ok, a, b)
    collect(results, errors, i, ok, a, b)
    nended = nended + 1
    ended[nended] = i
  end

  local function worker()
    local co = coroutine.running()
    repeat
      local i = next_i
      next_i = i + 1
      item_of[co] = i
      if PCALL_YIELDS then
        finished(i, pcall(fn, items[i], i))
      else
        finished(i, true, fn(items[i], i)) -- an error ends the coroutine: resume reports it
      end
    until not PCALL_YIELDS or next_i > n
    item_of[co] = nil
  end

  local function report()
    for k = 1, nended do
      local i = ended[k]
      ended[k] = nil
      done = done + 1
      if on_done then on_done(i, results[i], errors[i], done, n) end
    end
    nended = 0
  end

  local function resume(co)
    local ok, a = coroutine.resume(co)
    local gone = coroutine.status(co) == "dead"
    if not ok then -- Lua 5.1: fn raised
      finished(item_of[co], false, a)
    elseif not gone and a ~= YIELD then
      -- fn yielded for its own purposes: that cannot work inside map; the worker is dropped
      finished(item_of[co], false, "hypatos: client:map: fn yielded a value of its own (coroutine.yield inside a task)")
      gone = true
    end
    if gone then
      item_of[co], sched_of[co] = nil, nil
      running = running - 1
    end
    report()
  end

  local ok, err = pcall(function()
    while done < n do
      while running < concurrency and next_i <= n do
        local co = coroutine.create(worker)
        sched_of[co] = s
        running = running + 1
        resume(co)
      end
      if running == 0 then break end
      -- the earliest timer decides how long the multi may wait
      local now, soonest = core.now(), nil
      for _, t in ipairs(s.timers) do
        if not soonest or t.at < soonest then soonest = t.at end
      end
      local wait = soonest and math.max(0, soonest - now) or 1
      local ended_calls, raised
      if s.multi:count() > 0 then
        ended_calls, raised = s.multi:wait(wait)
        for call, e in pairs(raised) do s.raised[call] = e end
      else
        core.sleep(wait)
        ended_calls = {}
      end
      for _, call in ipairs(ended_calls) do
        local co = s.waiting[call]
        if co then resume(co) end
      end
      now = core.now()
      local due, keep = {}, {}
      for _, t in ipairs(s.timers) do
        if t.at <= now then due[#due + 1] = t else keep[#keep + 1] = t end
      end
      s.timers = keep
      table.sort(due, function(x, y) return x.at < y.at end)
      for _, t in ipairs(due) do resume(t.co) end
    end
  end)
  s.closed = true
  s.multi:close()                            -- aborts what is left (Ctrl-C, on_done raised)
  for co in pairs(item_of) do sched_of[co] = nil end
  if not ok then
    -- Ctrl-C while map's own Lua code ran: the interpreter's "…: interrupted!" (its hook, now gone)
    if type(err) == "string" and err:find(": interrupted!$") then err = "hypatos: interrupted" end
    error(err, 0)
  end
  return results, errors
end

--- Inside nginx: `ngx.thread`s over cosockets.
local function map_ngx(_, items, fn, concurrency, on_done)
  local n = #items
  local results, errors = results_table(n), results_table(n)
  local next_i, done = 1, 0
  local function worker()
    while next_i <= n do
      local i = next_i
      next_i = i + 1
      local ok, a, b = pcall(fn, items[i], i)
      collect(results, errors, i, ok, a, b)
      done = done + 1
      if on_done then on_done(i, results[i], errors[i], done, n) end
    end
  end
  local threads = {}
  for k = 1, math.min(concurrency, n) do threads[k] = ngx.thread.spawn(worker) end
  for k = 1, #threads do
    local ok, err = ngx.thread.wait(threads[k])
    if not ok then -- on_done raised: stop the others, re-raise
      for j = k + 1, #threads do ngx.thread.kill(threads[j]) end
      error(err, 0)
    end
  end
  return results, errors
end

--- See the module comment.
-- @tparam table client
-- @tparam table items an array
-- @tparam function fn `fn(item, i) → result, err`
-- @tparam[opt] table opts `concurrency` (1–1000, default 8), `on_done(i, result, err, done, total)`
-- @tparam string driver "curl" or "ngx"
-- @treturn table results (`results[i]`: fn's first value)
-- @treturn table errors (`errors[i]`: fn's second value when the first is nil or false, or what
--   the task raised)
function M.map(client, items, fn, opts, driver)
  local concurrency, on_done = check(items, fn, opts, 4)
  if driver == "ngx" then return map_ngx(client, items, fn, concurrency, on_done) end
  return map_curl(client, items, fn, concurrency, on_done)
end

return M
