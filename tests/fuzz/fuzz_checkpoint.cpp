// @file tests/fuzz/fuzz_checkpoint.cpp
// @brief libFuzzer harness for the checkpoint loader (ember::io::load_checkpoint from bytes);
//        the checks live in fuzz_targets.hpp (ember_fuzz::checkpoint).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember_fuzz::checkpoint(data, size);
  return 0;
}
