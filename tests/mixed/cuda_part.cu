// The CUDA half of the mixed program: including ember from a .cu file registers the CUDA backend.
#include <ember/ember.hpp>

float relu_sum_from_cu(const std::vector<float>& values) {
  ember::Tensor t = ember::from_vector(values, ember::Device::cuda);
  return ember::sum(ember::relu(t)).item();
}
