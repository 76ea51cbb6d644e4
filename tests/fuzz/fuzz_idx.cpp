// @file tests/fuzz/fuzz_idx.cpp
// @brief libFuzzer harness for the IDX image and label reader (ember::data::parse_idx_images / parse_idx_labels);
//        the checks live in fuzz_targets.hpp (ember_fuzz::idx).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember_fuzz::idx(data, size);
  return 0;
}
