#include "mgcheck/harness/text.h"

#include <cstdint>

#include "mgcheck/format/utf8.h"

namespace mgcheck::harness {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

void put_byte_escape(std::string& o, uint8_t b) {
  o += "\\x";
  o += kHex[b >> 4];
  o += kHex[b & 15];
}

// Walks `s` sequence by sequence: `valid(o, seq)` for each well-formed UTF-8 sequence, `\xNN` for each
// byte that starts none.
template <typename F>
std::string transform(std::string_view s, F&& valid) {
  std::string o;
  o.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = format::utf8_sequence_length(s, i);
    if (n == 0) {
      put_byte_escape(o, static_cast<uint8_t>(s[i]));
      ++i;
      continue;
    }
    valid(o, s.substr(i, n));
    i += n;
  }
  return o;
}

}  // namespace

std::string escape_invalid_utf8(std::string_view s) {
  if (format::valid_utf8(s)) return std::string(s);
  return transform(s, [](std::string& o, std::string_view seq) { o += seq; });
}

std::string console_text(std::string_view s) {
  return transform(s, [](std::string& o, std::string_view seq) {
    const auto c0 = static_cast<uint8_t>(seq[0]);
    const bool control = (seq.size() == 1 && (c0 < 0x20 || c0 == 0x7F)) ||
                         (seq.size() == 2 && c0 == 0xC2 && static_cast<uint8_t>(seq[1]) < 0xA0);
    if (!control) {
      o += seq;
      return;
    }
    for (char c : seq) put_byte_escape(o, static_cast<uint8_t>(c));
  });
}

std::string xml_text(std::string_view s, bool attribute) {
  return transform(s, [attribute](std::string& o, std::string_view seq) {
    if (seq.size() == 1) {
      const char c = seq[0];
      switch (c) {
        case '&': o += "&amp;"; return;
        case '<': o += "&lt;"; return;
        case '>': o += "&gt;"; return;
        case '"': o += "&quot;"; return;
        case '\'': o += "&apos;"; return;
        case '\t': o += attribute ? "&#9;" : "\t"; return;
        case '\n': o += attribute ? "&#10;" : "\n"; return;
        case '\r': o += "&#13;"; return;  // a literal CR would be normalised away by the parser
        default: break;
      }
      if (static_cast<uint8_t>(c) < 0x20) {
        put_byte_escape(o, static_cast<uint8_t>(c));
        return;
      }
      o += c;
      return;
    }
    // U+FFFE and U+FFFF (EF BF BE / EF BF BF) are not XML characters.
    if (seq.size() == 3 && static_cast<uint8_t>(seq[0]) == 0xEF && static_cast<uint8_t>(seq[1]) == 0xBF &&
        static_cast<uint8_t>(seq[2]) >= 0xBE) {
      for (char c : seq) put_byte_escape(o, static_cast<uint8_t>(c));
      return;
    }
    o += seq;
  });
}

std::string hex_bytes(std::string_view s) {
  static constexpr char kLower[] = "0123456789abcdef";
  std::string o;
  o.reserve(s.size() * 2);
  for (char c : s) {
    o += kLower[static_cast<uint8_t>(c) >> 4];
    o += kLower[static_cast<uint8_t>(c) & 15];
  }
  return o;
}

nlohmann::json json_safe(const nlohmann::json& j) {
  using nlohmann::json;
  switch (j.type()) {
    case json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      return format::valid_utf8(s) ? j : json(escape_invalid_utf8(s));
    }
    case json::value_t::array: {
      json a = json::array();
      for (const auto& e : j) a.push_back(json_safe(e));
      return a;
    }
    case json::value_t::object: {
      json o = json::object();
      for (auto it = j.begin(); it != j.end(); ++it) o[escape_invalid_utf8(it.key())] = json_safe(it.value());
      return o;
    }
    default:
      return j;
  }
}

}  // namespace mgcheck::harness
