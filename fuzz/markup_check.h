// A small well-formedness check for the XML mgcheck writes (JUnit, and the HTML page, which is written as
// well-formed XML too): valid UTF-8, only XML 1.0 characters, one root element, balanced tags, quoted
// attributes without `<`, every `&` a known entity or a character reference to an XML character, no
// `]]>` in character data; the prolog may hold an XML declaration, comments and a DOCTYPE without an
// internal subset. Returns "" when well-formed, else what is wrong and where. Header-only (fuzz targets
// and tests share it).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mgcheck/format/utf8.h"

namespace mgcheck::fuzz {

inline bool xml_char(uint32_t c) {
  return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
         (c >= 0x10000 && c <= 0x10FFFF);
}

inline std::string xml_wellformed(std::string_view s) {
  using std::string;
  auto at = [](const char* what, size_t pos) { return string(what) + " at byte " + std::to_string(pos); };
  if (!format::valid_utf8(s)) return "not valid UTF-8";
  for (size_t i = 0; i < s.size();) {
    const size_t n = format::utf8_sequence_length(s, i);
    uint32_t c = static_cast<uint8_t>(s[i]);
    if (n == 3 && c == 0xEF && static_cast<uint8_t>(s[i + 1]) == 0xBF && static_cast<uint8_t>(s[i + 2]) >= 0xBE)
      return at("U+FFFE/U+FFFF", i);
    if (n == 1 && !xml_char(c)) return at("a character XML 1.0 forbids", i);
    i += n;
  }
  auto name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == ':' || c == '.' || static_cast<uint8_t>(c) >= 0x80;
  };
  // `&...;` at s[i]: a predefined entity or a character reference to an XML character.
  auto reference = [&](size_t i) -> size_t {
    const size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 12) return 0;
    std::string_view r = s.substr(i + 1, semi - i - 1);
    if (r == "amp" || r == "lt" || r == "gt" || r == "quot" || r == "apos") return semi + 1;
    if (r.size() < 2 || r[0] != '#') return 0;
    uint64_t v = 0;
    const bool hex = r[1] == 'x';
    if (r.size() < (hex ? 3u : 2u)) return 0;
    for (size_t k = hex ? 2 : 1; k < r.size(); ++k) {
      const char c = r[k];
      int d = c >= '0' && c <= '9' ? c - '0' : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
              : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return 0;
      v = v * (hex ? 16 : 10) + static_cast<uint64_t>(d);
      if (v > 0x10FFFF) return 0;
    }
    return xml_char(static_cast<uint32_t>(v)) ? semi + 1 : 0;
  };
  std::vector<std::string_view> open;
  bool root_seen = false;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '<') {
      if (open.empty()) {
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r') return at("text outside the root element", i);
        ++i;
        continue;
      }
      if (s[i] == '&') {
        const size_t e = reference(i);
        if (e == 0) return at("a bare '&' or an unknown reference", i);
        i = e;
        continue;
      }
      if (s.compare(i, 3, "]]>") == 0) return at("']]>' in character data", i);
      ++i;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t e = s.find("-->", i + 4);
      if (e == std::string_view::npos) return at("an unterminated comment", i);
      if (s.substr(i + 4, e - i - 4).find("--") != std::string_view::npos) return at("'--' inside a comment", i);
      i = e + 3;
      continue;
    }
    if (s.compare(i, 2, "<?") == 0) {
      if (root_seen || i != 0) return at("a processing instruction after the start", i);
      const size_t e = s.find("?>", i + 2);
      if (e == std::string_view::npos) return at("an unterminated XML declaration", i);
      i = e + 2;
      continue;
    }
    if (s.compare(i, 9, "<!DOCTYPE") == 0) {
      if (root_seen) return at("a DOCTYPE after the root element", i);
      const size_t e = s.find('>', i);
      if (e == std::string_view::npos || s.substr(i, e - i).find('[') != std::string_view::npos)
        return at("a DOCTYPE this check does not read", i);
      i = e + 1;
      continue;
    }
    if (s.compare(i, 2, "<!") == 0) return at("CDATA or a declaration inside the document", i);
    const bool closing = s.compare(i, 2, "</") == 0;
    size_t p = i + (closing ? 2 : 1);
    const size_t name_start = p;
    while (p < s.size() && name_char(s[p])) ++p;
    std::string_view name = s.substr(name_start, p - name_start);
    if (name.empty() || (name[0] >= '0' && name[0] <= '9') || name[0] == '-' || name[0] == '.')
      return at("a tag without a valid name", i);
    if (closing) {
      while (p < s.size() && (s[p] == ' ' || s[p] == '\n' || s[p] == '\t')) ++p;
      if (p >= s.size() || s[p] != '>') return at("a malformed end tag", i);
      if (open.empty() || open.back() != name) return at("an end tag that does not match", i);
      open.pop_back();
      i = p + 1;
      continue;
    }
    if (open.empty() && root_seen) return at("a second root element", i);
    std::vector<std::string_view> attrs;
    bool self_closing = false;
    for (;;) {
      const size_t ws = p;
      while (p < s.size() && (s[p] == ' ' || s[p] == '\n' || s[p] == '\t' || s[p] == '\r')) ++p;
      if (p >= s.size()) return at("an unterminated start tag", i);
      if (s[p] == '>') {
        ++p;
        break;
      }
      if (s.compare(p, 2, "/>") == 0) {
        self_closing = true;
        p += 2;
        break;
      }
      if (p == ws) return at("attributes without white space between them", p);
      const size_t an = p;
      while (p < s.size() && name_char(s[p])) ++p;
      std::string_view aname = s.substr(an, p - an);
      if (aname.empty() || p + 1 >= s.size() || s[p] != '=' || (s[p + 1] != '"' && s[p + 1] != '\''))
        return at("an attribute that is not name=\"value\"", an);
      for (auto seen : attrs)
        if (seen == aname) return at("a repeated attribute", an);
      attrs.push_back(aname);
      const char q = s[p + 1];
      p += 2;
      while (p < s.size() && s[p] != q) {
        if (s[p] == '<') return at("'<' in an attribute value", p);
        if (s[p] == '&') {
          const size_t e = reference(p);
          if (e == 0) return at("a bare '&' in an attribute value", p);
          p = e;
          continue;
        }
        ++p;
      }
      if (p >= s.size()) return at("an unterminated attribute value", an);
      ++p;
    }
    root_seen = true;
    if (!self_closing) open.push_back(name);
    i = p;
  }
  if (!root_seen) return "no root element";
  if (!open.empty()) return "unclosed element <" + std::string(open.back()) + ">";
  return "";
}

}  // namespace mgcheck::fuzz
