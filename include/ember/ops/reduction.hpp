// @file include/ember/ops/reduction.hpp
// @brief ember::Reduction { none, mean, sum }: how a loss reduces its per-element values, as
//        PyTorch's reduction='none' / 'mean' / 'sum' (libtorch's torch::kNone / kMean / kSum).
#pragma once

namespace ember {

enum class Reduction { none, mean, sum };

/// "none", "mean" or "sum", for messages.
inline const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::none: return "none";
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
  }
  return "?";
}

}  // namespace ember
