--- Progress on stderr for the `hypatos` command: a bar with bytes and rate for
-- uploads and downloads, a counter with ETA for bulk commands and waits.
-- Shown only when stderr is a terminal and `--quiet` is not given; otherwise
-- every method does nothing. One line, redrawn in place (at most 10 times a
-- second), cleared by `finish`.
-- @internal hypatos.cli.progress

local core = require "hypatos.core"
local escape = require("hypatos.printable").escape

local M = {}

--- Whether a standard stream is a terminal.
-- Uses lua-term's `isatty` when installed, else `test -t` in a child shell (which inherits the stream).
-- @tparam file file io.stdout or io.stderr
-- @tparam integer fd its descriptor number (1 or 2)
-- @treturn boolean
function M.isatty(file, fd)
  local ok, term = pcall(require, "term")
  if ok and type(term) == "table" and term.isatty then return term.isatty(file) == true end
  return require("hypatos.cli.compat").succeeded(os.execute("test -t " .. fd))
end

--- Human-readable byte count ("1.5 MiB"; below 1 KiB in whole bytes, a rate too: "814 B").
-- @tparam number n bytes, or bytes per second (fractions allowed)
-- @treturn string
function M.bytes(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local u = 1
  while n >= 1024 and u < #units do n, u = n / 1024, u + 1 end
  return u == 1 and ("%d B"):format(math.floor(n)) or ("%.1f %s"):format(n, units[u])
end

--- Seconds as "42 s", "3 min 5 s" or "1 h 2 min".
-- @tparam number s
-- @treturn string
function M.duration(s)
  s = math.max(0, math.floor(s + 0.5))
  if s < 60 then return s .. " s" end
  if s < 3600 then return ("%d min %d s"):format(math.floor(s / 60), s % 60) end
  return ("%d h %d min"):format(math.floor(s / 3600), math.floor(s % 3600 / 60))
end

local Progress = {}
Progress.__index = Progress

--- A progress line.
-- @tparam boolean enabled false: every method does nothing
-- @tparam[opt] file stream default io.stderr
-- @treturn table
function M.new(enabled, stream)
  return setmetatable({ enabled = enabled, stream = stream or io.stderr, started = core.now(), last = 0,
    shown = false }, Progress)
end

--- Writes `text` over the current line (throttled unless `force`; never twice the same text),
-- its control characters escaped.
-- @tparam string text
-- @tparam[opt] boolean force draw even if drawn less than 0.1 s ago
function Progress:draw(text, force)
  if not self.enabled or (self.shown and text == self.text) then return end
  local now = core.now()
  if not force and now - self.last < 0.1 then return end
  self.last, self.text = now, text
  self.stream:write("\r\27[K", escape(text))
  self.stream:flush()
  self.shown = true
end

--- A bar for a transfer: `label  1.2 MiB / 4.0 MiB  30% [######--------------]  2.1 MiB/s`.
-- @tparam string label
-- @tparam number done bytes so far
-- @tparam number total bytes in all (0 when unknown)
function Progress:bytes(label, done, total)
  if not self.enabled then return end
  local elapsed = math.max(core.now() - self.started, 1e-3)
  local rate = M.bytes(done / elapsed) .. "/s"
  if total and total > 0 then
    local frac = math.min(done / total, 1)
    local width = 20
    local full = math.floor(frac * width + 0.5)
    self:draw(("%s  %s / %s  %3d%% [%s%s]  %s"):format(label, M.bytes(done), M.bytes(total),
      math.floor(frac * 100), ("#"):rep(full), ("-"):rep(width - full), rate), done >= total)
  else
    self:draw(("%s  %s  %s"):format(label, M.bytes(done), rate))
  end
end

--- A counter for bulk work: `label  12/40  ETA 35 s`.
-- @tparam string label
-- @tparam integer done items finished
-- @tparam integer total items in all
function Progress:count(label, done, total)
  if not self.enabled then return end
  local elapsed = core.now() - self.started
  local eta = "ETA ?"
  if done > 0 and total >= done then eta = "ETA " .. M.duration(elapsed / done * (total - done)) end
  self:draw(("%s  %d/%d  %s"):format(label, done, total, eta), done >= total)
end

--- A wait: `label  12 s elapsed, at most 588 s left`.
-- @tparam string label
-- @tparam number timeout seconds allowed in all
function Progress:wait(label, timeout)
  if not self.enabled then return end
  local elapsed = core.now() - self.started
  self:draw(("%s  %s elapsed, at most %s left"):format(label, M.duration(elapsed),
    M.duration(timeout - elapsed)), true)
end

--- Clears the line (when something was drawn).
function Progress:finish()
  if self.enabled and self.shown then
    self.stream:write("\r\27[K")
    self.stream:flush()
    self.shown = false
  end
end

return M
