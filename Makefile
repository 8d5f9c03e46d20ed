# hypatos — build, test and run everything from here.
#   make            build hypatos.core for Lua 5.4 and for LuaJIT 2.1
#   make test       install missing Debian packages, build, run the engine's C test and the whole suite
#   make demo       ... start the local Hypatos server, run examples/quickstart.lua, stop it
#   make demo-openresty  the same for examples/openresty/ (nginx with the library inside)
#   make lint       luacheck, tools/lua51check.sh (what runs on 5.1/LuaJIT parses there),
#                   tools/doccheck.lua (every public function documented), make docs
#                   without a warning, the C compiled with warnings as errors (both Lua versions)
#   make docs       the HTML reference (LDoc, config.ld) into build/docs/
#   make types      regenerate types/*.d.lua (LuaLS definitions) from the operations table
#   make memcheck   the suite under valgrind (no error, no definite leak)
#   make sanitize   the suite against an ASan+UBSan build of hypatos.core (build/asan/lua5.4)
#   make fuzz       libFuzzer targets in fuzz/ from their committed corpus, FUZZ_TIME s each
#   make bench      benchmarks against the local server (ratios, side by side)
#   make conformance  every method of the vendor's 2.15 OpenAPI document against Stoplight Prism
#                   (request validation on) and the operationId coverage; skipped without the document
#   make install    install into INST_LIBDIR / INST_LUADIR (used by the rockspec): the modules,
#                   the command line's modules and the local server (hypatos.mock)
# Every variable below can be overridden: make LUA_INCDIR=/opt/lua/include CFLAGS=-O0

PKG_CONFIG ?= pkg-config
LUA ?= lua5.4
LUAJIT ?= luajit
BUSTED ?= busted
LUACHECK ?= luacheck

LUA_INCDIR ?= $(shell $(PKG_CONFIG) --variable=includedir lua5.4 2>/dev/null)/lua5.4
LUA51_INCDIR ?= /usr/include/lua5.1
LUAJIT_INCDIR ?= $(shell $(PKG_CONFIG) --variable=includedir luajit 2>/dev/null)
CURL_INCDIR ?= $(shell $(PKG_CONFIG) --variable=includedir libcurl 2>/dev/null)
CURL_LIBDIR ?= $(shell $(PKG_CONFIG) --variable=libdir libcurl 2>/dev/null)
CRYPTO_INCDIR ?= $(shell $(PKG_CONFIG) --variable=includedir libcrypto 2>/dev/null)
CRYPTO_LIBDIR ?= $(shell $(PKG_CONFIG) --variable=libdir libcrypto 2>/dev/null)
# the directory that holds hiredis/hiredis.h (what LuaRocks passes; pkg-config names hiredis/ itself)
HIREDIS_INCDIR ?= $(patsubst %/hiredis,%,$(shell $(PKG_CONFIG) --variable=includedir hiredis 2>/dev/null))
HIREDIS_LIBDIR ?= $(shell $(PKG_CONFIG) --variable=libdir hiredis 2>/dev/null)

CC ?= cc
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
       -Wformat=2 -Wundef -Wno-unused-parameter
BASE_CFLAGS = -std=c99 -fPIC -fvisibility=hidden $(WARN) $(CFLAGS)
LIBFLAG ?= -shared
LIBS = -L$(CURL_LIBDIR) -lcurl -L$(CRYPTO_LIBDIR) -lcrypto -L$(HIREDIS_LIBDIR) -lhiredis -lm -ldl

# install locations (luarocks passes its own)
INST_PREFIX ?= /usr/local
INST_LIBDIR ?= $(INST_PREFIX)/lib/lua/5.4
INST_LUADIR ?= $(INST_PREFIX)/share/lua/5.4

# Three layers (design.md §1), each compiled with only the include paths it may use:
#   csrc/engine/     pure C99 + libc: no Lua, no libcurl include path (tools/layers.sh
#                    also fails the build on an #include of either)
#   csrc/transport/  the outside libraries (libcurl, libcrypto, hiredis): CURL_INCDIR,
#                    CRYPTO_INCDIR and HIREDIS_INCDIR, never Lua
#   csrc/binding/    the Lua binding: Lua and libcurl include paths
ENGINE_SRCS = $(wildcard csrc/engine/*.c)
TRANSPORT_SRCS = $(wildcard csrc/transport/*.c)
BINDING_SRCS = $(wildcard csrc/binding/*.c)
SRCS = $(ENGINE_SRCS) $(TRANSPORT_SRCS) $(BINDING_SRCS)
HDRS = $(wildcard csrc/*/*.h)
LUA_SRCS = $(wildcard lua/hypatos/*.lua)
CLI_SRCS = $(wildcard lua/hypatos/cli/*.lua)
MOCK_SRCS = $(wildcard mock/lua/hypatos_mock/*.lua)
OBJS_54 = $(SRCS:csrc/%.c=build/5.4/obj/%.o)
OBJS_JIT = $(SRCS:csrc/%.c=build/luajit/obj/%.o)
SO_54 = build/5.4/hypatos/core.so
SO_JIT = build/luajit/hypatos/core.so

RUN_ENV = LUA_PATH="lua/?.lua;lua/?/init.lua;./?.lua;;" LUA_CPATH="build/5.4/?.so;;"

# make sanitize: hypatos.core for Lua 5.4 built with AddressSanitizer and UBSan into its own
# directory (never mixed with build/5.4), the whole suite run against it in lua5.4 with the
# runtimes preloaded (lua5.4 itself is not instrumented). Any report fails the target, also
# from a child lua5.4 a spec starts (reports are written to SAN_LOGS, see tools/test.sh).
# Every spec runs, the nginx, LuaJIT and packaging ones too: they load the normal LuaJIT
# build or one luarocks builds, and tools/sanitize_helper.lua keeps LD_PRELOAD away from the
# programs the specs start (curl hangs with the ASan runtime preloaded). LeakSanitizer is on
# (unreachable blocks only; SAN_LEAKS=0 turns it off). SAN_CC must be gcc (its shared libasan).
SAN_CC ?= gcc
SAN_CFLAGS ?= -O1 -g
SAN_FLAGS ?= -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined
SAN_DIR = build/asan/lua5.4
SAN_LOGS = build/asan/logs
SAN_PRELOAD ?= $(shell $(SAN_CC) -print-file-name=libasan.so) $(shell $(SAN_CC) -print-file-name=libubsan.so)
OBJS_SAN = $(SRCS:csrc/%.c=$(SAN_DIR)/obj/%.o)
SO_SAN = $(SAN_DIR)/hypatos/core.so

# make fuzz: libFuzzer targets (fuzz/), built by clang with ASan + UBSan into build/fuzz (never
# mixed with the other builds). C targets link csrc/engine/ alone (engine_fuzz: the step function;
# parsers_fuzz: rate limits, URLs, token JSON, encodings); a Lua target (fuzz/lua/<name>.lua) is
# fuzz/lua_harness.c + lua5.4 + every object of hypatos.core, named lua_<name>. Each runs
# FUZZ_TIME s from a scratch copy of fuzz/corpus/<target>/ (FUZZ_MERGE=1 merges what it found
# back into the repository); a crash, leak or sanitizer report fails the target and leaves the
# input in build/fuzz/crashes/<target>/ (tools/fuzz.sh). Needs clang: tools/deps.sh --fuzz.
FUZZ_CC ?= clang
FUZZ_CFLAGS ?= -O1 -g
FUZZ_SAN ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_TIME ?= 8
FUZZ_MERGE ?=
FUZZ_DIR = build/fuzz
FUZZ_C = $(FUZZ_CC) -std=c99 -fPIC $(WARN) $(FUZZ_CFLAGS) $(FUZZ_SAN)
LUA_FUZZ = $(patsubst fuzz/lua/%.lua,lua_%,$(wildcard fuzz/lua/*.lua))
FUZZERS = engine_fuzz parsers_fuzz $(LUA_FUZZ)
OBJS_FUZZ = $(SRCS:csrc/%.c=$(FUZZ_DIR)/obj/%.o)
OBJS_FUZZ_ENGINE = $(ENGINE_SRCS:csrc/%.c=$(FUZZ_DIR)/obj/%.o)
.SECONDARY: $(OBJS_FUZZ)

.PHONY: all lib deps engine-test test demo demo-openresty lint docs types memcheck sanitize fuzz fuzz-build bench conformance install clean

all: $(SO_54) $(SO_JIT)

# the one library for the Lua named by LUA_INCDIR (what luarocks builds), in a
# directory keyed by that path: an object built for one Lua is never installed
# for another (luarocks --lua-version=5.1 after a 5.4 build rebuilds).
LIB_DIR = build/lib/$(subst /,_,$(LUA_INCDIR))
LIB_SO = $(LIB_DIR)/hypatos/core.so
lib: $(LIB_SO)

# $(call layer_rules,<build dir>,<compiler and flags>,<Lua include dir>)
define layer_rules
$(1)/obj/engine/%.o: csrc/engine/%.c $$(HDRS) build/layers.ok
	@mkdir -p $$(dir $$@)
	$(2) -c $$< -o $$@
$(1)/obj/transport/%.o: csrc/transport/%.c $$(HDRS) build/layers.ok
	@mkdir -p $$(dir $$@)
	$(2) -I$$(CURL_INCDIR) -I$$(CRYPTO_INCDIR) -I$$(HIREDIS_INCDIR) -c $$< -o $$@
$(1)/obj/binding/%.o: csrc/binding/%.c $$(HDRS) build/layers.ok
	@mkdir -p $$(dir $$@)
	$(2) -I$$(CURL_INCDIR) -I$(3) -c $$< -o $$@
endef
$(eval $(call layer_rules,build/5.4,$(CC) $(BASE_CFLAGS),$(LUA_INCDIR)))
$(eval $(call layer_rules,build/luajit,$(CC) $(BASE_CFLAGS),$(LUAJIT_INCDIR)))
$(eval $(call layer_rules,$(SAN_DIR),$(SAN_CC) -std=c99 -fPIC -fvisibility=hidden $(WARN) $(SAN_CFLAGS) $(SAN_FLAGS),$(LUA_INCDIR)))
$(eval $(call layer_rules,$(LIB_DIR),$(CC) $(BASE_CFLAGS),$(LUA_INCDIR)))
$(eval $(call layer_rules,build/engine,$(CC) $(BASE_CFLAGS),/nonexistent))
$(eval $(call layer_rules,$(FUZZ_DIR),$(FUZZ_C) -fvisibility=hidden -fsanitize=fuzzer-no-link,$(LUA_INCDIR)))

# the engine's own test: test/engine_test.c linked with csrc/engine/ alone (no Lua, no libcurl)
ENGINE_TEST = build/engine/engine_test
$(ENGINE_TEST): test/engine_test.c $(ENGINE_SRCS:csrc/%.c=build/engine/obj/%.o) $(HDRS)
	$(CC) $(BASE_CFLAGS) -o $@ $< $(ENGINE_SRCS:csrc/%.c=build/engine/obj/%.o) -lm

engine-test: $(ENGINE_TEST)
	@$(ENGINE_TEST)

# the layering rules, checked before anything compiles
build/layers.ok: tools/layers.sh $(SRCS) $(HDRS)
	@sh tools/layers.sh
	@mkdir -p build && touch $@

$(SO_54): $(OBJS_54)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $^ $(LIBS)

$(SO_JIT): $(OBJS_JIT)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $^ $(LIBS)

$(SO_SAN): $(OBJS_SAN)
	@mkdir -p $(dir $@)
	$(SAN_CC) $(LIBFLAG) $(SAN_FLAGS) -o $@ $^ $(LIBS)

$(LIB_SO): $(SRCS:csrc/%.c=$(LIB_DIR)/obj/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $^ $(LIBS)

deps:
	@sh tools/deps.sh

# Targets that need Debian packages install them first (deps), then build in a sub-make: the
# include paths above come from pkg-config, which knows them only once the packages are there.
BUILD = @$(MAKE) --no-print-directory

test: deps
	$(BUILD) all engine-test
	@$(RUN_ENV) bash tools/test.sh $(BUSTED_ARGS)

demo: deps
	$(BUILD) all
	$(RUN_ENV) $(LUA) mock/run.lua -- $(LUA) examples/quickstart.lua

demo-openresty: deps
	$(BUILD) all
	$(RUN_ENV) $(LUA) mock/run.lua -- sh examples/openresty/demo.sh

# The HTML reference: the modules of lua/hypatos/ and doc/core.lua (hypatos.core, the C
# functions; `@internal` ones apart), the README, the generated "Resource methods" topic
# (tools/docref.lua, from the operations table), the CHANGELOG and the examples. Any LDoc
# warning fails the target, and so does tools/docs_check.lua on the HTML.
LDOC ?= ldoc
docs:
	@sh tools/deps.sh --docs
	@$(LUA) tools/docref.lua build/docs-src/resource-methods.md
	@rm -rf build/docs
	@out=$$($(LDOC) . 2>&1) || { echo "$$out"; exit 1; }; \
	  warnings=$$(echo "$$out" | grep -v '^reading configuration from\|^output written to'); \
	  if [ -n "$$warnings" ]; then echo "$$warnings"; echo "make docs: LDoc warnings (above)"; exit 1; fi; \
	  echo "docs: build/docs/index.html (no LDoc warning)"
	@$(LUA) tools/docs_check.lua build/docs

# types/*.d.lua: the Lua Language Server definitions, generated (tools/types.lua) from the
# operations table and doc/core.lua; committed, checked up to date by make lint and spec/07.
types:
	$(LUA) tools/types.lua --write

lint: deps docs
	$(LUACHECK) lua spec mock examples bench tools doc types bin/hypatos fuzz
	@sh tools/lua51check.sh
	@$(LUA) tools/doccheck.lua
	@$(LUA) tools/types.lua --check
	@sh tools/layers.sh
	@for f in $(ENGINE_SRCS) test/engine_test.c fuzz/engine_fuzz.c fuzz/parsers_fuzz.c; do $(CC) $(BASE_CFLAGS) -Werror -fsyntax-only $$f || exit 1; done
	@for f in $(TRANSPORT_SRCS); do $(CC) $(BASE_CFLAGS) -Werror -fsyntax-only -I$(CURL_INCDIR) -I$(CRYPTO_INCDIR) -I$(HIREDIS_INCDIR) $$f || exit 1; done
	@for f in $(BINDING_SRCS); do \
	  $(CC) $(BASE_CFLAGS) -Werror -fsyntax-only -I$(CURL_INCDIR) -I$(LUA_INCDIR) $$f || exit 1; \
	  $(CC) $(BASE_CFLAGS) -Werror -fsyntax-only -I$(CURL_INCDIR) -I$(LUAJIT_INCDIR) $$f || exit 1; \
	  $(CC) $(BASE_CFLAGS) -Werror -fsyntax-only -I$(CURL_INCDIR) -I$(LUA51_INCDIR) $$f || exit 1; \
	done
	@$(CC) $(BASE_CFLAGS) -Werror -fsyntax-only -I$(LUA_INCDIR) -DHYP_FUZZ_SCRIPT='"x"' fuzz/lua_harness.c
	@echo "C: no warnings (engine and its fuzz targets alone; transport with libcurl, libcrypto and hiredis; binding with Lua 5.4, LuaJIT and Lua 5.1 headers)"

memcheck: deps
	$(BUILD) all $(ENGINE_TEST)
	valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 $(ENGINE_TEST)
	@$(RUN_ENV) MEMCHECK=1 bash tools/test.sh $(BUSTED_ARGS)

sanitize: deps
	$(BUILD) all $(SO_SAN)
	@LUA_PATH="lua/?.lua;lua/?/init.lua;./?.lua;;" LUA_CPATH="$(SAN_DIR)/?.so;;" SANITIZE=1 HYPATOS_BUILD=$(SAN_DIR) HYPATOS_PRELOAD="$(SAN_PRELOAD)" SAN_LOGS=$(SAN_LOGS) \
	  bash tools/test.sh $(BUSTED_ARGS)

fuzz-build: deps
	@sh tools/deps.sh --fuzz
	$(BUILD) $(FUZZERS:%=$(FUZZ_DIR)/%)

fuzz: fuzz-build
	@FUZZ_TIME=$(FUZZ_TIME) FUZZ_MERGE=$(FUZZ_MERGE) FUZZ_DIR=$(FUZZ_DIR) sh tools/fuzz.sh $(FUZZERS)

$(FUZZ_DIR)/%_fuzz: fuzz/%_fuzz.c fuzz/bytes.h $(OBJS_FUZZ_ENGINE) $(HDRS)
	$(FUZZ_C) -fsanitize=fuzzer -o $@ $< $(OBJS_FUZZ_ENGINE) -lm

$(FUZZ_DIR)/lua_%: fuzz/lua_harness.c fuzz/lua/%.lua $(OBJS_FUZZ)
	$(FUZZ_C) -fsanitize=fuzzer -I$(LUA_INCDIR) -DHYP_FUZZ_SCRIPT='"fuzz/lua/$*.lua"' -o $@ $< $(OBJS_FUZZ) \
	  -llua5.4 $(LIBS)

bench: deps
	$(BUILD) all
	@sh tools/deps.sh --bench
	$(RUN_ENV) $(LUA) bench/run.lua $(BENCH_ARGS)

conformance: deps
	$(BUILD) all
	@LUA=$(LUA) sh tools/conformance.sh

# The local server goes along as hypatos.mock.launcher (with its nginx.conf.in and the
# handlers under hypatos/mock/lua/): `hypatos serve` and require "hypatos.testing" use it.
# bin/hypatos is installed by luarocks (build.install.bin in the rockspec), or by hand.
# With INST_BINDIR and INST_LUA (the rockspec passes the rock's bin/ and the tree's Lua) the
# command also goes in as hypatos-<Lua version> (hypatos-5.4, hypatos-5.1): luarocks wraps it
# for that Lua, and it stays when a rock for another Lua takes the plain name in the same tree.
INST_BINDIR ?=
INST_LUA ?=
install: lib
	mkdir -p $(INST_LIBDIR)/hypatos $(INST_LUADIR)/hypatos/cli $(INST_LUADIR)/hypatos/mock/lua/hypatos_mock
	cp $(LIB_SO) $(INST_LIBDIR)/hypatos/core.so
	cp $(LUA_SRCS) $(INST_LUADIR)/hypatos/
	cp $(CLI_SRCS) $(INST_LUADIR)/hypatos/cli/
	cp mock/launcher.lua mock/nginx.conf.in $(INST_LUADIR)/hypatos/mock/
	cp $(MOCK_SRCS) $(INST_LUADIR)/hypatos/mock/lua/hypatos_mock/
	@if [ -n "$(INST_BINDIR)" ] && [ -n "$(INST_LUA)" ]; then \
	  v=$$($(INST_LUA) -e 'io.write((_VERSION:match("%d+%.%d+")))') && [ -n "$$v" ] && \
	  mkdir -p $(INST_BINDIR) && cp bin/hypatos $(INST_BINDIR)/hypatos-$$v && \
	  echo "cp bin/hypatos $(INST_BINDIR)/hypatos-$$v"; fi

clean:
	rm -rf build
