// "0x"-prefixed lower-case hexadecimal, as findings quote signatures, field ids, flags, CRCs and opcodes.
// Header-only so that every layer writes numbers in messages the same way.
#pragma once
#include <cstdint>
#include <string>

namespace mgcheck::format {

// `v` in hexadecimal with at least `min_digits` digits (zero-padded): hex_string(0x8a) == "0x8a",
// hex_string(5, 2) == "0x05", hex_string(0) == "0x0".
inline std::string hex_string(uint64_t v, unsigned min_digits = 1) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buf[16];
  unsigned n = 0;
  do {
    buf[n++] = kDigits[v & 15];
    v >>= 4;
  } while (v != 0);
  while (n < min_digits && n < sizeof buf) buf[n++] = '0';
  std::string s = "0x";
  while (n > 0) s += buf[--n];
  return s;
}

}  // namespace mgcheck::format
