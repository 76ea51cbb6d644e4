// @file tests/cuda/test_simt_runtime.cu
// @brief CUDA execution-model checks: launch geometry, shared memory, warp collectives, launch
//        limits and streams, with hand-computed expectations. They run on a GPU (nvcc) and on
//        the host SIMT runtime (EMBER_CUDA_EMULATION); the fault cases at the end -- a
//        divergent or skipped __syncthreads, a shuffle a lane never reaches, a race, a read of
//        shared memory no thread wrote -- would hang or give garbage on a GPU, so they run
//        only under the host runtime, which must report each one naming the kernel.
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"

using ember_cuda_test::DevBuf;
namespace ecu = ember::cuda;

namespace {

cudaStream_t stream() {
  return ecu::current_stream();
}

// ---- kernels ----

__global__ void geometry_kernel(int* out) {
  const int block = int((blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x);
  const int thread = int((threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x);
  const int per_block = int(blockDim.x * blockDim.y * blockDim.z);
  out[block * per_block + thread] = int(blockIdx.x) + 10 * int(blockIdx.y) + 100 * int(blockIdx.z) +
                                    1000 * int(threadIdx.x) + 10000 * int(threadIdx.y) +
                                    100000 * int(threadIdx.z) + 1000000 * int(gridDim.x) +
                                    10000000 * int(blockDim.z);
}

/// Per thread: 8 results of warp collectives (block of 64 threads = 2 warps).
__global__ void warp_kernel(int* out) {
  const int t = int(threadIdx.x), lane = t & 31;
  const int v = 100 * t + 7;
  int* o = out + 8 * t;
  o[0] = __shfl_sync(0xffffffffu, v, 5);          // lane 5 of the warp
  o[1] = __shfl_up_sync(0xffffffffu, v, 3);       // lane - 3, own below 3
  o[2] = __shfl_down_sync(0xffffffffu, v, 4);     // lane + 4, own from 28
  o[3] = __shfl_xor_sync(0xffffffffu, v, 9);      // lane ^ 9
  o[4] = __shfl_down_sync(0xffffffffu, v, 2, 8);  // within groups of 8
  o[5] = int(__ballot_sync(0xffffffffu, lane % 3 == 0));
  o[6] = __any_sync(0xffffffffu, t == 40) + 2 * __all_sync(0xffffffffu, lane < 40);
  __syncwarp();
  // A half-warp mask: only lanes 0..15 take part.
  int h = -1;
  if (lane < 16) h = __shfl_xor_sync(0x0000ffffu, v, 1);
  o[7] = h;
}

/// Each block reverses its own 128 values through static shared memory.
__global__ void shared_reverse_kernel(const float* in, float* out) {
  EMBER_SHARED(float, tile, [128]);
  const int t = int(threadIdx.x), base = int(blockIdx.x) * 128;
  tile[t] = in[base + t];
  __syncthreads();
  out[base + t] = tile[127 - t];
}

/// The same through dynamic shared memory of blockDim.x floats.
__global__ void dynamic_reverse_kernel(const float* in, float* out) {
  EMBER_DYNAMIC_SHARED(float, tile);
  const int t = int(threadIdx.x), n = int(blockDim.x), base = int(blockIdx.x) * n;
  tile[t] = in[base + t];
  __syncthreads();
  out[base + t] = tile[n - 1 - t];
}

__global__ void touch_kernel(int* out) {
  out[threadIdx.x] = int(threadIdx.x);
}

}  // namespace

TEST_CASE("cuda runtime: 3-D grids and blocks give every thread its indices", "[cuda][simt]") {
  EMBER_SKIP_IF_NO_GPU();
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  const int per_block = 24, blocks = 12;
  DevBuf<int> out(per_block * blocks);
  out.poison();
  ecu::launch("test", "geometry_kernel", geometry_kernel, grid, block, 0, stream(), out.get());
  const std::vector<int> got = out.download();
  int bad = 0;
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 4; ++tx) {
              const int b = int((bz * 2 + by) * 3 + bx), t = int((tz * 3 + ty) * 4 + tx);
              const int want = int(bx) + 10 * int(by) + 100 * int(bz) + 1000 * int(tx) +
                               10000 * int(ty) + 100000 * int(tz) + 3000000 + 20000000;
              if (got[size_t(b * per_block + t)] != want) ++bad;
            }
  CHECK(bad == 0);
}

TEST_CASE("cuda runtime: warp shuffles, votes and partial masks", "[cuda][simt]") {
  EMBER_SKIP_IF_NO_GPU();
  DevBuf<int> out(64 * 8);
  out.poison();
  ecu::launch("test", "warp_kernel", warp_kernel, dim3(1), dim3(64), 0, stream(), out.get());
  const std::vector<int> got = out.download();
  for (int t = 0; t < 64; ++t) {
    INFO("thread " << t);
    const int lane = t & 31, w0 = t - lane;
    auto val = [&](int l) { return 100 * (w0 + l) + 7; };
    const int* o = &got[size_t(8 * t)];
    CHECK(o[0] == val(5));
    CHECK(o[1] == (lane >= 3 ? val(lane - 3) : val(lane)));
    CHECK(o[2] == (lane + 4 < 32 ? val(lane + 4) : val(lane)));
    CHECK(o[3] == val(lane ^ 9));
    CHECK(o[4] == ((lane % 8) + 2 < 8 ? val(lane + 2) : val(lane)));
    unsigned ballot = 0;
    for (int l = 0; l < 32; ++l)
      if (l % 3 == 0) ballot |= 1u << l;
    CHECK(unsigned(o[5]) == ballot);
    CHECK(o[6] == (t >= 32 ? 1 : 0) + 2);  // any(t == 40) only in warp 1; all(lane < 40) always
    CHECK(o[7] == (lane < 16 ? val(lane ^ 1) : -1));
  }
}

TEST_CASE("cuda runtime: static and dynamic shared memory belong to one block", "[cuda][simt]") {
  EMBER_SKIP_IF_NO_GPU();
  const int blocks = 5, n = 128 * blocks;
  std::vector<float> in(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) in[size_t(i)] = float(i);
  DevBuf<float> din(in), out(n);
  out.poison();
  ecu::launch("test", "shared_reverse_kernel", shared_reverse_kernel, dim3(blocks), dim3(128), 0,
              stream(), din.get(), out.get());
  std::vector<float> got = out.download();
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < 128; ++t) CHECK(got[size_t(b * 128 + t)] == float(b * 128 + 127 - t));
  // Dynamic: 96 threads, 96 floats of dynamic shared memory per block.
  DevBuf<float> out2(96 * blocks);
  out2.poison();
  ecu::launch("test", "dynamic_reverse_kernel", dynamic_reverse_kernel, dim3(blocks), dim3(96),
              96 * sizeof(float), stream(), din.get(), out2.get());
  got = out2.download();
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < 96; ++t) CHECK(got[size_t(b * 96 + t)] == float(b * 96 + 95 - t));
}

TEST_CASE("cuda runtime: launch limits are enforced as CUDA reports them", "[cuda][simt]") {
  EMBER_SKIP_IF_NO_GPU();
  DevBuf<int> out(1024);
  auto launch_error = [&](dim3 grid, dim3 block, size_t smem) -> std::string {
    try {
      ecu::launch("limits", "touch_kernel", touch_kernel, grid, block, smem, stream(), out.get());
    } catch (const ember::Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string too_many = launch_error(dim3(1), dim3(1025), 0);
  INFO(too_many);
  CHECK(too_many.find("touch_kernel") != std::string::npos);
  CHECK(too_many.find("cudaErrorInvalidConfiguration") != std::string::npos);
  CHECK(launch_error(dim3(1, 65536), dim3(32), 0).find("cudaErrorInvalidConfiguration") !=
        std::string::npos);
  CHECK(launch_error(dim3(1, 1, 65536), dim3(32), 0).find("cudaErrorInvalidConfiguration") !=
        std::string::npos);
  CHECK(launch_error(dim3(1), dim3(2, 2, 65), 0).find("cudaErrorInvalidConfiguration") !=
        std::string::npos);
  // More than 48 KiB of dynamic shared memory needs the attribute first.
  const std::string big = launch_error(dim3(1), dim3(32), 64 * 1024);
  INFO(big);
  CHECK(big.find("cudaErrorInvalidValue") != std::string::npos);
  EMBER_CUDA_CHECK(
      cudaFuncSetAttribute(touch_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024),
      "test attribute");
  CHECK(launch_error(dim3(1), dim3(32), 64 * 1024).empty());
  CHECK(launch_error(dim3(1), dim3(1024), 0).empty());
  CHECK(cudaGetLastError() == cudaSuccess);
}

TEST_CASE("cuda runtime: streams, events and copies", "[cuda][simt]") {
  EMBER_SKIP_IF_NO_GPU();
  cudaStream_t s = nullptr;
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
  cudaEvent_t a = nullptr, b = nullptr;
  EMBER_CUDA_CHECK(cudaEventCreate(&a), "event");
  EMBER_CUDA_CHECK(cudaEventCreate(&b), "event");
  DevBuf<int> d(256);
  std::vector<int> h(256, 0);
  EMBER_CUDA_CHECK(cudaEventRecord(a, s), "record");
  ecu::launch("test", "touch_kernel", touch_kernel, dim3(1), dim3(256), 0, s, d.get());
  EMBER_CUDA_CHECK(cudaEventRecord(b, s), "record");
  EMBER_CUDA_CHECK(cudaMemcpyAsync(h.data(), d.get(), 256 * sizeof(int), cudaMemcpyDeviceToHost, s),
                   "copy");
  EMBER_CUDA_CHECK(cudaStreamSynchronize(s), "sync");
  for (int i = 0; i < 256; ++i) CHECK(h[size_t(i)] == i);
  float ms = -1.0f;
  EMBER_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b), "elapsed");
  CHECK(ms >= 0.0f);
  EMBER_CUDA_CHECK(cudaEventDestroy(a), "event");
  EMBER_CUDA_CHECK(cudaEventDestroy(b), "event");
  EMBER_CUDA_CHECK(cudaStreamDestroy(s), "stream");
  cudaDeviceProp prop;
  EMBER_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0), "properties");
  CHECK(prop.warpSize == 32);
  CHECK(prop.maxThreadsPerBlock == 1024);
  CHECK(std::string(prop.name).size() > 0);
}

#if defined(EMBER_CUDA_EMULATION)

namespace {

// ---- kernels with faults (launched only under the host runtime) ----

__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void early_exit_barrier_kernel(int* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void missing_lane_shuffle_kernel(int* out) {
  int v = int(threadIdx.x);
  if (threadIdx.x != 3) v = __shfl_down_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

__global__ void foreign_mask_shuffle_kernel(int* out) {
  out[threadIdx.x] = __shfl_sync(0x1u, int(threadIdx.x), 0);  // lanes 1.. are not in the mask
}

/// Thread 0 sums what the others wrote without waiting for them (missing __syncthreads).
__global__ void missing_barrier_kernel(float* out) {
  EMBER_SHARED(float, part, [64]);
  part[threadIdx.x] = float(threadIdx.x + 1);
  if (threadIdx.x == 0) {
    float s = 0;
    for (int i = 0; i < 64; ++i) s += part[i];
    out[0] = s;
  }
}

/// Reads shared memory that no thread of the block wrote.
__global__ void unwritten_shared_kernel(float* out) {
  EMBER_SHARED(float, part, [64]);
  if (threadIdx.x < 32) part[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = part[63 - threadIdx.x];  // threads 0..31 read 32..63
}

/// Every thread of every block writes the one element.
__global__ void write_conflict_kernel(int* out) {
  out[0] = int(blockIdx.x * blockDim.x + threadIdx.x);
}

/// Launches `kernel` and returns the error message (empty when it succeeded).
template <class... P, class... A>
std::string fault_of(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, A... args) {
  try {
    ecu::launch("fault test", name, kernel, grid, block, 0, stream(), args...);
  } catch (const ember::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("host runtime: a copy outside any allocation is refused", "[cuda][simt][emulation]") {
  DevBuf<float> d(16);
  std::vector<float> h(32);
  CHECK(cudaMemcpy(d.get(), h.data(), 32 * sizeof(float), cudaMemcpyHostToDevice) ==
        cudaErrorInvalidValue);
  CHECK(cudaMemcpy(h.data(), d.get() + 8, 9 * sizeof(float), cudaMemcpyDeviceToHost) ==
        cudaErrorInvalidValue);
  CHECK(cudaMemcpy(h.data(), h.data() + 16, 4, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(cudaMemcpy(h.data(), d.get() + 8, 8 * sizeof(float), cudaMemcpyDeviceToHost) ==
        cudaSuccess);
}

TEST_CASE("host runtime: faults are reported naming the kernel", "[cuda][simt][emulation]") {
  DevBuf<int> iout(64);
  DevBuf<float> fout(64);
  struct Expect {
    std::string msg;
    const char* kernel;
    const char* what;
  };
  const Expect cases[] = {
      {fault_of("divergent_barrier_kernel", divergent_barrier_kernel, dim3(1), dim3(32),
                iout.get()),
       "divergent_barrier_kernel", "divergent __syncthreads"},
      {fault_of("early_exit_barrier_kernel", early_exit_barrier_kernel, dim3(1), dim3(32),
                iout.get()),
       "early_exit_barrier_kernel", "is not reached by every thread"},
      {fault_of("missing_lane_shuffle_kernel", missing_lane_shuffle_kernel, dim3(1), dim3(32),
                iout.get()),
       "missing_lane_shuffle_kernel", "is never reached by lane 3"},
      {fault_of("foreign_mask_shuffle_kernel", foreign_mask_shuffle_kernel, dim3(1), dim3(32),
                iout.get()),
       "foreign_mask_shuffle_kernel", "does not include its own lane"},
      {fault_of("missing_barrier_kernel", missing_barrier_kernel, dim3(1), dim3(64), fout.get()),
       "missing_barrier_kernel", "differs between the increasing and the decreasing thread order"},
      {fault_of("unwritten_shared_kernel", unwritten_shared_kernel, dim3(1), dim3(64), fout.get()),
       "unwritten_shared_kernel", "differs between the increasing and the decreasing thread order"},
      {fault_of("write_conflict_kernel", write_conflict_kernel, dim3(4), dim3(32), iout.get()),
       "write_conflict_kernel", "differs between the increasing and the decreasing thread order"},
      {fault_of("warp_kernel", warp_kernel, dim3(1), dim3(48), iout.get()), "warp_kernel",
       "which this block of 48 threads does not have"},
  };
  for (const Expect& e : cases) {
    INFO("kernel " << e.kernel << ": " << e.msg);
    CHECK(e.msg.find(std::string("kernel ") + e.kernel) != std::string::npos);
    CHECK(e.msg.find(e.what) != std::string::npos);
    CHECK(e.msg.find("cudaErrorLaunchFailure") != std::string::npos);
  }
  // The runtime stays usable: the last error was consumed and a correct kernel runs.
  CHECK(cudaGetLastError() == cudaSuccess);
  iout.poison();
  ecu::launch("test", "touch_kernel", touch_kernel, dim3(1), dim3(64), 0, stream(), iout.get());
  const std::vector<int> h = iout.download();
  for (int i = 0; i < 64; ++i) CHECK(h[size_t(i)] == i);
}

#endif  // EMBER_CUDA_EMULATION
