// The CUDA half of the mixed program: including ember from a .cu file registers the CUDA backend.
#include <ember/ember.hpp>

// Linked with the compiled backend ember::cuda, a user's .cu file must not compile the kernels.
#if defined(EMBER_CUDA_PRECOMPILED) && defined(EMBER_CUDA_BACKEND_HEADER)
#error "EMBER_CUDA_PRECOMPILED is set, yet <ember/ember.hpp> compiled the CUDA kernels here"
#endif

float relu_sum_from_cu(const std::vector<float>& values) {
  ember::Tensor t = ember::from_vector(values, ember::Device::cuda);
  return ember::sum(ember::relu(t)).item();
}
