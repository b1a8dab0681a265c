// Internal helper for the typed derivations (config_lm.cc, config_compression.cc): reads fields of one
// xp.cfg with defaults and pushes uniform findings (file = the export, name = the field path).
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mgcheck/format/xpcfg.h"

namespace mgcheck::format::detail {

class ConfigReader {
 public:
  ConfigReader(const XpCfg& cfg, Findings& findings) : cfg_(cfg), findings_(findings) {}

  const XpCfg& cfg() const { return cfg_; }
  Findings& findings() { return findings_; }

  Finding finding(const char* code, const std::string& field, std::string message, std::string hint) const {
    Finding f = make_error(code, std::move(message), std::move(hint));
    f.file = cfg_.file();
    f.name = field;
    return f;
  }
  void error(const char* code, const std::string& field, std::string message, std::string hint) {
    findings_.push(finding(code, field, std::move(message), std::move(hint)));
  }
  void missing(const std::string& field, const std::string& why) {
    error("MG-CONFIG-MISSING-KEY", field, "xp.cfg has no '" + field + "' (" + why + ")",
          "add the key to xp.cfg (AudioCraft's builders fail without it) or re-export the model");
  }
  void invalid(const std::string& field, std::string message) {
    error("MG-CONFIG-INVALID-VALUE", field, std::move(message),
          "AudioCraft refuses this value when it builds the model; fix xp.cfg");
  }

  bool present(const std::string& path) const { return cfg_.has(path); }
  // Present and not null (reading it resolves interpolations; errors are pushed).
  bool present_value(const std::string& path) {
    if (!cfg_.has(path)) return false;
    CfgValue v = cfg_.get(path, findings_);
    return v.present() && v.kind != CfgValue::Kind::null;
  }
  bool is_map(const std::string& path) {
    if (!cfg_.has(path)) return false;
    return cfg_.get(path, findings_).kind == CfgValue::Kind::map;
  }

  int64_t int_or(const std::string& path, int64_t def) { return cfg_.get_int(path, findings_).value_or(def); }
  bool bool_or(const std::string& path, bool def) { return cfg_.get_bool(path, findings_).value_or(def); }
  double double_or(const std::string& path, double def) { return cfg_.get_double(path, findings_).value_or(def); }
  std::string string_or(const std::string& path, std::string def) {
    return cfg_.get_string(path, findings_).value_or(std::move(def));
  }
  std::optional<int64_t> opt_int(const std::string& path) { return cfg_.get_int(path, findings_); }
  std::optional<double> opt_double(const std::string& path) { return cfg_.get_double(path, findings_); }
  std::optional<std::string> opt_string(const std::string& path) { return cfg_.get_string(path, findings_); }

  std::optional<int64_t> required_int(const std::string& path, const std::string& why) {
    if (!cfg_.has(path)) {
      missing(path, why);
      return std::nullopt;
    }
    return cfg_.get_int(path, findings_);
  }

  // Keys of a mapping that the consumer does not accept (they crash AudioCraft with TypeError).
  void unknown_keys(const std::string& path, const std::set<std::string>& known, const std::string& consumer) {
    for (const auto& k : cfg_.keys(path, findings_)) {
      if (known.count(k)) continue;
      std::string field = path.empty() ? k : path + "." + k;
      error("MG-CONFIG-UNKNOWN-KEY", field,
            "'" + field + "' is not an argument of " + consumer + " (AudioCraft fails with TypeError)",
            "remove the key from xp.cfg or use the AudioCraft version that defines it");
    }
  }

 private:
  const XpCfg& cfg_;
  Findings& findings_;
};

}  // namespace mgcheck::format::detail
