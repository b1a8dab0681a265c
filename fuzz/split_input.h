// Splits one fuzz input into parts at a fixed separator line, so one byte string can carry a YAML text and
// a tensor list (fuzz_inventory) or two whole files (fuzz_quick). A separator that mutations rarely
// create by chance keeps the parts stable while the fuzzer edits inside them; it is in fuzz/dict/split.dict.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace mgcheck::fuzz {

inline constexpr std::string_view kSplit = "\n--mgcheck-split--\n";

// At most `max_parts` parts; the last part keeps any further separators.
inline std::vector<std::span<const uint8_t>> split_input(const uint8_t* data, size_t size, size_t max_parts) {
  std::vector<std::span<const uint8_t>> parts;
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (parts.size() + 1 < max_parts) {
    size_t at = all.find(kSplit, start);
    if (at == std::string_view::npos) break;
    parts.emplace_back(data + start, at - start);
    start = at + kSplit.size();
  }
  parts.emplace_back(data + start, size - start);
  return parts;
}

inline std::string_view as_text(std::span<const uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

}  // namespace mgcheck::fuzz
