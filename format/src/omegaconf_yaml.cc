// OmegaConf.to_yaml for a plain value tree: PyYAML's Emitter (block style, indent 2, width 80,
// allow_unicode) fed by OmegaConf's dumper, whose str representer single-quotes strings that read as a
// YAML bool or a Python int/float. Written as a small replica of PyYAML's emitter state machine so the
// text matches byte for byte, line folding of long scalars included.
// mirrors omegaconf/_utils.py (OmegaConfDumper.str_representer, YAML_BOOL_TYPES)
// mirrors PyYAML's emitter.py / representer.py / resolver.py (the parts OmegaConf.to_yaml exercises)
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <regex>

#include "mgcheck/format/export.h"

namespace mgcheck::format {

namespace {

using U32 = std::u32string;

bool decode_utf8(const std::string& s, U32& out) {
  out.clear();
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    char32_t cp;
    size_t n;
    if (c < 0x80) cp = c, n = 1;
    else if ((c & 0xE0) == 0xC0) cp = c & 0x1F, n = 2;
    else if ((c & 0xF0) == 0xE0) cp = c & 0x0F, n = 3;
    else if ((c & 0xF8) == 0xF0) cp = c & 0x07, n = 4;
    else return false;
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    out.push_back(cp);
    i += n;
  }
  return true;
}

void append_utf8(std::string& o, char32_t c) {
  if (c < 0x80) {
    o.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    o.push_back(static_cast<char>(0xC0 | (c >> 6)));
    o.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    o.push_back(static_cast<char>(0xE0 | (c >> 12)));
    o.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    o.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    o.push_back(static_cast<char>(0xF0 | (c >> 18)));
    o.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    o.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    o.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string to_utf8(const U32& s) {
  std::string o;
  for (char32_t c : s) append_utf8(o, c);
  return o;
}

bool is_break(char32_t c) { return c == U'\n' || c == 0x85 || c == 0x2028 || c == 0x2029; }
bool is_space_or_break0(char32_t c) { return c == 0 || c == U' ' || c == U'\t' || c == U'\r' || is_break(c); }

// ---------------------------------------------------------------- what plain text resolves to

// PyYAML's implicit resolvers (YAML 1.1), selected by first character as resolver.py does. A str
// whose text any of them matches cannot be written plain (implicit[0] is false).
bool matches_implicit_resolver(const std::string& v) {
  static const std::regex kBool("^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$");
  static const std::regex kFloat(
      "^(?:[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?|\\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
      "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$");
  static const std::regex kInt(
      "^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
      "|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$");
  static const std::regex kMerge("^(?:<<)$");
  static const std::regex kNull("^(?:~|null|Null|NULL|)$");
  static const std::regex kTimestamp(
      "^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
      "|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9]"
      "(?:\\.[0-9]*)?(?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$");
  static const std::regex kValue("^(?:=)$");
  if (v.empty()) return true;  // '' resolves to null
  if (v.size() > 256) return false;  // no resolver pattern matches anything this long
  auto test = [&](const std::regex& re) {
    // Python's re.match with `$` also matches before one trailing newline.
    if (std::regex_match(v, re)) return true;
    return v.back() == '\n' && std::regex_match(v.substr(0, v.size() - 1), re);
  };
  const char c = v[0];
  const std::string_view bool_first = "yYnNtTfFoO", num_first = "-+0123456789", digits = "0123456789";
  if (bool_first.find(c) != std::string_view::npos && test(kBool)) return true;
  if ((num_first.find(c) != std::string_view::npos || c == '.') && test(kFloat)) return true;
  if (num_first.find(c) != std::string_view::npos && test(kInt)) return true;
  if (c == '<' && test(kMerge)) return true;
  if ((c == '~' || c == 'n' || c == 'N') && test(kNull)) return true;
  if (digits.find(c) != std::string_view::npos && test(kTimestamp)) return true;
  if (c == '=' && test(kValue)) return true;
  return false;
}

// Python's str.strip() for the whitespace int()/float() skip.
std::string py_strip(const std::string& s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
                                (c >= '\x1c' && c <= '\x1f'); };
  size_t b = 0, e = s.size();
  while (b < e && ws(s[b])) ++b;
  while (e > b && ws(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Python's int(s) / float(s) acceptance (ASCII; PEP 515 underscores between digits). Hand-written
// scanners: no regex backtracking or recursion on long strings.
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// digit ('_'? digit)* starting at i; advances i; false when there is no digit at i.
bool scan_digitpart(const std::string& t, size_t& i) {
  if (i >= t.size() || !is_digit(t[i])) return false;
  ++i;
  while (i < t.size()) {
    if (is_digit(t[i])) ++i;
    else if (t[i] == '_' && i + 1 < t.size() && is_digit(t[i + 1])) i += 2;
    else break;
  }
  return true;
}

bool python_is_int(const std::string& s) {
  const std::string t = py_strip(s);
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  return scan_digitpart(t, i) && i == t.size();
}

bool python_is_float(const std::string& s) {
  const std::string t = py_strip(s);
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  std::string rest = t.substr(i);
  for (auto& c : rest) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (rest == "inf" || rest == "infinity" || rest == "nan") return true;
  const bool whole = scan_digitpart(t, i);
  bool frac = false;
  if (i < t.size() && t[i] == '.') {
    ++i;
    frac = scan_digitpart(t, i);
  }
  if (!whole && !frac) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!scan_digitpart(t, i)) return false;
  }
  return i == t.size();
}

// mirrors omegaconf/_utils.py YAML_BOOL_TYPES (exact spellings, no case folding)
bool omegaconf_yaml_is_bool(const std::string& s) {
  static const char* kBools[] = {"y",    "Y",    "yes",   "Yes",   "YES",   "n",  "N",  "no",
                                 "No",   "NO",   "true",  "True",  "TRUE",  "false", "False",
                                 "FALSE", "on",  "On",    "ON",    "off",   "Off",  "OFF"};
  for (const char* b : kBools)
    if (s == b) return true;
  return false;
}

// Python's repr(float) (shortest round trip; exponent form when the decimal exponent is < -4 or
// > 16), then PyYAML's represent_float (lower case, ".0" before a bare "e").
std::string pyyaml_float(double d) {
  if (std::isnan(d)) return ".nan";
  if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = false;
  if (!sci.empty() && sci[0] == '-') neg = true, sci.erase(0, 1);
  const size_t e = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (sci[i] != '.') digits.push_back(sci[i]);
  int exp10 = std::stoi(sci.substr(e + 1));
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int decpt = exp10 + 1;  // value = 0.DIGITS × 10^decpt
  std::string out = neg ? "-" : "";
  if (d == 0.0) return out + "0.0";
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  else out += ".0";  // PyYAML: '1e-08' → '1.0e-08'
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
  return out + ebuf;
}

// ---------------------------------------------------------------- PyYAML's scalar analysis

struct Analysis {
  bool empty = false, multiline = false;
  bool allow_flow_plain = true, allow_block_plain = true, allow_single_quoted = true,
       allow_double_quoted = true, allow_block = true;
};

Analysis analyze_scalar(const U32& s) {
  Analysis a;
  if (s.empty()) {
    a.empty = true;
    a.allow_flow_plain = false;
    a.allow_block = false;
    return a;
  }
  bool block_ind = false, flow_ind = false, line_breaks = false, special = false;
  bool leading_space = false, leading_break = false, trailing_space = false, trailing_break = false;
  bool break_space = false, space_break = false;
  auto starts = [&](const char* p) { return s.size() >= 3 && s[0] == char32_t(p[0]) && s[1] == char32_t(p[1]) && s[2] == char32_t(p[2]); };
  if (starts("---") || starts("...")) block_ind = flow_ind = true;
  bool preceded_ws = true;
  bool followed_ws = s.size() == 1 || is_space_or_break0(s[1]);
  bool prev_space = false, prev_break = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t ch = s[i];
    if (i == 0) {
      if (std::u32string_view(U"#,[]{}&*!|>'\"%@`").find(ch) != std::u32string_view::npos) flow_ind = block_ind = true;
      if (ch == U'?' || ch == U':') {
        flow_ind = true;
        if (followed_ws) block_ind = true;
      }
      if (ch == U'-' && followed_ws) flow_ind = block_ind = true;
    } else {
      if (std::u32string_view(U",?[]{}").find(ch) != std::u32string_view::npos) flow_ind = true;
      if (ch == U':') {
        flow_ind = true;
        if (followed_ws) block_ind = true;
      }
      if (ch == U'#' && preceded_ws) flow_ind = block_ind = true;
    }
    if (is_break(ch)) line_breaks = true;
    if (!(ch == U'\n' || (ch >= 0x20 && ch <= 0x7E))) {
      const bool unicode = (ch == 0x85 || (ch >= 0xA0 && ch <= 0xD7FF) || (ch >= 0xE000 && ch <= 0xFFFD) ||
                            (ch >= 0x10000 && ch < 0x10FFFF)) && ch != 0xFEFF;
      if (!unicode) special = true;  // allow_unicode=True: other unicode is fine
    }
    if (ch == U' ') {
      if (i == 0) leading_space = true;
      if (i == s.size() - 1) trailing_space = true;
      if (prev_break) break_space = true;
      prev_space = true;
      prev_break = false;
    } else if (is_break(ch)) {
      if (i == 0) leading_break = true;
      if (i == s.size() - 1) trailing_break = true;
      if (prev_space) space_break = true;
      prev_space = false;
      prev_break = true;
    } else {
      prev_space = prev_break = false;
    }
    preceded_ws = is_space_or_break0(ch);
    followed_ws = i + 2 >= s.size() || is_space_or_break0(s[i + 2]);
  }
  if (leading_space || leading_break || trailing_space || trailing_break) a.allow_flow_plain = a.allow_block_plain = false;
  if (trailing_space) a.allow_block = false;
  if (break_space) a.allow_flow_plain = a.allow_block_plain = a.allow_single_quoted = false;
  if (space_break || special) a.allow_flow_plain = a.allow_block_plain = a.allow_single_quoted = a.allow_block = false;
  if (line_breaks) a.allow_flow_plain = a.allow_block_plain = false;
  if (flow_ind) a.allow_flow_plain = false;
  if (block_ind) a.allow_block_plain = false;
  a.multiline = line_breaks;
  return a;
}

// ---------------------------------------------------------------- the emitter

struct Scalar {
  U32 text;
  char style = 0;         // representer's style: 0 (none) or '\''
  bool implicit0 = true;  // plain text resolves back to this scalar's tag
  size_t tag_len = 5;     // length of the prepared tag ("!!str", "!!int", "!!float", ...)
};

class Emitter {
 public:
  Emitter(const ValueArena& a, const Limits& limits)
      : a_(a), max_depth_(limits.max_config_depth), max_nodes_(limits.max_config_nodes),
        max_bytes_(limits.max_config_bytes) {}

  Result<std::string> run(ValueId root) {
    if (!node(root, true, false, false, false, 0)) return *err_;
    write_indent();  // document end
    if (open_ended_) {
      write_indicator(U"...", true);
      write_indent();
    }
    return std::move(out_);
  }

 private:
  bool fail(const std::string& msg, ValueId id) {
    Finding f = make_error("MG-SCHEMA-EXPORT-CFG", "cannot write xp.cfg as YAML: " + msg,
                           "the training checkpoint's config holds a value OmegaConf.to_yaml would not write");
    if (id != kNoValue && id < a_.size()) f.offset = a_[id].offset;
    err_ = std::move(f);
    return false;
  }

  bool represent(ValueId id, Scalar& sc) {
    const Value& v = a_[id];
    std::string text;
    switch (v.kind) {
      case ValueKind::none: text = "null", sc.tag_len = 6; break;
      case ValueKind::boolean: text = v.i ? "true" : "false", sc.tag_len = 6; break;
      case ValueKind::integer:
        if (v.poisoned) return fail("an integer outside int64", id);
        text = std::to_string(v.i), sc.tag_len = 5;
        break;
      case ValueKind::floating: text = pyyaml_float(v.f), sc.tag_len = 7; break;
      case ValueKind::string:
        if (!decode_utf8(v.s, sc.text)) return fail("a string that is not valid UTF-8", id);
        if (omegaconf_yaml_is_bool(v.s) || python_is_int(v.s) || python_is_float(v.s)) sc.style = '\'';
        sc.implicit0 = !matches_implicit_resolver(v.s);
        sc.tag_len = 5;
        return true;
      default: return fail(std::string("a value of type ") + value_kind_name(v.kind), id);
    }
    decode_utf8(text, sc.text);
    return true;
  }

  // ---- output primitives (emitter.py names)
  void write(const U32& s) {
    out_ += to_utf8(s);
    column_ += s.size();
  }
  void write_indicator(const U32& ind, bool need_ws, bool ws = false, bool indention = false) {
    U32 data = (whitespace_ || !need_ws) ? ind : U" " + ind;
    whitespace_ = ws;
    indention_ = indention_ && indention;
    open_ended_ = false;
    write(data);
  }
  void write_line_break() {
    out_ += '\n';
    whitespace_ = indention_ = true;
    column_ = 0;
  }
  void write_indent() {
    const size_t indent = indent_ < 0 ? 0 : static_cast<size_t>(indent_);
    if (!indention_ || column_ > indent || (column_ == indent && !whitespace_)) write_line_break();
    if (column_ < indent) {
      whitespace_ = true;
      write(U32(indent - column_, U' '));
    }
  }
  void increase_indent(bool flow, bool indentless) {
    indents_.push_back(indent_);
    if (indent_ < 0) indent_ = flow ? 2 : 0;
    else if (!indentless) indent_ += 2;
  }
  void pop_indent() {
    indent_ = indents_.back();
    indents_.pop_back();
  }

  // ---- nodes
  bool is_collection(ValueId id) const {
    const ValueKind k = a_[id].kind;
    return k == ValueKind::dict || k == ValueKind::list || k == ValueKind::tuple;
  }

  bool node(ValueId id, bool root, bool sequence, bool mapping, bool simple_key, uint32_t depth) {
    if (id == kNoValue || id >= a_.size()) return fail("a missing value", id);
    if (depth > max_depth_) return fail("nesting deeper than " + std::to_string(max_depth_), id);
    // Shared sub-trees (a DAG) are written once per reference, as PyYAML would without anchors; the
    // budget keeps a hostile config from expanding without bound.
    // The budget is the one `mgcheck quick` applies to the xp.cfg it will read back.
    if (++nodes_ > max_nodes_ || out_.size() > max_bytes_)
      return fail("more than the YAML output budget (max_config_nodes, max_config_bytes)", id);
    root_ctx_ = root;
    mapping_ctx_ = mapping;
    simple_key_ctx_ = simple_key;
    (void)sequence;
    const Value& v = a_[id];
    if (v.kind == ValueKind::dict) {
      if (v.items.empty()) return empty_flow(U"{", U"}");
      return block_mapping(id, depth);
    }
    if (v.kind == ValueKind::list || v.kind == ValueKind::tuple) {
      if (v.items.empty()) return empty_flow(U"[", U"]");
      return block_sequence(id, depth);
    }
    Scalar sc;
    if (!represent(id, sc)) return false;
    increase_indent(true, false);
    process_scalar(sc);
    pop_indent();
    return true;
  }

  bool empty_flow(const U32& open, const U32& close) {
    write_indicator(open, true, true);
    increase_indent(true, false);
    pop_indent();
    write_indicator(close, false);
    return true;
  }

  bool check_simple_key(ValueId key) {
    if (is_collection(key)) return false;  // only scalar keys reach here (see block_mapping)
    Scalar sc;
    if (!represent(key, sc)) return false;
    const Analysis an = analyze_scalar(sc.text);
    return sc.tag_len + sc.text.size() < 128 && !an.empty && !an.multiline;
  }

  bool block_mapping(ValueId id, uint32_t depth) {
    increase_indent(false, false);
    const std::vector<ValueId> items = a_[id].items;
    for (size_t i = 0; i + 1 < items.size(); i += 2) {
      const ValueKind kk = a_[items[i]].kind;
      if (kk != ValueKind::string && kk != ValueKind::integer && kk != ValueKind::boolean)
        return fail(std::string("a mapping key of type ") + value_kind_name(kk), items[i]);
      write_indent();
      if (check_simple_key(items[i])) {
        if (!node(items[i], false, false, true, true, depth + 1)) return false;
        write_indicator(U":", false);
      } else {
        if (err_) return false;
        write_indicator(U"?", true, false, true);
        if (!node(items[i], false, false, true, false, depth + 1)) return false;
        write_indent();
        write_indicator(U":", true, false, true);
      }
      if (!node(items[i + 1], false, false, true, false, depth + 1)) return false;
    }
    pop_indent();
    return true;
  }

  bool block_sequence(ValueId id, uint32_t depth) {
    const bool indentless = mapping_ctx_ && !indention_;
    increase_indent(false, indentless);
    const std::vector<ValueId> items = a_[id].items;
    for (ValueId item : items) {
      write_indent();
      write_indicator(U"-", true, false, true);
      if (!node(item, false, true, false, false, depth + 1)) return false;
    }
    pop_indent();
    return true;
  }

  // ---- scalars
  char choose_style(const Scalar& sc, const Analysis& an) const {
    if (sc.style == 0 && sc.implicit0) {
      if (!(simple_key_ctx_ && (an.empty || an.multiline)) && an.allow_block_plain) return 0;  // flow_level is 0
    }
    if (an.allow_single_quoted && !(simple_key_ctx_ && an.multiline)) return '\'';
    return '"';
  }

  void process_scalar(const Scalar& sc) {
    const Analysis an = analyze_scalar(sc.text);
    const char style = choose_style(sc, an);
    const bool split = !simple_key_ctx_;
    if (style == '"') write_double_quoted(sc.text, split);
    else if (style == '\'') write_single_quoted(sc.text, split);
    else write_plain(sc.text, split);
  }

  void write_plain(const U32& text, bool split) {
    if (root_ctx_) open_ended_ = true;
    if (text.empty()) return;
    if (!whitespace_) write(U" ");
    whitespace_ = false;
    indention_ = false;
    bool spaces = false, breaks = false;
    size_t start = 0, end = 0;
    while (end <= text.size()) {
      const char32_t ch = end < text.size() ? text[end] : 0;
      const bool none = end >= text.size();
      if (spaces) {
        if (none || ch != U' ') {
          if (start + 1 == end && column_ > kWidth && split) {
            write_indent();
            whitespace_ = false;
            indention_ = false;
          } else {
            write(text.substr(start, end - start));
          }
          start = end;
        }
      } else if (breaks) {
        if (none || !is_break(ch)) {
          if (text[start] == U'\n') write_line_break();
          for (size_t k = start; k < end; ++k) line_break_char(text[k]);
          write_indent();
          whitespace_ = false;
          indention_ = false;
          start = end;
        }
      } else {
        if (none || ch == U' ' || is_break(ch)) {
          write(text.substr(start, end - start));
          start = end;
        }
      }
      if (!none) {
        spaces = ch == U' ';
        breaks = is_break(ch);
      }
      ++end;
    }
  }

  void line_break_char(char32_t br) {
    if (br == U'\n') {
      write_line_break();
    } else {
      append_utf8(out_, br);
      whitespace_ = indention_ = true;
      column_ = 0;
    }
  }

  void write_single_quoted(const U32& text, bool split) {
    write_indicator(U"'", true);
    bool spaces = false, breaks = false;
    size_t start = 0, end = 0;
    while (end <= text.size()) {
      const bool none = end >= text.size();
      const char32_t ch = none ? 0 : text[end];
      if (spaces) {
        if (none || ch != U' ') {
          if (start + 1 == end && column_ > kWidth && split && start != 0 && end != text.size()) write_indent();
          else write(text.substr(start, end - start));
          start = end;
        }
      } else if (breaks) {
        if (none || !is_break(ch)) {
          if (text[start] == U'\n') write_line_break();
          for (size_t k = start; k < end; ++k) line_break_char(text[k]);
          write_indent();
          start = end;
        }
      } else {
        if (none || ch == U' ' || is_break(ch) || ch == U'\'') {
          if (start < end) {
            write(text.substr(start, end - start));
            start = end;
          }
        }
      }
      if (!none && ch == U'\'') {
        write(U"''");
        start = end + 1;
      }
      if (!none) {
        spaces = ch == U' ';
        breaks = is_break(ch);
      }
      ++end;
    }
    write_indicator(U"'", false);
  }

  void write_double_quoted(const U32& text, bool split) {
    write_indicator(U"\"", true);
    size_t start = 0, end = 0;
    while (end <= text.size()) {
      const bool none = end >= text.size();
      const char32_t ch = none ? 0 : text[end];
      const bool printable = (ch >= 0x20 && ch <= 0x7E) || (ch >= 0xA0 && ch <= 0xD7FF) || (ch >= 0xE000 && ch <= 0xFFFD);
      if (none || ch == U'"' || ch == U'\\' || ch == 0x85 || ch == 0x2028 || ch == 0x2029 || ch == 0xFEFF || !printable) {
        if (start < end) {
          write(text.substr(start, end - start));
          start = end;
        }
        if (!none) {
          write(escape(ch));
          start = end + 1;
        }
      }
      if (end > 0 && end + 1 < text.size() && (ch == U' ' || start >= end) &&
          static_cast<int64_t>(column_) + (static_cast<int64_t>(end) - static_cast<int64_t>(start)) >
              static_cast<int64_t>(kWidth) &&
          split) {
        U32 data = (start < end ? text.substr(start, end - start) : U32()) + U"\\";
        if (start < end) start = end;
        write(data);
        write_indent();
        whitespace_ = false;
        indention_ = false;
        if (text[start] == U' ') write(U"\\");
      }
      ++end;
    }
    write_indicator(U"\"", false);
  }

  static U32 escape(char32_t ch) {
    switch (ch) {
      case 0: return U"\\0";
      case 0x07: return U"\\a";
      case 0x08: return U"\\b";
      case 0x09: return U"\\t";
      case 0x0A: return U"\\n";
      case 0x0B: return U"\\v";
      case 0x0C: return U"\\f";
      case 0x0D: return U"\\r";
      case 0x1B: return U"\\e";
      case U'"': return U"\\\"";
      case U'\\': return U"\\\\";
      case 0x85: return U"\\N";
      case 0xA0: return U"\\_";
      case 0x2028: return U"\\L";
      case 0x2029: return U"\\P";
      default: break;
    }
    char buf[16];
    if (ch <= 0xFF) std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(ch));
    else if (ch <= 0xFFFF) std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(ch));
    else std::snprintf(buf, sizeof buf, "\\U%08X", static_cast<unsigned>(ch));
    U32 r;
    for (const char* p = buf; *p; ++p) r.push_back(static_cast<char32_t>(*p));
    return r;
  }

  static constexpr size_t kWidth = 80;  // PyYAML best_width
  uint64_t nodes_ = 0;
  const ValueArena& a_;
  uint64_t max_depth_;
  uint64_t max_nodes_;
  uint64_t max_bytes_;
  std::optional<Finding> err_;
  std::string out_;
  size_t column_ = 0;
  bool whitespace_ = true, indention_ = true, open_ended_ = false;
  int64_t indent_ = -1;  // None
  std::vector<int64_t> indents_;
  bool root_ctx_ = false, mapping_ctx_ = false, simple_key_ctx_ = false;
};

}  // namespace

Result<std::string> omegaconf_to_yaml(const ValueArena& arena, ValueId root, const Limits& limits) {
  Emitter e(arena, limits);
  return e.run(root);
}

}  // namespace mgcheck::format
