// @file include/ember/core/arg.hpp
// @brief EMBER_ARG: one field of an options object with libtorch's chained setter and getters.
//
// Inside a class, EMBER_ARG(double, lr) = 1e-3; declares the private field lr_ (here with its
// default) and, as libtorch's TORCH_ARG:
//   opts.lr(0.1)   sets it and returns the options, so setters chain:
//                  AdamOptions(1e-3).betas({0.9, 0.999}).eps(1e-8);
//   opts.lr()      reads it (a mutable reference on a non-const object: opts.lr() = 0.1).
// Values are checked where they are used (the layer's or optimizer's constructor), which names
// the layer and the value.
#pragma once
#include <utility>

#define EMBER_ARG(T, name)                          \
 public:                                            \
  auto name(const T& new_##name)->decltype(*this) { \
    this->name##_ = new_##name;                     \
    return *this;                                   \
  }                                                 \
  auto name(T&& new_##name)->decltype(*this) {      \
    this->name##_ = std::move(new_##name);          \
    return *this;                                   \
  }                                                 \
  const T& name() const noexcept {                  \
    return this->name##_;                           \
  }                                                 \
  T& name() noexcept {                              \
    return this->name##_;                           \
  }                                                 \
                                                    \
 private:                                           \
  T name##_
