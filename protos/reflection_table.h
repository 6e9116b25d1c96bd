/* protos/reflection_table.h - the descriptors gRPC server reflection hands out (generated into
 * the build tree by protos/reflection_table.py from the protos fstore serves). */
#ifndef PROTOS_REFLECTION_TABLE_H
#define PROTOS_REFLECTION_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* One .proto file: its name, its serialized google.protobuf.FileDescriptorProto, and the files
 * it imports (indexes into fstore_refl_files). */
typedef struct fstore_refl_file {
    const char *name;
    const uint8_t *proto;
    size_t len;
    const uint16_t *deps;
    size_t n_deps;
} fstore_refl_file_t;

/* A fully qualified symbol (package.Service, package.Service.Method, package.Message, nested
 * messages, enums) and the file defining it; sorted by name. */
typedef struct fstore_refl_symbol {
    const char *name;
    uint16_t file;
} fstore_refl_symbol_t;

extern const fstore_refl_file_t fstore_refl_files[];
extern const size_t fstore_refl_n_files;
extern const fstore_refl_symbol_t fstore_refl_symbols[];
extern const size_t fstore_refl_n_symbols;

#endif /* PROTOS_REFLECTION_TABLE_H */
