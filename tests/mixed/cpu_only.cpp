// A program with no CUDA translation unit: the CPU backend works and any CUDA request throws an
// ember::Error that says how to get the CUDA backend.
#include <ember/ember.hpp>

#include <cstdio>
#include <string>

int main() {
  ember::Tensor a = ember::ones({2, 3});
  if ((a + a).to_vector()[5] != 2.0f) return 1;
  if (ember::cuda::is_compiled() || ember::cuda::is_available()) {
    std::printf("cpu_only: unexpected CUDA backend\n");
    return 1;
  }
  try {
    ember::Tensor b = a.to(ember::Device::cuda);
    std::printf("cpu_only: moving to CUDA did not throw\n");
    return 1;
  } catch (const ember::Error& e) {
    std::string msg = e.what();
    std::printf("cpu_only: CUDA refused as expected: %s\n", e.what());
    return msg.find("no CUDA backend") != std::string::npos ? 0 : 1;
  }
}
