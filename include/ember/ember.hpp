// @file include/ember/ember.hpp
// @brief The whole ember API: tensors, autograd, ops, nn modules and optimizers.
//
// Compiled by a plain C++ compiler this gives the CPU backend. Compiled by nvcc (a .cu file) it
// also compiles the CUDA kernels and registers the CUDA backend for the whole program (see
// core/backend.hpp for programs that mix .cpp and .cu files), unless the program links the
// compiled backend ember::cuda. Compiled as C++ with EMBER_CUDA_EMULATION and
// include/ember/kernels/cuda/host/include on the include path, the same CUDA kernels run on the
// CPU under the host SIMT runtime (how the CUDA code is tested without a GPU).
#pragma once

#include "tensor.hpp"
#include "autograd.hpp"
#include "ops/batch_norm.hpp"
#include "ops/broadcast.hpp"
#include "ops/concat.hpp"
#include "ops/conv2d.hpp"
#include "ops/conv_transpose2d.hpp"
#include "ops/elementwise.hpp"
#include "ops/gelu.hpp"
#include "ops/group_norm.hpp"
#include "ops/linear.hpp"
#include "ops/max_pool2d.hpp"
#include "ops/mse_loss.hpp"
#include "ops/reduce.hpp"
#include "ops/relu.hpp"
#include "ops/silu.hpp"
#include "ops/unary.hpp"
#include "ops/view.hpp"
// layout and indexing (#12 item 5)
#include "ops/layout.hpp"
#include "ops/one_hot.hpp"
#include "ops/range.hpp"
#include "nn/batchnorm.hpp"
#include "nn/conv.hpp"
#include "nn/groupnorm.hpp"
#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/sequential.hpp"
// layout and indexing (#12 item 5)
#include "nn/layout.hpp"
#include "optim/adam.hpp"
#include "optim/sgd.hpp"
// softmax family
#include "ops/reduction.hpp"
#include "ops/softmax.hpp"
#include "ops/cross_entropy.hpp"
#include "nn/loss.hpp"
// layers and training
#include "ops/dropout.hpp"
#include "ops/embedding.hpp"
#include "nn/dropout.hpp"
#include "nn/embedding.hpp"
#include "nn/module_list.hpp"
#include "nn/utils.hpp"
#include "optim/lr_scheduler.hpp"

// A CUDA translation unit registers the CUDA backend by compiling every kernel here, unless the
// program links the compiled backend ember::cuda (src/cuda_backend.cu), which defines
// EMBER_CUDA_PRECOMPILED for its users: then the kernels come from that one object file.
#if (defined(__CUDACC__) || defined(EMBER_CUDA_EMULATION)) && !defined(EMBER_CUDA_PRECOMPILED)
#include <ember/kernels/cuda/backend.cuh>
#endif
