// @file include/ember/kernels/hd.hpp
// @brief EMBER_HD: the one marker for functions shared by host and device code (CPU kernels,
//        CUDA kernels and the host SIMT emulation).
//
//   nvcc (and any compiler defining __CUDACC__)  __host__ __device__ __forceinline__
//   EMBER_CUDA_EMULATION (.cu compiled as C++)  inline  (device_builtins.hpp makes __host__ /
//                                                __device__ empty and __forceinline__ inline, so
//                                                the nvcc spelling would mean the same)
//   plain C++                                    inline
// Include it first-hand wherever EMBER_HD is used; it has no other content.
#pragma once

#ifndef EMBER_HD
#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__ __forceinline__
#else
#define EMBER_HD inline
#endif
#endif
