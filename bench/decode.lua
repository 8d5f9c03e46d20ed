--- bench/decode.lua — benchmark "decode" of `make bench` (bench/run.lua): issue 19, "decoding the
-- 628-byte user: no slower than lua-cjson's own decode on the same bytes".
--
-- hypatos.core's json_decode (csrc/binding/json_decode.c: the decoder every answer of a call goes
-- through) against lua-cjson's cjson.decode (Debian lua-cjson 2.1.0), on the same bytes:
--   * user: the user the get benchmark fetches (bench/get.lua pick_target), as the local server
--     sends it;
--   * page: GET /users?limit=50 as the local server sends it (a 50-user list page);
--   * document: a ~1 MB document JSON built here, deterministic (M.document: a document with
--     fields, entities, line items and pages of words; nested objects and arrays, strings, some
--     with escapes and UTF-8, integers, decimals, booleans, nulls, empty arrays).
-- The three texts are written to a temporary directory; each side is one child process
-- (bench/decode_child.lua) that decodes each text in a loop for about --decode-ms ms of CPU
-- and reports its CPU time (os.clock) per call. Under Lua 5.4 (build/5.4) and under LuaJIT
-- (build/luajit); every round runs both sides under both VMs, the order of the two sides
-- swapped every round. The ratio checked is the median of the per-round ratios
-- hypatos time / cjson time (the two processes of a round ran back to back). Both decoders
-- must see the same document (the same count of tables, keys, strings, string bytes, numbers,
-- booleans and nulls), else the run fails.
-- Targets: user, hypatos/cjson ≤ 1.00 under Lua 5.4 and under LuaJIT; the page and the
-- document are reported.

local lib = require "bench.lib"
local median, minmax = lib.median, lib.minmax

local M = { name = "decode" }

M.options = {
  { "--decode-rounds", "decode_rounds", 5, "rounds of the decode benchmark (each: both decoders under Lua 5.4"
    .. " and LuaJIT)", min = 1 },
  { "--decode-ms", "decode_ms", 300, "CPU milliseconds each decode loop runs per document and process", min = 1 },
}

------------------------------------------------------------------ the 1 MB document

-- A deterministic generator (a linear congruential one, integers only).
local function lcg(seed)
  local x = seed
  return function(n) -- an integer in [0, n)
    x = (x * 1103515245 + 12345) % 2147483648
    return (x // 65536) % n
  end
end

local WORDS = { "Rechnung", "Invoice", "Lieferschein", "Menge", "Einzelpreis", "Gesamt", "MwSt.", "Netto",
  "Brutto", "Artikel", "Bestellnummer", "Kunde", "Müller", "Straße", "Zahlungsziel", "Skonto", "EUR", "Pos.",
  "Beschreibung", "Schrauben", "M8x40", "verzinkt", "Palette", "Lieferung", "frei", "Haus", "Bankverbindung",
  "IBAN", "BIC", "Seite", "von", "Datum", "Lagerort", "Charge", "Café", "Größe", "Übertrag" }

local function q(s) return '"' .. s .. '"' end

local function hex_id(r)
  local t = {}
  for i = 1, 24 do
    local k = r(16) + 1
    t[i] = ("0123456789abcdef"):sub(k, k)
  end
  return table.concat(t)
end

local function dec(r, scale, digits)
  return ("%." .. digits .. "f"):format(r(scale * 10 ^ digits) / 10 ^ digits)
end

local function box(r)
  return ("[%s,%s,%s,%s]"):format(dec(r, 1, 6), dec(r, 1, 6), dec(r, 1, 6), dec(r, 1, 6))
end

local function words(r, n)
  local t = {}
  for i = 1, n do t[i] = WORDS[r(#WORDS) + 1] end
  return table.concat(t, " ")
end

--- The ~`size`-byte document JSON (deterministic: the same bytes on every run and Lua version).
-- @tparam integer size the size to reach (the document ends with the page that passes it)
-- @treturn string
function M.document(size)
  local r = lcg(19)
  local out = {}
  local n = 0
  local function put(s)
    out[#out + 1] = s
    n = n + #s
  end
  put(('{"id":%s,"fileName":"Rechnung 2026-0419 \\"Müller & Söhne\\".pdf","state":"done","createdAt":'
    .. '"2026-04-19T08:15:42.123456Z","updatedAt":"2026-04-19T08:16:03.5Z","pageCount":null,"language":"de",'
    .. '"isTrainingData":false,"externalId":null,"tags":[],"companyId":%s,"metadata":{"source":"email",'
    .. '"receivedBy":"ap-inbox@acme.example","subject":"Ihre Rechnung\\nvom 19.04.","priority":3,'
    .. '"score":-0.25},'):format(q(hex_id(r)), q(hex_id(r))))
  put('"entities":{')
  for i = 1, 40 do
    put(('%s"field%02d":{"value":%s,"normalized":%s,"confidence":%s,"page":%d,"box":%s,"validated":%s,'
      .. '"alternatives":[]}'):format(i > 1 and "," or "", i, q(words(r, 1 + r(3))),
      r(4) == 0 and "null" or dec(r, 100000, 2), dec(r, 1, 4), 1 + r(3), box(r), r(2) == 0 and "true" or "false"))
  end
  put('},"lineItems":[')
  for i = 1, 200 do
    local qty, price = 1 + r(500), r(100000) / 100
    put(('%s{"position":%d,"articleNumber":"A-%06d","description":%s,"quantity":%d,"unit":"Stk",'
      .. '"unitPrice":%.2f,"netAmount":%.2f,"taxRate":0.19,"currency":"EUR","discount":%s,"box":%s,'
      .. '"confidence":%s,"flags":[]}'):format(i > 1 and "," or "", i, r(1000000),
      q(words(r, 2 + r(6)) .. (i % 25 == 0 and ' \\u00e9\\t\\"Sonder\\"' or "")), qty, price, qty * price,
      i % 10 == 0 and ("-%s"):format(dec(r, 100, 2)) or "0", box(r), dec(r, 1, 4)))
  end
  put('],"pages":[')
  local page = 0
  while n < size do
    page = page + 1
    put(('%s{"number":%d,"width":2480,"height":3508,"rotation":0,"dpi":300,"words":['):format(
      page > 1 and "," or "", page))
    for w = 1, 400 do
      put(('%s{"text":%s,"box":%s,"confidence":%s,"line":%d}'):format(w > 1 and "," or "",
        q(WORDS[r(#WORDS) + 1]), box(r), dec(r, 1, 3), w // 8))
    end
    put("]}")
  end
  put("]}")
  return table.concat(out)
end

------------------------------------------------------------------ run

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local get = dofile("bench/get.lua")
  local id, token = get.pick_target(srv)
  local dir = lib.mktemp_dir("decode")
  local function body()
    local texts = {
      { name = "user", text = lib.fetch(srv.url .. "/users/" .. id, token) },
      { name = "page", text = lib.fetch(srv.url .. "/users?limit=50", token) },
      { name = "document", text = M.document(1000000) },
    }
    local users = require("cjson").decode(texts[2].text).data
    if #users ~= 50 then error(("decode: the page holds %d users, not 50"):format(#users), 0) end
    local files = {}
    for i, t in ipairs(texts) do
      t.file = dir .. "/" .. t.name .. ".json"
      local f = assert(io.open(t.file, "wb"))
      f:write(t.text)
      f:close()
      files[i] = t.file
    end

    local vms = {
      { name = "Lua 5.4", lua = ctx.lua, cpath = "build/5.4/?.so;;" },
      { name = "LuaJIT", lua = os.getenv("LUAJIT") or "luajit", cpath = "build/luajit/?.so;;" },
    }
    print(("benchmark decode: hypatos.core.json_decode / lua-cjson cjson.decode on the same bytes (user %d B,"
      .. " 50-user page %d B, document %d B), ~%d ms of CPU per text and process, %d rounds alternating, Lua 5.4"
      .. " and LuaJIT"):format(#texts[1].text, #texts[2].text, #texts[3].text, args.decode_ms, args.decode_rounds))

    -- results[vm][impl][round] = the child's docs
    local results = {}
    for _, vm in ipairs(vms) do results[vm.name] = { hypatos = {}, cjson = {} } end
    for round = 1, args.decode_rounds do
      for _, vm in ipairs(vms) do
        local order = round % 2 == 1 and { "hypatos", "cjson" } or { "cjson", "hypatos" }
        for _, impl in ipairs(order) do
          local argv = { vm.lua, "bench/decode_child.lua", "--impl", impl, "--ms", tostring(args.decode_ms) }
          for _, f in ipairs(files) do argv[#argv + 1] = f end
          local r = ctx.run_child(("decode %s %s"):format(vm.name, impl), { LUA_CPATH = vm.cpath }, argv)
          results[vm.name][impl][round] = r.docs
        end
        local h, c = results[vm.name].hypatos[round], results[vm.name].cjson[round]
        local line = {}
        for i, t in ipairs(texts) do
          line[#line + 1] = ("%s %.2fx"):format(t.name, (h[i].cpu_s / h[i].calls) / (c[i].cpu_s / c[i].calls))
        end
        io.stderr:write(("  round %d %-8s hypatos/cjson: %s\n"):format(round, vm.name, table.concat(line, ", ")))
      end
    end

    -- both decoders saw the same values
    for _, vm in ipairs(vms) do
      local h, c = results[vm.name].hypatos[1], results[vm.name].cjson[1]
      for i, t in ipairs(texts) do
        for k, v in pairs(c[i].shape) do
          if h[i].shape[k] ~= v then
            error(("decode: %s under %s: cjson counts %s %s, hypatos %s"):format(t.name, vm.name, tostring(v), k,
              tostring(h[i].shape[k])), 0)
          end
        end
      end
    end

    print(("  %-9s %-9s %30s %30s %22s"):format("", "", "hypatos: MB/s, ns/call", "cjson: MB/s, ns/call",
      "hypatos/cjson time"))
    local summary = { benchmark = "decode", rounds = args.decode_rounds, ms = args.decode_ms }
    for _, vm in ipairs(vms) do
      summary[vm.name] = {}
      for i, t in ipairs(texts) do
        local ns, ratios = { hypatos = {}, cjson = {} }, {}
        for round = 1, args.decode_rounds do
          for _, impl in ipairs({ "hypatos", "cjson" }) do
            local d = results[vm.name][impl][round][i]
            ns[impl][round] = d.cpu_s / d.calls * 1e9
          end
          ratios[round] = ns.hypatos[round] / ns.cjson[round]
        end
        local h_ns, c_ns, ratio = median(ns.hypatos), median(ns.cjson), median(ratios)
        local lo, hi = minmax(ratios)
        local bytes = #t.text
        print(("  %-9s %-9s %11.1f MB/s %11s ns %11.1f MB/s %11s ns %9.2fx [%.2f-%.2f]"):format(vm.name, t.name,
          bytes / h_ns * 1e3, lib.thousands(h_ns), bytes / c_ns * 1e3, lib.thousands(c_ns), ratio, lo, hi))
        summary[vm.name][t.name] = { bytes = bytes, hypatos_ns = h_ns, cjson_ns = c_ns, ratio = ratio }
        if t.name == "user" then
          ctx.check(("decode: user, hypatos <= 1.00x cjson time (%s)"):format(vm.name), ratio <= 1.0,
            ("%.2fx, %s / %s ns"):format(ratio, lib.thousands(h_ns), lib.thousands(c_ns)))
        end
      end
    end
    print("  (MB = 10^6 bytes; CPU time of the decode loop; ratio: median of the per-round ratios, min-max)")
    return summary
  end
  return lib.finally(body, function() os.execute("rm -rf " .. lib.sh(dir)) end)
end

return M
