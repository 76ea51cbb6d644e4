// @file tests/fuzz/fuzz_deflate.cpp
// @brief libFuzzer harness for the ember's gzip / zlib / raw deflate decoder and encoder (ember::io::gunzip, zlib_decompress, inflate_raw);
//        the checks live in fuzz_targets.hpp (ember_fuzz::deflate).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember_fuzz::deflate(data, size);
  return 0;
}
