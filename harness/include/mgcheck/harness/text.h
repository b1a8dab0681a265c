// How bytes from a checkpoint (record names, dict keys, tensor names, strings quoted in messages) are
// written into the reports. Nothing in a file is trusted to be valid UTF-8 or free of control
// characters, so every report format goes through these functions:
//  - a byte that does not start a well-formed UTF-8 sequence (format/utf8.h: strict, no surrogates) is
//    written as the four characters `\xNN` (uppercase hex); valid text is kept as it is;
//  - control characters are escaped as each format requires (see the functions below);
//  - JSON additionally carries the exact bytes of a name as hex (`name_hex`) whenever the name is not
//    valid UTF-8, because `\xNN` text cannot be told apart from a name that really contains a backslash.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mgcheck::harness {

// Valid UTF-8 kept; every other byte as `\xNN`. The result is always valid UTF-8.
std::string escape_invalid_utf8(std::string_view s);

// For a terminal: like escape_invalid_utf8, and C0 controls (tab and newline included), DEL and the C1
// controls U+0080–U+009F are written as `\xNN` (their UTF-8 bytes), so no byte from a file can move the
// cursor, change colours or start a terminal escape sequence.
std::string console_text(std::string_view s);

// For XML 1.0 character data and attribute values (JUnit; the HTML page is well-formed XML too): `&`,
// `<`, `>`, `"`, `'` as entities; tab, newline and carriage return as character references in attributes
// (attribute-value normalisation would otherwise turn them into spaces) and kept as they are in text; the
// characters XML 1.0 forbids even as references (other C0 controls, U+FFFE, U+FFFF) as `\xNN` text.
std::string xml_text(std::string_view s, bool attribute);

// Lowercase hex of the bytes, two digits each ("a\xff" → "61ff").
std::string hex_bytes(std::string_view s);

// A copy of `j` in which every string value and every object key is escape_invalid_utf8'd, so that
// nlohmann::json::dump (which throws on invalid UTF-8) always succeeds. Control characters need nothing:
// JSON escapes them.
nlohmann::json json_safe(const nlohmann::json& j);

}  // namespace mgcheck::harness
