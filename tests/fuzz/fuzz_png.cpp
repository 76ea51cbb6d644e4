// @file tests/fuzz/fuzz_png.cpp
// @brief libFuzzer harness for the grayscale PNG reader (ember::io::decode_png_gray);
//        the checks live in fuzz_targets.hpp (ember_fuzz::png).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember_fuzz::png(data, size);
  return 0;
}
