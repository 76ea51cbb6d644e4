// @file tests/fuzz/fuzz_deflate.cpp
// @brief libFuzzer harness for ember's gzip / zlib readers and writers (ember::io::gunzip,
//        zlib_decompress, gzip_compress, zlib_compress: zlib behind ember's checks, io/gzip.hpp);
//        the checks live in fuzz_targets.hpp (ember_fuzz::deflate).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember_fuzz::deflate(data, size);
  return 0;
}
