// @file benchmarks/bench_train_cuda.cu
// @brief The CUDA half of bench-train-cuda: compiled by nvcc, including ember registers the CUDA
//        backend for the whole program, so bench_train.cpp can run with --device cuda.
#include <ember/ember.hpp>
