// @file tests/fuzz/fuzz_safetensors.cpp
// @brief libFuzzer harness for the safetensors reader (ember::io::decode_safetensors, load into a module);
//        the checks live in fuzz_targets.hpp (ember_fuzz::safetensors).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember_fuzz::safetensors(data, size);
  return 0;
}
