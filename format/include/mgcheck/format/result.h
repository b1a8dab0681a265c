// Errors as values on the parse path: Result<T> holds a T or the fatal Finding that stopped the stage.
// (std::expected is C++23; GCC 12 lacks it.)
#pragma once
#include <utility>
#include <variant>

#include "mgcheck/format/finding.h"

namespace mgcheck::format {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}             // NOLINT: implicit by design
  Result(Finding error) : v_(std::move(error)) {}       // NOLINT
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const Finding& error() const& { return std::get<1>(v_); }
  Finding&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Finding> v_;
};

// For stages that produce nothing but may fail.
struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace mgcheck::format
