// Overflow-safe arithmetic for every offset, size and count that comes from a file.
// Style after ggml's gguf reader: "len <= size && off <= size - len", never "off + len <= size".
#pragma once
#include <cstdint>
#include <optional>

namespace mgcheck::format {

// True when [off, off+len) lies inside a buffer of `size` bytes, without overflow.
constexpr bool fits(uint64_t off, uint64_t len, uint64_t size) noexcept {
  return len <= size && off <= size - len;
}

inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) noexcept {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) noexcept {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<int64_t> checked_add_i64(int64_t a, int64_t b) noexcept {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<int64_t> checked_mul_i64(int64_t a, int64_t b) noexcept {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

}  // namespace mgcheck::format
