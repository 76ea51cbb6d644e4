// The plain C++ half of a program made of one .cpp and one .cu file (see cuda_part.cu).
// Both include <ember/ember.hpp>; the .cu file registers the CUDA backend, so CUDA tensors work
// from this file too. Without a GPU, CUDA requests throw ember::Error and the program says so.
#include <ember/ember.hpp>

#include <cmath>
#include <cstdio>

float relu_sum_from_cu(const std::vector<float>& values);  // defined in cuda_part.cu

int main() {
  if (!ember::cuda::is_compiled()) {
    std::printf("mixed: no CUDA backend registered (by the .cu file or by ember::cuda)\n");
    return 1;
  }
  std::vector<float> v = {-1, 2, -3, 4, 5};
  float cpu = ember::sum(ember::relu(ember::from_vector(v))).item();
  if (!ember::cuda::is_available()) {
    try {
      ember::Tensor t = ember::ones({4}).to(ember::Device::cuda);
      std::printf("mixed: no GPU, yet a CUDA allocation succeeded\n");
      return 1;
    } catch (const ember::Error& e) {
      std::printf("mixed: CUDA backend registered; no GPU here: %s\n", e.what());
      return 0;
    }
  }
  // With a GPU: an op launched from this .cpp file runs on CUDA, and the .cu file agrees.
  ember::Tensor g = ember::from_vector(v, ember::Device::cuda);
  float from_cpp = ember::sum(ember::relu(g)).item();
  float from_cu = relu_sum_from_cu(v);
  std::printf("mixed: cpu %.1f, cuda from .cpp %.1f, cuda from .cu %.1f\n", cpu, from_cpp, from_cu);
  return (from_cpp == cpu && from_cu == cpu) ? 0 : 1;
}
