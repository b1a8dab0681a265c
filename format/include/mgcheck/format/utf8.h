// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates (so no CESU-8 / "lone surrogate" encodings),
// nothing above U+10FFFF. Header-only so that every layer checks text by the same rule.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mgcheck::format {

// Length (1–4) of the well-formed UTF-8 sequence that starts at s[i], or 0 when the byte there does not
// start one (a stray continuation byte, an overlong or surrogate form, a truncated sequence, ...).
// Precondition: i < s.size().
inline size_t utf8_sequence_length(std::string_view s, size_t i) noexcept {
  const auto c = static_cast<uint8_t>(s[i]);
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07u;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<uint8_t>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3Fu);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return len;
}

inline bool valid_utf8(std::string_view s) noexcept {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace mgcheck::format
