// xp.cfg: YAML text → inert tree (yaml-cpp, every exception caught), then OmegaConf-style lazy
// interpolation (musicgen-model.md §2.1). Scalars are typed like OmegaConf's YAML loader does
// (PyYAML SafeLoader, YAML 1.1 booleans, OmegaConf's float pattern).
#include "mgcheck/format/xpcfg.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <limits>
#include <unordered_set>

namespace mgcheck::format {

namespace {

constexpr const char* kYamlHint = "the xp.cfg must be the YAML text written by OmegaConf.to_yaml; re-export the model";

std::string loc(int line, int column) {
  if (line < 0) return "";
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

bool is_null_text(std::string_view t) { return t.empty() || t == "~" || t == "null" || t == "Null" || t == "NULL"; }

std::optional<bool> yaml11_bool(std::string_view t) {
  static const char* const yes[] = {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"};
  static const char* const no[] = {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"};
  for (auto* s : yes)
    if (t == s) return true;
  for (auto* s : no)
    if (t == s) return false;
  return std::nullopt;
}

bool all_of(std::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}
bool is_dec(char c) { return (c >= '0' && c <= '9') || c == '_'; }
bool is_hex(char c) { return is_dec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_oct(char c) { return (c >= '0' && c <= '7') || c == '_'; }
bool is_bin(char c) { return c == '0' || c == '1' || c == '_'; }

std::string strip_underscores(std::string_view s) {
  std::string r;
  for (char c : s)
    if (c != '_') r.push_back(c);
  return r;
}

enum class IntParse { not_int, ok, overflow };

// YAML 1.1 int (PyYAML): decimal, 0x hex, 0b binary, 0-prefixed octal; underscores allowed.
IntParse yaml11_int(std::string_view t, int64_t& out) {
  if (t.empty()) return IntParse::not_int;
  bool neg = false;
  std::string_view body = t;
  if (body[0] == '+' || body[0] == '-') {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body.empty()) return IntParse::not_int;
  int base = 10;
  std::string_view digits = body;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    if (!all_of(body.substr(2), is_hex)) return IntParse::not_int;
    base = 16;
    digits = body.substr(2);
  } else if (body.size() > 2 && body[0] == '0' && body[1] == 'b') {
    if (!all_of(body.substr(2), is_bin)) return IntParse::not_int;
    base = 2;
    digits = body.substr(2);
  } else if (body.size() > 1 && body[0] == '0') {
    if (!all_of(body.substr(1), is_oct)) return IntParse::not_int;
    base = 8;
    digits = body.substr(1);
  } else {
    if (body[0] == '_' || !all_of(body, is_dec)) return IntParse::not_int;
  }
  std::string clean = strip_underscores(digits);
  if (clean.empty()) return IntParse::not_int;
  uint64_t mag = 0;
  auto [p, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), mag, base);
  if (ec == std::errc::result_out_of_range) return IntParse::overflow;
  if (ec != std::errc() || p != clean.data() + clean.size()) return IntParse::not_int;
  if (neg) {
    if (mag > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return IntParse::overflow;
    out = mag == static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1
              ? std::numeric_limits<int64_t>::min()
              : -static_cast<int64_t>(mag);
  } else {
    if (mag > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return IntParse::overflow;
    out = static_cast<int64_t>(mag);
  }
  return IntParse::ok;
}

// OmegaConf's float resolver: needs a '.' or an exponent; also .inf/.nan.
std::optional<double> omegaconf_float(std::string_view t) {
  if (t.empty()) return std::nullopt;
  std::string_view body = t;
  bool neg = false;
  if (body[0] == '+' || body[0] == '-') {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF")
    return neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  if (t == ".nan" || t == ".NaN" || t == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  // mantissa [digits][.digits] with at least one digit, then optional exponent
  size_t i = 0;
  size_t int_digits = 0, frac_digits = 0;
  bool dot = false, expo = false;
  while (i < body.size() && is_dec(body[i])) {
    if (body[i] == '_' && i == 0) return std::nullopt;
    ++i;
    ++int_digits;
  }
  if (i < body.size() && body[i] == '.') {
    dot = true;
    ++i;
    while (i < body.size() && is_dec(body[i])) {
      ++i;
      ++frac_digits;
    }
  }
  if (int_digits == 0 && frac_digits == 0) return std::nullopt;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    expo = true;
    ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    size_t e0 = i;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i;
    if (i == e0) return std::nullopt;
  }
  if (i != body.size() || (!dot && !expo)) return std::nullopt;
  if (dot && int_digits == 0 && neg) return std::nullopt;  // "-.5" is not in OmegaConf's pattern
  std::string clean = strip_underscores(body);
  if (!clean.empty() && clean[0] == '.') clean.insert(clean.begin(), '0');
  double v = 0;
  auto [p, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), v);
  if (ec == std::errc::result_out_of_range) {
    v = std::numeric_limits<double>::infinity();  // Python float('1e999') = inf
  } else if (ec != std::errc() || p != clean.data() + clean.size()) {
    return std::nullopt;
  }
  return neg ? -v : v;
}

// str() of a Python float, as OmegaConf string interpolation renders it.
std::string python_float_str(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  double a = std::fabs(d);
  if (a == 0.0 || (a >= 1e-4 && a < 1e16)) {
    auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
    std::string s(buf, r.ptr);
    if (s.find('.') == std::string::npos) s += ".0";
    return s;
  }
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  return std::string(buf, r.ptr);
}

}  // namespace

const char* CfgValue::kind_name() const {
  switch (kind) {
    case Kind::absent: return "absent";
    case Kind::error: return "error";
    case Kind::null: return "null";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "string";
    case Kind::map: return "mapping";
    case Kind::list: return "list";
  }
  return "?";
}

std::vector<std::string> split_cfg_path(std::string_view path) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '.') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c == '[') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c == ']') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// ---------------------------------------------------------------------------------------------
// YAML::Node → XpCfg::Node, counting nodes (aliases are expanded, so a billion-laughs document is
// stopped by max_nodes instead of exploding) and bounding depth (alias self-references included).

class XpCfgBuilder {
 public:
  XpCfgBuilder(XpCfg& cfg, const std::string& file) : cfg_(cfg), file_(file) {}

  std::optional<Finding> build(const YAML::Node& root) {
    cfg_.nodes_.clear();
    if (!root.IsDefined() || root.IsNull()) {  // empty document: OmegaConf.create("") is {}
      cfg_.nodes_.push_back(XpCfg::Node{XpCfg::Node::Kind::map, "", false, -1, 1, 1, {}, {}});
      return std::nullopt;
    }
    if (!root.IsMap()) {
      return fail("MG-CONFIG-YAML", "xp.cfg: the top level is not a mapping (" + loc_of(root) + ")", kYamlHint);
    }
    convert(root, -1, 0);
    return error_;
  }

 private:
  XpCfg& cfg_;
  const std::string& file_;
  std::optional<Finding> error_;

  static std::string loc_of(const YAML::Node& n) {
    auto m = n.Mark();
    if (m.is_null()) return "position unknown";
    return loc(m.line + 1, m.column + 1);
  }

  Finding fail(const char* code, std::string message, std::string hint) {
    Finding f = make_error(code, std::move(message), std::move(hint));
    if (std::string_view(code) == "MG-CONFIG-TOO-LARGE") f.impact = Impact::unsafe;
    f.file = file_;
    f.name = "xp.cfg";
    return f;
  }

  int32_t convert(const YAML::Node& y, int32_t parent, uint64_t depth) {
    if (error_) return -1;
    if (cfg_.nodes_.size() >= cfg_.limits_.max_config_nodes) {
      error_ = fail("MG-CONFIG-TOO-LARGE",
                    "xp.cfg expands to more than " + std::to_string(cfg_.limits_.max_config_nodes) +
                        " nodes (max_config_nodes; YAML aliases multiply nodes: a configuration bomb)",
                    "a real AudioCraft xp.cfg has a few thousand nodes and no aliases; do not load this file");
      return -1;
    }
    if (depth > cfg_.limits_.max_config_depth) {
      error_ = fail("MG-CONFIG-TOO-LARGE",
                    "xp.cfg nests deeper than " + std::to_string(cfg_.limits_.max_config_depth) + " levels (max_config_depth; " +
                        loc_of(y) + ")",
                    "a real AudioCraft xp.cfg nests a handful of levels; do not load this file");
      return -1;
    }
    const auto id = static_cast<int32_t>(cfg_.nodes_.size());
    cfg_.nodes_.emplace_back();
    {
      auto& n = cfg_.nodes_.back();
      n.parent = parent;
      auto m = y.Mark();
      if (!m.is_null()) {
        n.line = m.line + 1;
        n.column = m.column + 1;
      }
    }
    switch (y.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        cfg_.nodes_[id].kind = XpCfg::Node::Kind::null;
        break;
      case YAML::NodeType::Scalar: {
        const std::string& tag = y.Tag();
        auto& n = cfg_.nodes_[id];
        n.kind = XpCfg::Node::Kind::scalar;
        n.text = y.Scalar();
        if (tag == "!" || tag == "tag:yaml.org,2002:str") {
          n.quoted = true;
        } else if (tag != "?" && !tag.empty()) {
          error_ = fail("MG-CONFIG-YAML", "xp.cfg uses the YAML tag '" + tag + "' (" + loc_of(y) + ")",
                        "OmegaConf's safe YAML loader refuses tagged values; re-export the model");
          return -1;
        }
        break;
      }
      case YAML::NodeType::Sequence: {
        cfg_.nodes_[id].kind = XpCfg::Node::Kind::list;
        for (const auto& item : y) {
          int32_t c = convert(item, id, depth + 1);
          if (c < 0) return -1;
          cfg_.nodes_[id].children.emplace_back("", c);
        }
        break;
      }
      case YAML::NodeType::Map: {
        cfg_.nodes_[id].kind = XpCfg::Node::Kind::map;
        std::unordered_set<std::string> seen;  // a linear scan per key made a 20,000-key map cost seconds
        for (const auto& kv : y) {
          if (!kv.first.IsScalar()) {
            error_ = fail("MG-CONFIG-YAML", "xp.cfg has a non-scalar mapping key (" + loc_of(kv.first) + ")",
                          kYamlHint);
            return -1;
          }
          std::string key = kv.first.Scalar();
          if (!seen.insert(key).second) {
            error_ = fail("MG-CONFIG-YAML",
                          "xp.cfg repeats the key '" + key + "' in one mapping (" + loc_of(kv.first) + ")",
                          "OmegaConf refuses duplicate keys; fix or re-export the config");
            return -1;
          }
          int32_t c = convert(kv.second, id, depth + 1);
          if (c < 0) return -1;
          cfg_.nodes_[id].children.emplace_back(std::move(key), c);
        }
        XpCfg::index_keys(cfg_.nodes_[id]);
        break;
      }
    }
    return id;
  }
};

Result<XpCfg> XpCfg::parse(std::string_view text, std::string file, const Limits& limits) {
  XpCfg cfg;
  cfg.file_ = std::move(file);
  cfg.limits_ = limits;
  auto err = [&](std::string message) {
    Finding f = make_error("MG-CONFIG-YAML", std::move(message), kYamlHint);
    f.file = cfg.file_;
    f.name = "xp.cfg";
    return f;
  };
  if (text.size() > limits.max_config_bytes) {
    Finding f = make_unsafe("MG-CONFIG-TOO-LARGE",
                            "xp.cfg is " + std::to_string(text.size()) + " bytes (max_config_bytes " +
                                std::to_string(limits.max_config_bytes) + ")",
                            "a real AudioCraft xp.cfg is about 10 KB; do not load this file");
    f.file = cfg.file_;
    f.name = "xp.cfg";
    return f;
  }
  if (text.find('\0') != std::string_view::npos) return err("xp.cfg contains a NUL character");
  try {
    YAML::Node root = YAML::Load(std::string(text));
    XpCfgBuilder builder(cfg, cfg.file_);
    if (auto f = builder.build(root)) return *f;
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? std::string("position unknown") : loc(e.mark.line + 1, e.mark.column + 1);
    return err("xp.cfg is not valid YAML: " + e.msg + " (" + where + ")");
  } catch (const std::exception& e) {
    return err(std::string("xp.cfg could not be parsed: ") + e.what());
  }
  return cfg;
}

void XpCfg::index_keys(Node& map) {
  map.by_key.resize(map.children.size());
  for (size_t i = 0; i < map.children.size(); ++i) map.by_key[i] = static_cast<uint32_t>(i);
  std::sort(map.by_key.begin(), map.by_key.end(),
            [&](uint32_t a, uint32_t b) { return map.children[a].first < map.children[b].first; });
}

int32_t XpCfg::child(int32_t node, std::string_view key) const {
  if (node < 0 || static_cast<size_t>(node) >= nodes_.size()) return -1;
  const Node& n = nodes_[static_cast<size_t>(node)];
  if (n.kind == Node::Kind::map) {
    // Binary search over by_key: interpolation steps and reads look keys up, and a map may hold
    // max_nodes children.
    auto it = std::lower_bound(n.by_key.begin(), n.by_key.end(), key,
                               [&](uint32_t i, std::string_view k) { return n.children[i].first < k; });
    if (it == n.by_key.end() || n.children[*it].first != key) return -1;
    return n.children[*it].second;
  }
  if (n.kind == Node::Kind::list) {
    if (key.empty() || key.size() > 9 || (key.size() > 1 && key[0] == '0')) return -1;
    size_t idx = 0;
    for (char c : key) {
      if (c < '0' || c > '9') return -1;
      idx = idx * 10 + static_cast<size_t>(c - '0');
    }
    if (idx >= n.children.size()) return -1;
    return n.children[static_cast<size_t>(idx)].second;
  }
  return -1;
}

std::string XpCfg::where(int32_t node) const {
  if (node < 0 || static_cast<size_t>(node) >= nodes_.size()) return "";
  const Node& n = nodes_[static_cast<size_t>(node)];
  return loc(n.line, n.column);
}

// ---------------------------------------------------------------------------------------------
// Interpolation. One resolver per top-level read: it knows the field being read (for messages),
// the chain of nodes in progress (cycle detection) and a work budget.

class XpCfgResolver {
 public:
  XpCfgResolver(const XpCfg& cfg, std::string field, Findings& findings)
      : cfg_(cfg), field_(std::move(field)), findings_(findings) {}

  // Walks `path` from the root, following interpolated intermediate nodes. -1 when absent.
  int32_t walk(const std::vector<std::string>& comps, bool& error) {
    int32_t cur = 0;
    for (const auto& c : comps) {
      int32_t container = as_container(cur, error);
      if (error) return -1;
      if (container < 0) return -1;
      cur = cfg_.child(container, c);
      if (cur < 0) return -1;
    }
    return cur;
  }

  CfgValue resolve(int32_t node) {
    CfgValue v;
    v.node = node;
    if (failed_) return error_value(node);
    const auto& n = cfg_.nodes_[static_cast<size_t>(node)];
    if (!charge(node, 1, n.text.size())) return error_value(node);  // scanning (or copying) the scalar
    switch (n.kind) {
      case XpCfg::Node::Kind::null: v.kind = CfgValue::Kind::null; return v;
      case XpCfg::Node::Kind::map: v.kind = CfgValue::Kind::map; return v;
      case XpCfg::Node::Kind::list: v.kind = CfgValue::Kind::list; return v;
      case XpCfg::Node::Kind::scalar: break;
    }
    const std::string& t = n.text;
    if (!n.quoted) {
      if (is_null_text(t)) {
        v.kind = CfgValue::Kind::null;
        return v;
      }
      if (auto b = yaml11_bool(t)) {
        v.kind = CfgValue::Kind::boolean;
        v.b = *b;
        return v;
      }
      int64_t iv = 0;
      switch (yaml11_int(t, iv)) {
        case IntParse::ok:
          v.kind = CfgValue::Kind::integer;
          v.i = iv;
          return v;
        case IntParse::overflow:
          return fail(node, "MG-CONFIG-TYPE", "'" + field_ + "': the integer " + t + " does not fit in 64 bits",
                      "use a value AudioCraft's builders accept");
        case IntParse::not_int: break;
      }
      if (auto d = omegaconf_float(t)) {
        v.kind = CfgValue::Kind::floating;
        v.d = *d;
        return v;
      }
    }
    if (t == std::string(3, '?')) {  // OmegaConf MISSING
      return fail(node, "MG-CONFIG-MISSING-VALUE",
                  "'" + field_ + "' is " + std::string(3, '?') + " (mandatory value missing)" + at(node),
                  "set this field in xp.cfg; AudioCraft fails with MissingMandatoryValue when it reads it");
    }
    if (t.find("${") == std::string::npos) {
      v.kind = CfgValue::Kind::string;
      v.s = t;
      return v;
    }
    if (std::find(stack_.begin(), stack_.end(), node) != stack_.end()) {
      std::string chain;
      for (int32_t s : stack_) chain += path_of(s) + " -> ";
      chain += path_of(node);
      return fail(node, "MG-CONFIG-CYCLE", "'" + field_ + "': interpolation cycle " + chain,
                  "break the cycle of ${...} references in xp.cfg");
    }
    if (stack_.size() >= cfg_.limits_.max_config_interpolation_hops) {
      return fail(node, "MG-CONFIG-INTERPOLATION",
                  "'" + field_ + "': interpolations nest deeper than " +
                      std::to_string(cfg_.limits_.max_config_interpolation_hops) + " hops (max_config_interpolation_hops)",
                  "simplify the interpolations in xp.cfg");
    }
    stack_.push_back(node);
    CfgValue r = interpolate(node, t);
    stack_.pop_back();
    r.node = r.node < 0 ? node : r.node;
    return r;
  }

  bool failed() const { return failed_; }

 private:
  const XpCfg& cfg_;
  std::string field_;
  Findings& findings_;
  std::vector<int32_t> stack_;
  bool failed_ = false;

  // Charges the document's work budget (all reads together). Once it is spent, this and every later
  // read fail; the finding is pushed once per Findings.
  bool charge(int32_t node, uint64_t steps, uint64_t bytes) {
    const auto& lim = cfg_.limits_;
    auto within = [&] {
      return cfg_.spent_steps_ <= lim.max_config_interpolation_steps &&
             cfg_.spent_bytes_ <= lim.max_config_interpolation_bytes;
    };
    if (within()) {  // once over, the counters stay put (no overflow, whatever is read later)
      cfg_.spent_steps_ += steps;
      cfg_.spent_bytes_ += bytes;
    }
    if (within()) return true;
    if (!failed_ && !findings_.has_code("MG-CONFIG-TOO-LARGE")) {
      Finding f = make_unsafe("MG-CONFIG-TOO-LARGE",
                              "reading '" + field_ + "' exceeds the interpolation budget of xp.cfg (" +
                                  std::to_string(lim.max_config_interpolation_steps) +
                                  " resolution steps / " + std::to_string(lim.max_config_interpolation_bytes) +
                                  " bytes over all fields read: max_config_interpolation_steps / _bytes): "
                                  "an interpolation bomb" + at(node),
                              "a real AudioCraft xp.cfg needs under a hundred steps; do not load this file");
      f.file = cfg_.file_;
      f.name = field_;
      findings_.push(std::move(f));
    }
    failed_ = true;
    return false;
  }

  static CfgValue error_value(int32_t node) {
    CfgValue v;
    v.kind = CfgValue::Kind::error;
    v.node = node;
    return v;
  }

  std::string at(int32_t node) const {
    std::string w = cfg_.where(node);
    return w.empty() ? "" : " (xp.cfg " + w + ")";
  }

  CfgValue fail(int32_t node, const char* code, std::string message, std::string hint) {
    if (!failed_) {
      Finding f = make_error(code, std::move(message), std::move(hint));
      f.file = cfg_.file_;
      f.name = field_;
      findings_.push(std::move(f));
    }
    failed_ = true;
    return error_value(node);
  }

  std::string path_of(int32_t node) const {
    std::vector<std::string> parts;
    int32_t cur = node;
    while (cur > 0) {
      const auto& n = cfg_.nodes_[static_cast<size_t>(cur)];
      const auto& p = cfg_.nodes_[static_cast<size_t>(n.parent)];
      for (size_t i = 0; i < p.children.size(); ++i) {
        if (p.children[i].second == cur) {
          parts.push_back(p.kind == XpCfg::Node::Kind::list ? std::to_string(i) : p.children[i].first);
          break;
        }
      }
      cur = n.parent;
    }
    std::string s;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (!s.empty()) s += '.';
      s += *it;
    }
    return s.empty() ? "<root>" : s;
  }

  // A node used as a path step must be (or resolve to) a mapping or list.
  int32_t as_container(int32_t node, bool& error) {
    const auto& n = cfg_.nodes_[static_cast<size_t>(node)];
    if (n.kind == XpCfg::Node::Kind::map || n.kind == XpCfg::Node::Kind::list) return node;
    if (n.kind == XpCfg::Node::Kind::scalar && n.text.find("${") != std::string::npos) {
      CfgValue v = resolve(node);
      if (v.kind == CfgValue::Kind::error) {
        error = true;
        return -1;
      }
      if (v.kind == CfgValue::Kind::map || v.kind == CfgValue::Kind::list) return v.node;
    }
    return -1;
  }

  struct Piece {
    bool expr = false;
    std::string text;
  };

  // Splits "a${x}b${y.z}" into literal and expression pieces; handles nested braces and "\${".
  bool split_pieces(const std::string& t, std::vector<Piece>& out) {
    std::string lit;
    for (size_t i = 0; i < t.size();) {
      if (t[i] == '\\' && i + 2 < t.size() + 1 && t.compare(i + 1, 2, "${") == 0) {
        lit += "${";
        i += 3;
        continue;
      }
      if (t.compare(i, 2, "${") == 0) {
        size_t depth = 1, j = i + 2;
        while (j < t.size() && depth > 0) {
          if (t.compare(j, 2, "${") == 0) {
            ++depth;
            j += 2;
            continue;
          }
          if (t[j] == '}') --depth;
          ++j;
        }
        if (depth != 0) return false;
        if (!lit.empty()) out.push_back({false, lit});
        lit.clear();
        out.push_back({true, t.substr(i + 2, j - i - 3)});
        i = j;
        continue;
      }
      lit.push_back(t[i]);
      ++i;
    }
    if (!lit.empty()) out.push_back({false, lit});
    return true;
  }

  CfgValue interpolate(int32_t node, const std::string& t) {
    std::vector<Piece> pieces;
    if (!split_pieces(t, pieces)) {
      return fail(node, "MG-CONFIG-INTERPOLATION",
                  "'" + field_ + "': malformed interpolation '" + t + "'" + at(node),
                  "fix the ${...} syntax in xp.cfg");
    }
    if (pieces.size() == 1 && pieces[0].expr) return expression(node, pieces[0].text);
    std::string out;
    for (const auto& p : pieces) {
      const size_t before = out.size();
      if (!p.expr) {
        out += p.text;
      } else {
        CfgValue v = expression(node, p.text);
        if (v.kind == CfgValue::Kind::error) return v;
        switch (v.kind) {
          case CfgValue::Kind::null: out += "None"; break;
          case CfgValue::Kind::boolean: out += v.b ? "True" : "False"; break;
          case CfgValue::Kind::integer: out += std::to_string(v.i); break;
          case CfgValue::Kind::floating: out += python_float_str(v.d); break;
          case CfgValue::Kind::string: out += v.s; break;
          default:
            return fail(node, "MG-CONFIG-INTERPOLATION",
                        "'" + field_ + "': ${" + p.text + "} is a " + v.kind_name() +
                            " and cannot be embedded in a string" + at(node),
                        "interpolate a scalar inside strings");
        }
      }
      if (!charge(node, 0, out.size() - before)) return error_value(node);
      if (out.size() > cfg_.limits_.max_config_string_bytes) {
        return fail(node, "MG-CONFIG-INTERPOLATION",
                    "'" + field_ + "': string interpolation grows beyond " +
                        std::to_string(cfg_.limits_.max_config_string_bytes) + " bytes (max_config_string_bytes)",
                    "a real xp.cfg never builds long strings; do not trust this file");
      }
    }
    CfgValue v;
    v.kind = CfgValue::Kind::string;
    v.s = std::move(out);
    v.node = node;
    return v;
  }

  static std::string trim(std::string s) {
    size_t a = s.find_first_not_of(" \t");
    size_t b = s.find_last_not_of(" \t");
    if (a == std::string::npos) return "";
    return s.substr(a, b - a + 1);
  }

  // One ${...} body: oc.env resolver, or a dotted (absolute or relative) path.
  CfgValue expression(int32_t node, const std::string& raw) {
    std::string e = trim(raw);
    size_t colon = e.find(':');
    size_t brace = e.find("${");
    if (colon != std::string::npos && (brace == std::string::npos || colon < brace)) {
      std::string name = trim(e.substr(0, colon));
      std::string args = e.substr(colon + 1);
      if (name == "oc.env" || name == "env") return env(node, args);
      return fail(node, "MG-CONFIG-INTERPOLATION",
                  "'" + field_ + "': resolver '" + name + "' in ${" + e + "} is not supported" + at(node),
                  "only ${path} and ${oc.env:VAR[,default]} interpolations can be checked offline");
    }
    if (e.empty() || brace != std::string::npos) {
      return fail(node, "MG-CONFIG-INTERPOLATION", "'" + field_ + "': cannot resolve ${" + e + "}" + at(node),
                  "use absolute ${a.b.c} references in xp.cfg");
    }
    // Relative paths: each leading dot after the first climbs one level from the node's parent.
    int32_t base = 0;
    std::string rest = e;
    if (rest[0] == '.') {
      base = cfg_.nodes_[static_cast<size_t>(node)].parent;
      size_t dots = 0;
      while (dots < rest.size() && rest[dots] == '.') ++dots;
      for (size_t k = 1; k < dots && base > 0; ++k) base = cfg_.nodes_[static_cast<size_t>(base)].parent;
      rest = rest.substr(dots);
      if (base < 0) base = 0;
    }
    int32_t cur = base;
    bool error = false;
    for (const auto& c : split_cfg_path(rest)) {
      int32_t container = as_container(cur, error);
      if (error) return error_value(node);
      cur = container < 0 ? -1 : cfg_.child(container, c);
      if (cur < 0) {
        return fail(node, "MG-CONFIG-INTERPOLATION",
                    "'" + field_ + "': ${" + e + "} refers to a key that does not exist" + at(node),
                    "add the referenced key to xp.cfg or replace the interpolation with a value");
      }
    }
    return resolve(cur);
  }

  CfgValue env(int32_t node, const std::string& args) {
    // Split at the first top-level comma: VAR[,default]
    size_t depth = 0, comma = std::string::npos;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args.compare(i, 2, "${") == 0) ++depth;
      else if (args[i] == '}' && depth > 0) --depth;
      else if (args[i] == ',' && depth == 0) {
        comma = i;
        break;
      }
    }
    std::string var = trim(args.substr(0, comma));
    CfgValue v;
    v.node = node;
    if (const char* value = std::getenv(var.c_str())) {
      v.kind = CfgValue::Kind::string;
      v.s = value;
      return v;
    }
    if (comma == std::string::npos) {
      return fail(node, "MG-CONFIG-INTERPOLATION",
                  "'" + field_ + "': environment variable " + var + " is not set (${oc.env:" + var + "})" + at(node),
                  "set " + var + " or give the interpolation a default: ${oc.env:" + var + ",default}");
    }
    std::string def = trim(args.substr(comma + 1));
    if (def == "null") {
      v.kind = CfgValue::Kind::null;
      return v;
    }
    if (def.size() >= 2 && (def.front() == '\'' || def.front() == '"') && def.back() == def.front())
      def = def.substr(1, def.size() - 2);
    if (def.find("${") != std::string::npos) {
      std::vector<Piece> pieces;
      std::string out;
      if (!split_pieces(def, pieces))
        return fail(node, "MG-CONFIG-INTERPOLATION", "'" + field_ + "': malformed default in oc.env",
                    "fix the ${...} syntax in xp.cfg");
      for (const auto& p : pieces) {
        if (!p.expr) {
          out += p.text;
          continue;
        }
        CfgValue x = expression(node, p.text);
        if (x.kind == CfgValue::Kind::error) return x;
        if (x.kind == CfgValue::Kind::string) out += x.s;
        else if (x.kind == CfgValue::Kind::integer) out += std::to_string(x.i);
        else if (x.kind == CfgValue::Kind::floating) out += python_float_str(x.d);
        else if (x.kind == CfgValue::Kind::boolean) out += x.b ? "True" : "False";
        else return fail(node, "MG-CONFIG-INTERPOLATION", "'" + field_ + "': oc.env default is not a scalar",
                         "use a scalar default");
      }
      def = out;
    }
    if (!charge(node, 0, def.size())) return error_value(node);
    v.kind = CfgValue::Kind::string;  // oc.env always yields a string
    v.s = def;
    return v;
  }
};

bool XpCfg::has(std::string_view path) const {
  Findings scratch;
  XpCfgResolver r(*this, std::string(path), scratch);
  bool error = false;
  return r.walk(split_cfg_path(path), error) >= 0 && !error;
}

CfgValue XpCfg::get(std::string_view path, Findings& findings) const {
  XpCfgResolver r(*this, std::string(path), findings);
  bool error = false;
  int32_t node = r.walk(split_cfg_path(path), error);
  CfgValue v;
  if (error) {
    v.kind = CfgValue::Kind::error;
    return v;
  }
  if (node < 0) return v;  // absent
  return r.resolve(node);
}

namespace {
// A value quoted in a message: an interpolated string may be up to max_config_string_bytes long.
std::string shortened(const std::string& s) {
  constexpr size_t kMax = 80;
  if (s.size() <= kMax) return s;
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
  return s.substr(0, cut) + "... (" + std::to_string(s.size()) + " bytes)";
}

void type_error(const XpCfg& cfg, std::string_view path, const CfgValue& v, const char* want, Findings& findings) {
  Finding f = make_error("MG-CONFIG-TYPE",
                         "'" + std::string(path) + "' is a " + v.kind_name() + (v.kind == CfgValue::Kind::string ? " ('" + shortened(v.s) + "')" : std::string()) +
                             ", expected " + want + (cfg.where(v.node).empty() ? "" : " (xp.cfg " + cfg.where(v.node) + ")"),
                         "AudioCraft's builders would fail or misbehave on this value; fix xp.cfg");
  f.file = cfg.file();
  f.name = std::string(path);
  findings.push(std::move(f));
}
}  // namespace

std::optional<int64_t> XpCfg::get_int(std::string_view path, Findings& findings) const {
  CfgValue v = get(path, findings);
  if (v.kind == CfgValue::Kind::integer) return v.i;
  // A float is refused even when integral: torch constructors given 64.0 for a size raise TypeError.
  if (v.present() && v.kind != CfgValue::Kind::null) type_error(*this, path, v, "an integer", findings);
  return std::nullopt;
}

std::optional<bool> XpCfg::get_bool(std::string_view path, Findings& findings) const {
  CfgValue v = get(path, findings);
  if (v.kind == CfgValue::Kind::boolean) return v.b;
  if (v.present() && v.kind != CfgValue::Kind::null) type_error(*this, path, v, "a boolean", findings);
  return std::nullopt;
}

std::optional<double> XpCfg::get_double(std::string_view path, Findings& findings) const {
  CfgValue v = get(path, findings);
  if (v.kind == CfgValue::Kind::floating) return v.d;
  if (v.kind == CfgValue::Kind::integer) return static_cast<double>(v.i);
  if (v.present() && v.kind != CfgValue::Kind::null) type_error(*this, path, v, "a number", findings);
  return std::nullopt;
}

std::optional<std::string> XpCfg::get_string(std::string_view path, Findings& findings) const {
  CfgValue v = get(path, findings);
  if (v.kind == CfgValue::Kind::string) return v.s;
  if (v.present() && v.kind != CfgValue::Kind::null) type_error(*this, path, v, "a string", findings);
  return std::nullopt;
}

std::optional<std::vector<CfgValue>> XpCfg::get_list(std::string_view path, Findings& findings) const {
  CfgValue v = get(path, findings);
  if (v.kind != CfgValue::Kind::list) {
    if (v.present() && v.kind != CfgValue::Kind::null) type_error(*this, path, v, "a list", findings);
    return std::nullopt;
  }
  std::vector<CfgValue> out;
  const auto& n = nodes_[static_cast<size_t>(v.node)];
  for (size_t i = 0; i < n.children.size(); ++i) {
    XpCfgResolver r(*this, std::string(path) + "[" + std::to_string(i) + "]", findings);
    CfgValue e = r.resolve(n.children[i].second);
    if (e.kind == CfgValue::Kind::error) return std::nullopt;
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<std::vector<int64_t>> XpCfg::get_int_list(std::string_view path, Findings& findings) const {
  auto list = get_list(path, findings);
  if (!list) return std::nullopt;
  std::vector<int64_t> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& e = (*list)[i];
    if (e.kind != CfgValue::Kind::integer) {
      type_error(*this, std::string(path) + "[" + std::to_string(i) + "]", e, "an integer", findings);
      return std::nullopt;
    }
    out.push_back(e.i);
  }
  return out;
}

std::optional<std::vector<std::string>> XpCfg::get_string_list(std::string_view path, Findings& findings) const {
  auto list = get_list(path, findings);
  if (!list) return std::nullopt;
  std::vector<std::string> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& e = (*list)[i];
    if (e.kind != CfgValue::Kind::string) {
      type_error(*this, std::string(path) + "[" + std::to_string(i) + "]", e, "a string", findings);
      return std::nullopt;
    }
    out.push_back(e.s);
  }
  return out;
}

std::vector<std::string> XpCfg::keys(std::string_view path, Findings& findings) const {
  std::vector<std::string> out;
  CfgValue v = path.empty() ? CfgValue{CfgValue::Kind::map, false, 0, 0.0, "", 0} : get(path, findings);
  if (v.kind != CfgValue::Kind::map) return out;
  for (const auto& kv : nodes_[static_cast<size_t>(v.node)].children) out.push_back(kv.first);
  return out;
}

bool XpCfg::set_scalar(std::string_view path, std::string plain_text) {
  auto comps = split_cfg_path(path);
  if (comps.empty()) return false;
  int32_t cur = 0;
  for (size_t k = 0; k < comps.size(); ++k) {
    if (nodes_[static_cast<size_t>(cur)].kind != Node::Kind::map) return false;
    int32_t next = child(cur, comps[k]);
    if (next < 0) {
      Node n;
      n.parent = cur;
      n.kind = k + 1 == comps.size() ? Node::Kind::scalar : Node::Kind::map;
      next = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(std::move(n));
      nodes_[static_cast<size_t>(cur)].children.emplace_back(comps[k], next);
      index_keys(nodes_[static_cast<size_t>(cur)]);
    }
    cur = next;
  }
  Node& leaf = nodes_[static_cast<size_t>(cur)];
  leaf.kind = Node::Kind::scalar;
  leaf.text = std::move(plain_text);
  leaf.quoted = false;
  leaf.children.clear();
  leaf.by_key.clear();
  return true;
}

bool XpCfg::erase(std::string_view path) {
  auto comps = split_cfg_path(path);
  if (comps.empty()) return false;
  int32_t cur = 0;
  for (size_t k = 0; k + 1 < comps.size(); ++k) {
    cur = child(cur, comps[k]);
    if (cur < 0 || nodes_[static_cast<size_t>(cur)].kind != Node::Kind::map) return false;
  }
  auto& map = nodes_[static_cast<size_t>(cur)];
  for (auto it = map.children.begin(); it != map.children.end(); ++it) {
    if (it->first == comps.back()) {
      map.children.erase(it);
      index_keys(map);
      return true;
    }
  }
  return false;
}

}  // namespace mgcheck::format
