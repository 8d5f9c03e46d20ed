#!/bin/sh
# tools/fuzz.sh TARGET… — runs each libFuzzer target in $FUZZ_DIR (build/fuzz) for
# $FUZZ_TIME seconds from its committed corpus fuzz/corpus/TARGET/ (read only: new inputs
# go to a scratch directory, $FUZZ_DIR/run/TARGET/, unless FUZZ_MERGE=1, which merges
# them, minimised, into the committed corpus afterwards), with fuzz/dict/TARGET.dict when
# there is one. A crash, leak, timeout, sanitizer
# report or failed invariant fails the run: the input lands in $FUZZ_DIR/crashes/TARGET/
# and the end of the target's log ($FUZZ_DIR/logs/TARGET.log) is printed. Run from the
# repository root (the Lua targets load lua/ and fuzz/lua/ from there).
set -u
cd "$(dirname "$0")/.."
: "${FUZZ_DIR:=build/fuzz}" "${FUZZ_TIME:=8}" "${FUZZ_MERGE:=}"
failed=""
for t in "$@"; do
  bin="$FUZZ_DIR/$t"
  corpus="fuzz/corpus/$t"
  scratch="$FUZZ_DIR/run/$t"
  crashes="$FUZZ_DIR/crashes/$t"
  log="$FUZZ_DIR/logs/$t.log"
  dict=""
  [ -f "fuzz/dict/$t.dict" ] && dict="-dict=fuzz/dict/$t.dict"
  rm -rf "$scratch"
  mkdir -p "$scratch" "$crashes" "$corpus" "$(dirname "$log")"
  # -timeout: one input may take 10 s at most; -rss_limit_mb: a memory blow-up is a failure too
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}" \
    "$bin" -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
      -print_final_stats=1 -artifact_prefix="$crashes/" $dict "$scratch" "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc) after ${runs:-?} runs; input in $crashes/, log $log:"
    tail -n 40 "$log"
    failed="$failed $t"
    continue
  fi
  echo "fuzz: $t ok (${FUZZ_TIME} s, ${runs:-?} runs, corpus $(ls "$corpus" | wc -l) + $(ls "$scratch" | wc -l) new)"
  if [ "$FUZZ_MERGE" = 1 ]; then
    "$bin" -merge=1 -max_len=4096 "$corpus" "$scratch" >>"$log" 2>&1 || { failed="$failed $t(merge)"; continue; }
    echo "fuzz: $t merged into $corpus ($(ls "$corpus" | wc -l) inputs)"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: failed:$failed"
  exit 1
fi
echo "fuzz: all $# targets clean"
