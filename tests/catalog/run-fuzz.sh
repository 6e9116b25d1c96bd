#!/usr/bin/env bash
# tests/catalog/run-fuzz.sh - builds the catalog fuzzers with clang's libFuzzer and runs each for
# a bounded time: FUZZ_SECONDS (default 20) for the YAML loader, half that for the value decoder
# and for on-demand expressions (compiled for every result type, then evaluated).
# Seeds come from examples/ and the kept corpora (tests/catalog/corpus/, tests/fuzz-lib.sh);
# crashes are kept in a printed directory, never in the source tree.
set -euo pipefail
root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cc=${CC:-clang}
seconds=${FUZZ_SECONDS:-20}
value_seconds=$(( seconds / 2 > 0 ? seconds / 2 : 1 ))
. "$root/tests/fuzz-lib.sh"
fuzz_workdir fstore-fuzz

flags=(-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -fno-omit-frame-pointer -I "$root")
for target in fuzz_catalog_load fuzz_value_decode fuzz_expr; do
  "$cc" "${flags[@]}" "$root"/base/*.c "$root"/catalog/*.c "$root/tests/catalog/$target.c" \
    -lyaml -ljansson -lz -ldl -lpthread -lm \
    -o "$work/$target"
done

mkdir -p "$work/corpus_load" "$work/corpus_value" "$work/corpus_expr"
i=0
for e in 's.i + r.x' 's.f / s.f32 * 2.5' 'coalesce(s.str, "x")' 'if(s.b, s.li[0], -1)' \
         'concat(lower(s.str), upper(s.str))' 'sum(s.li) + mean(s.lf) + min(s.l32)' \
         'age(event_time(s)) > 3600 and not is_null(s.ts)' 'clamp(round(s.f, 2), 0, 1)' \
         'int32(s.f) + int64(s.b) + float(s.i)' 'get(s.ls, -1, "none")' 'pow(s.f, r.y) % 3'; do
  printf '%s\0\x01\x80\x00\x00\x00\x00\x00\x00\x01\x07\x7f\xff\xff\xff\xff\xff\xff\xff' "$e" \
    >"$work/corpus_expr/seed$i"
  i=$((i + 1))
done
find "$root/examples" -name '*.yaml' -o -name '*.yml' | while read -r f; do
  cp "$f" "$work/corpus_load/$(echo "$f" | tr / _)"
done
printf '\x20\x01' >"$work/corpus_value/int64"
printf '\x72\x04\x0a\x02\x01\x02' >"$work/corpus_value/int64_list"
printf '\x62\x05\x0a\x01a\x0a\x00' >"$work/corpus_value/string_list"
printf '\x98\x01\x00' >"$work/corpus_value/null"

status=0
fuzz_run "$work" fuzz_catalog_load "$seconds" "$work/corpus_load" -max_len=8192 \
  -dict="$root/tests/catalog/catalog.dict" || status=1
fuzz_run "$work" fuzz_value_decode "$value_seconds" "$work/corpus_value" -max_len=8192 || status=1
fuzz_run "$work" fuzz_expr "$value_seconds" "$work/corpus_expr" -max_len=8192 \
  -dict="$root/tests/catalog/expr.dict" || status=1
[ "$status" -eq 0 ] || keep=1
exit $status
