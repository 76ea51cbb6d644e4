// @file include/ember/kernels/cuda/host/runtime_api.hpp
// @brief The CUDA runtime API subset that ember uses, implemented on the host for the SIMT
//        emulation: one device named "host SIMT emulation" with an H100's launch limits.
//
// Memory: cudaMalloc returns exact-size heap memory filled with 0xFF bytes (NaN as float), so a
// read of memory no kernel wrote shows up, and AddressSanitizer sees one byte past the end.
// Device memory is limited to EMBER_SIMT_MEMORY_MB (default 4096) so out-of-memory paths run.
// Copies check that their device side lies inside one allocation (cudaErrorInvalidValue
// otherwise). Streams and events exist as handles; all work executes in issue order when it is
// issued, so every stream is always idle. Errors: the last error is per host thread; launch
// configuration errors are returned by cudaGetLastError as on a GPU, kernel faults as
// cudaErrorLaunchFailure with their description in ember::simt::take_fault_detail().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "simt.hpp"

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
  cudaErrorUnknown = 999
};
using cudaError = cudaError_t;

struct CUstream_st {
  int id;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
  bool recorded;
};
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
#define cudaStreamLegacy (reinterpret_cast<cudaStream_t>(0x1))
#define cudaStreamPerThread (reinterpret_cast<cudaStream_t>(0x2))
constexpr unsigned cudaStreamDefault = 0x0, cudaStreamNonBlocking = 0x1;
constexpr unsigned cudaEventDefault = 0x0, cudaEventBlockingSync = 0x1,
                   cudaEventDisableTiming = 0x2;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

enum cudaMemoryType {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3
};
struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  size_t sharedMemPerMultiprocessor;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int clockRate;
  int major;
  int minor;
  int multiProcessorCount;
  int maxThreadsPerMultiProcessor;
  int l2CacheSize;
  int memoryBusWidth;
  int memoryClockRate;
  int concurrentKernels;
  int asyncEngineCount;
  int unifiedAddressing;
};

namespace ember::simt {

struct ApiState {
  std::mutex mu;
  std::set<const void*> streams;
  std::set<const void*> events;
  std::set<const void*> pinned;
  int next_stream = 3;
};
inline ApiState& api() {
  static ApiState* s = new ApiState();  // leaked: usable during static destruction
  return *s;
}

inline thread_local cudaError_t t_last_error = cudaSuccess;

inline cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}

inline bool valid_stream(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return true;
  ApiState& a = api();
  std::lock_guard<std::mutex> lk(a.mu);
  return a.streams.count(s) != 0;
}

/// Checks the device side of a copy of n bytes.
inline bool device_range_ok(const void* p, size_t n) {
  if (n == 0) return true;
  return find_allocation(p, n);
}

inline cudaError_t do_copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  Device& d = device();
  std::lock_guard<std::recursive_mutex> lk(d.mu);
  if (n == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return set_error(cudaErrorInvalidValue);
  switch (kind) {
    case cudaMemcpyHostToDevice:
      if (!device_range_ok(dst, n)) return set_error(cudaErrorInvalidValue);
      break;
    case cudaMemcpyDeviceToHost:
      if (!device_range_ok(src, n)) return set_error(cudaErrorInvalidValue);
      break;
    case cudaMemcpyDeviceToDevice:
      if (!device_range_ok(dst, n) || !device_range_ok(src, n))
        return set_error(cudaErrorInvalidValue);
      break;
    case cudaMemcpyHostToHost:
    case cudaMemcpyDefault:
      break;
    default:
      return set_error(cudaErrorInvalidMemcpyDirection);
  }
  std::memmove(dst, src, n);
  return cudaSuccess;
}

}  // namespace ember::simt

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError:
      return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
      return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection:
      return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction:
      return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
    case cudaErrorIllegalAddress:
      return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources:
      return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    default:
      return "cudaErrorUnknown";
  }
}

inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInitializationError:
      return "initialization error";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection:
      return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction:
      return "invalid device function";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNotReady:
      return "device not ready";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources:
      return "too many resources requested for launch";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    default:
      return "unknown error";
  }
}

inline cudaError_t cudaGetLastError() {
  const cudaError_t e = ember::simt::t_last_error;
  ember::simt::t_last_error = cudaSuccess;
  return e;
}
inline cudaError_t cudaPeekAtLastError() {
  return ember::simt::t_last_error;
}

// ---- device ----

inline cudaError_t cudaGetDeviceCount(int* n) {
  if (n == nullptr) return ember::simt::set_error(cudaErrorInvalidValue);
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* d) {
  if (d == nullptr) return ember::simt::set_error(cudaErrorInvalidValue);
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) {
  return d == 0 ? cudaSuccess : ember::simt::set_error(cudaErrorInvalidDevice);
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (p == nullptr) return ember::simt::set_error(cudaErrorInvalidValue);
  if (d != 0) return ember::simt::set_error(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof(*p));
  std::strncpy(p->name, "host SIMT emulation", sizeof(p->name) - 1);
  p->totalGlobalMem = ember::simt::device().limit;
  p->sharedMemPerBlock = 48 * 1024;
  p->sharedMemPerBlockOptin = 227 * 1024;
  p->sharedMemPerMultiprocessor = 228 * 1024;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->clockRate = 1980000;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 132;
  p->maxThreadsPerMultiProcessor = 2048;
  p->l2CacheSize = 50 * 1024 * 1024;
  p->memoryBusWidth = 5120;
  p->memoryClockRate = 2619000;
  p->concurrentKernels = 1;
  p->asyncEngineCount = 3;
  p->unifiedAddressing = 1;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() {
  std::lock_guard<std::recursive_mutex> lk(ember::simt::device().mu);
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  ember::simt::Device& d = ember::simt::device();
  std::lock_guard<std::recursive_mutex> lk(d.mu);
  if (free_bytes) *free_bytes = d.limit - d.bytes;
  if (total) *total = d.limit;
  return cudaSuccess;
}

// ---- memory ----

inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (p == nullptr) return ember::simt::set_error(cudaErrorInvalidValue);
  *p = nullptr;
  ember::simt::Device& d = ember::simt::device();
  std::lock_guard<std::recursive_mutex> lk(d.mu);
  if (bytes > d.limit - d.bytes) return ember::simt::set_error(cudaErrorMemoryAllocation);
  const size_t n = bytes == 0 ? 1 : bytes;
  // posix_memalign takes any size: the exact size lets AddressSanitizer see the byte past the end.
  void* m = nullptr;
  if (posix_memalign(&m, 256, n) != 0 || m == nullptr)
    return ember::simt::set_error(cudaErrorMemoryAllocation);
  std::memset(m, 0xFF, n);
  d.allocations[reinterpret_cast<uintptr_t>(m)] = n;
  d.bytes += n;
  *p = m;
  return cudaSuccess;
}
template <class T>
inline cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  if (p == nullptr) return cudaSuccess;
  ember::simt::Device& d = ember::simt::device();
  std::lock_guard<std::recursive_mutex> lk(d.mu);
  auto it = d.allocations.find(reinterpret_cast<uintptr_t>(p));
  if (it == d.allocations.end()) return ember::simt::set_error(cudaErrorInvalidDevicePointer);
  d.bytes -= it->second;
  d.allocations.erase(it);
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, size_t bytes) {
  if (p == nullptr) return ember::simt::set_error(cudaErrorInvalidValue);
  *p = std::malloc(bytes == 0 ? 1 : bytes);
  if (*p == nullptr) return ember::simt::set_error(cudaErrorMemoryAllocation);
  ember::simt::ApiState& a = ember::simt::api();
  std::lock_guard<std::mutex> lk(a.mu);
  a.pinned.insert(*p);
  return cudaSuccess;
}
inline cudaError_t cudaFreeHost(void* p) {
  if (p == nullptr) return cudaSuccess;
  ember::simt::ApiState& a = ember::simt::api();
  std::lock_guard<std::mutex> lk(a.mu);
  if (a.pinned.erase(p) == 0) return ember::simt::set_error(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attr, const void* p) {
  if (attr == nullptr) return ember::simt::set_error(cudaErrorInvalidValue);
  std::memset(attr, 0, sizeof(*attr));
  {
    std::lock_guard<std::recursive_mutex> lk(ember::simt::device().mu);
    if (ember::simt::find_allocation(p, 1)) {
      attr->type = cudaMemoryTypeDevice;
      attr->devicePointer = const_cast<void*>(p);
      return cudaSuccess;
    }
  }
  ember::simt::ApiState& a = ember::simt::api();
  std::lock_guard<std::mutex> lk(a.mu);
  attr->type = a.pinned.count(p) ? cudaMemoryTypeHost : cudaMemoryTypeUnregistered;
  attr->hostPointer = const_cast<void*>(p);
  attr->device = -2;
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  return ember::simt::do_copy(dst, src, n, kind);
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind,
                                   cudaStream_t s = nullptr) {
  if (!ember::simt::valid_stream(s)) return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  return ember::simt::do_copy(dst, src, n, kind);
}
inline cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch,
                                size_t width, size_t height, cudaMemcpyKind kind) {
  if (width > dpitch || width > spitch) return ember::simt::set_error(cudaErrorInvalidValue);
  for (size_t r = 0; r < height; ++r) {
    const cudaError_t e =
        ember::simt::do_copy(static_cast<char*>(dst) + r * dpitch,
                             static_cast<const char*>(src) + r * spitch, width, kind);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch,
                                     size_t width, size_t height, cudaMemcpyKind kind,
                                     cudaStream_t s = nullptr) {
  if (!ember::simt::valid_stream(s)) return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  return cudaMemcpy2D(dst, dpitch, src, spitch, width, height, kind);
}
inline cudaError_t cudaMemset(void* p, int value, size_t n) {
  ember::simt::Device& d = ember::simt::device();
  std::lock_guard<std::recursive_mutex> lk(d.mu);
  if (n == 0) return cudaSuccess;
  if (!ember::simt::device_range_ok(p, n)) return ember::simt::set_error(cudaErrorInvalidValue);
  std::memset(p, value, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t s = nullptr) {
  if (!ember::simt::valid_stream(s)) return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  return cudaMemset(p, value, n);
}

// ---- streams and events ----

inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned /*flags*/) {
  if (s == nullptr) return ember::simt::set_error(cudaErrorInvalidValue);
  ember::simt::ApiState& a = ember::simt::api();
  std::lock_guard<std::mutex> lk(a.mu);
  *s = new CUstream_st{a.next_stream++};
  a.streams.insert(*s);
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t* s) {
  return cudaStreamCreateWithFlags(s, cudaStreamDefault);
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  ember::simt::ApiState& a = ember::simt::api();
  std::lock_guard<std::mutex> lk(a.mu);
  if (a.streams.erase(s) == 0) return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  delete s;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (!ember::simt::valid_stream(s)) return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::recursive_mutex> lk(ember::simt::device().mu);
  return cudaSuccess;
}
inline cudaError_t cudaStreamQuery(cudaStream_t s) {
  if (!ember::simt::valid_stream(s)) return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned /*flags*/) {
  if (e == nullptr) return ember::simt::set_error(cudaErrorInvalidValue);
  ember::simt::ApiState& a = ember::simt::api();
  std::lock_guard<std::mutex> lk(a.mu);
  *e = new CUevent_st{std::chrono::steady_clock::now(), false};
  a.events.insert(*e);
  return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  return cudaEventCreateWithFlags(e, cudaEventDefault);
}
inline bool ember_simt_valid_event(cudaEvent_t e) {
  ember::simt::ApiState& a = ember::simt::api();
  std::lock_guard<std::mutex> lk(a.mu);
  return a.events.count(e) != 0;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  ember::simt::ApiState& a = ember::simt::api();
  std::lock_guard<std::mutex> lk(a.mu);
  if (a.events.erase(e) == 0) return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr) {
  if (!ember_simt_valid_event(e) || !ember::simt::valid_stream(s))
    return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  e->t = std::chrono::steady_clock::now();
  e->recorded = true;
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!ember_simt_valid_event(e)) return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}
inline cudaError_t cudaEventQuery(cudaEvent_t e) {
  if (!ember_simt_valid_event(e)) return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return ember::simt::set_error(cudaErrorInvalidValue);
  if (!ember_simt_valid_event(start) || !ember_simt_valid_event(end))
    return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded)
    return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->t - start->t).count();
  return cudaSuccess;
}
inline cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned /*flags*/ = 0) {
  if (!ember_simt_valid_event(e) || !ember::simt::valid_stream(s))
    return ember::simt::set_error(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}

// ---- kernels ----

template <class... P>
inline cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > 227 * 1024) return ember::simt::set_error(cudaErrorInvalidValue);
    ember::simt::Device& d = ember::simt::device();
    std::lock_guard<std::recursive_mutex> lk(d.mu);
    d.max_dyn_smem[reinterpret_cast<const void*>(kernel)] = value;
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  return ember::simt::set_error(cudaErrorInvalidValue);
}

namespace ember::simt {

/// kernel<<<grid, block, smem, stream>>>(args...) for the host runtime: returns the launch's
/// error (also left as the last error, as CUDA does); a fault's description goes to
/// take_fault_detail().
template <class... P, class... A>
inline cudaError_t launch_kernel(const char* name, void (*kernel)(P...), dim3 grid, dim3 block,
                                 size_t smem, cudaStream_t stream, A&&... args) {
  if (!valid_stream(stream)) return set_error(cudaErrorInvalidResourceHandle);
  std::string why;
  const LaunchResult r = launch(name, kernel, grid, block, smem, why, std::forward<A>(args)...);
  switch (r) {
    case LaunchResult::ok:
      return cudaSuccess;
    case LaunchResult::bad_config:
      t_fault_detail = why;
      return set_error(cudaErrorInvalidConfiguration);
    case LaunchResult::bad_smem:
      t_fault_detail = why;
      return set_error(cudaErrorInvalidValue);
    case LaunchResult::fault:
      t_fault_detail = why;
      return set_error(cudaErrorLaunchFailure);
  }
  return set_error(cudaErrorUnknown);
}

}  // namespace ember::simt
