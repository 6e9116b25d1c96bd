# tests/fuzz-lib.sh - sourced by the run-fuzz*.sh scripts: builds a libFuzzer target from fstore's
# modules with clang, ASan and UBSan, without a build tree (the protos are compiled here with
# protoc-c, as protos/CMakeLists.txt does).
#
# fuzz_build WORK OUT MAIN.c MODULE...: compiles MAIN.c with every source of each MODULE
# (base catalog storage repl core codec upstream server http) into WORK/OUT.

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
  local keep=() s
  for s in "${srcs[@]}"; do [ "${s##*/}" = fault.c ] || keep+=("$s"); done
  srcs=("${keep[@]}")
  local flags=(-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
               -fno-sanitize-recover=all -fno-omit-frame-pointer -I "$root" -I "$root/protos" -isystem "$work/gen"
               -w $(pkg-config --cflags grpc))
  "$cc" "${flags[@]}" "${srcs[@]}" "$main" -llmdb -lxxhash -lyaml -ljansson -lprotobuf-c -lnats -lz -lcrypto ${FUZZ_EXTRA_LIBS:-} \
    $(pkg-config --libs grpc) -lpthread -ldl -lm -o "$work/$out"
}
