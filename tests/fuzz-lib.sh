# tests/fuzz-lib.sh - sourced by the run-fuzz*.sh scripts: builds a libFuzzer target from fstore's
# modules with clang, ASan and UBSan, without a build tree (the protos are compiled here with
# protoc-c, as protos/CMakeLists.txt does).
#
# fuzz_workdir NAME: a new directory $work (under TMPDIR) for one runner, removed when the
# runner exits, unless it set keep=1 (a finding): then its path is printed.
#
# fuzz_build WORK OUT MAIN.c MODULE...: compiles MAIN.c with every source of each MODULE
# (base catalog storage repl core codec upstream server http cdc clients/c cli; cli without its
# main.c) into WORK/OUT.
#
# fuzz_run WORK TARGET SECONDS SEEDS [LIBFUZZER FLAG...]: runs WORK/TARGET for SECONDS (see
# below).

fuzz_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  keep=0
  trap 'if [ "$keep" -eq 0 ]; then rm -rf "$work"; else echo "fuzz artifacts kept in $work"; fi' EXIT
}

fuzz_build() {
  local work=$1 out=$2 main=$3
  shift 3
  local root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
  local cc=${CC:-clang}
  local protos=(feast/types/Value.proto feast/serving/ServingService.proto fstore/v1/fstore.proto
                tensorflow/core/framework/types.proto tensorflow/core/framework/tensor_shape.proto
                tensorflow/core/framework/tensor.proto tensorflow_serving/apis/model.proto
                tensorflow_serving/apis/predict.proto)
  local wkt=(google/protobuf/timestamp.proto google/protobuf/wrappers.proto)
  local health=(grpc/health/v1/health.proto grpc/reflection/v1/reflection.proto)
  local served=(feast/serving/ServingService.proto fstore/v1/fstore.proto
                tensorflow_serving/apis/prediction_service.proto grpc/health/v1/health.proto
                grpc/reflection/v1/reflection.proto grpc/reflection/v1alpha/reflection.proto)
  mkdir -p "$work/gen"
  (cd "$root/protos" && protoc-c -I. -I/usr/include -I/usr/share/grpc-proto --c_out="$work/gen" \
     "${protos[@]}" "${wkt[@]}" "${health[@]}")
  # gRPC reflection's descriptor table, as protos/CMakeLists.txt makes it.
  (cd "$root/protos" && protoc -I. -I/usr/include -I/usr/share/grpc-proto --include_imports \
     --descriptor_set_out="$work/gen/served.desc" "${served[@]}")
  /usr/bin/python3 "$root/protos/reflection_table.py" "$work/gen/served.desc" \
    "$work/gen/reflection_table.c"
  local srcs=("$work/gen/reflection_table.c") p m
  for p in "${protos[@]}" "${wkt[@]}" "${health[@]}"; do srcs+=("$work/gen/${p%.proto}.pb-c.c"); done
  for m in "$@"; do srcs+=("$root/$m"/*.c); done
  # The fault points stay out, as in a release build (store_int.h's inline store__fault()).
  local kept_srcs=() s
  for s in "${srcs[@]}"; do
    [ "${s##*/}" = fault.c ] || [ "$s" = "$root/cli/main.c" ] || kept_srcs+=("$s")
  done
  srcs=("${kept_srcs[@]}")
  local flags=(-g -O1 -std=c11 -D_GNU_SOURCE '-DFSTORE_VERSION="fuzz"' -fsanitize=fuzzer,address,undefined
               -fno-sanitize-recover=all -fno-omit-frame-pointer -I "$root" -I "$root/protos" -isystem "$work/gen"
               -w $(pkg-config --cflags grpc) ${FUZZ_EXTRA_CFLAGS:-})
  "$cc" "${flags[@]}" "${srcs[@]}" "$main" -llmdb -lxxhash -lyaml -ljansson -lprotobuf-c -lnats -lz -lcrypto ${FUZZ_EXTRA_LIBS:-} \
    $(pkg-config --libs grpc) -lpthread -ldl -lm -o "$work/$out"
}

# The kept corpus of a target is tests/<module>/corpus/<target>/, in git: inputs the fuzzer found
# that reach code the others do not, so every run starts where the last long run left off, and
# every input in it runs first (a regression test of all it ever found). A run writes what it
# finds to WORK/grown_TARGET only; FUZZ_UPDATE_CORPUS=1 then merges that into the kept corpus
# (libFuzzer's -merge=1 adds only inputs that reach new code): `FUZZ_UPDATE_CORPUS=1
# scripts/fuzz-all.sh 600`, then commit the new files.
#
# fuzz_run WORK TARGET SECONDS SEEDS [FLAG...]: runs WORK/TARGET for SECONDS over the generated
# SEEDS directory and the kept corpus (beside the calling runner), with libFuzzer FLAGs (-max_len, -dict=...). Returns 1 on
# a finding (crash, leak, UB, timeout: the input is in WORK, printed).
fuzz_run() {
  local work=$1 target=$2 secs=$3 seeds=$4
  shift 4
  local root=${FSTORE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
  # Beside the runner that calls this (tests/<module>/run-fuzz*.sh).
  local kept corpora=("$work/grown_$target" "$seeds")
  kept=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)/corpus/$target
  mkdir -p "$work/grown_$target"
  [ -d "$kept" ] && corpora+=("$kept")
  echo "fuzzing $target for ${secs}s ($(ls "$kept" 2>/dev/null | wc -l) kept inputs in ${kept#"$root"/})"
  if ! ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
       UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
       "$work/$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$work/" -print_final_stats=1 "$@" "${corpora[@]}" 2>&1 | tail -n 40; then
    return 1
  fi
  if [ -n "${FUZZ_UPDATE_CORPUS:-}" ]; then
    mkdir -p "$kept"
    "$work/$target" -merge=1 "$@" "$kept" "$work/grown_$target" "$seeds" 2>&1 | tail -n 2
    echo "kept corpus ${kept#"$root"/}: $(ls "$kept" | wc -l) inputs"
  fi
}
