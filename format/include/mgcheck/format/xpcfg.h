// The `xp.cfg` YAML of an AudioCraft export, parsed into an inert tree, with OmegaConf interpolations
// resolved lazily, from the root, only where a field is read (musicgen-model.md §2.1).
// Never throws: YAML errors, bombs, unresolvable interpolations, cycles and `???` become findings
// (MG-CONFIG-YAML, MG-CONFIG-TOO-LARGE, MG-CONFIG-INTERPOLATION, MG-CONFIG-CYCLE, MG-CONFIG-MISSING-VALUE).
// Budgets: the max_config_* fields of Limits. Reads are const but charge the document's work budget
// (max_config_interpolation_steps / _bytes): one XpCfg must not be read from two threads at once.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mgcheck/format/finding.h"
#include "mgcheck/format/limits.h"
#include "mgcheck/format/result.h"

namespace mgcheck::format {


// One resolved value as a builder would see it after `to_container(resolve=True)`.
struct CfgValue {
  enum class Kind { absent, error, null, boolean, integer, floating, string, map, list };
  Kind kind = Kind::absent;
  bool b = false;
  int64_t i = 0;
  double d = 0.0;
  std::string s;      // string value; for errors, empty
  int32_t node = -1;  // the tree node (map/list, or the scalar it came from)

  bool present() const { return kind != Kind::absent && kind != Kind::error; }
  bool is_number() const { return kind == Kind::integer || kind == Kind::floating; }
  const char* kind_name() const;
};

class XpCfg {
 public:
  // Parses YAML text. Fatal problems (syntax, bombs) return the finding; nothing is thrown.
  static Result<XpCfg> parse(std::string_view text, std::string file, const Limits& limits = {});

  const std::string& file() const { return file_; }
  size_t node_count() const { return nodes_.size(); }

  // True when the dotted path exists (the last component is not resolved; intermediate interpolations
  // are followed silently).
  bool has(std::string_view path) const;

  // Reads one field, resolving interpolations. Absent → Kind::absent (no finding); unresolvable,
  // cyclic, `???` → Kind::error with a finding naming `path` pushed to `findings`.
  CfgValue get(std::string_view path, Findings& findings) const;

  // Typed reads: nullopt when absent, null, or on error (findings pushed for errors and for a value of
  // the wrong type, MG-CONFIG-TYPE). get_double accepts integers; get_int refuses floats (64.0);
  // get_bool accepts only booleans.
  std::optional<int64_t> get_int(std::string_view path, Findings& findings) const;
  std::optional<bool> get_bool(std::string_view path, Findings& findings) const;
  std::optional<double> get_double(std::string_view path, Findings& findings) const;
  std::optional<std::string> get_string(std::string_view path, Findings& findings) const;
  // A list (each element resolved). nullopt when absent/null/error.
  std::optional<std::vector<CfgValue>> get_list(std::string_view path, Findings& findings) const;
  std::optional<std::vector<int64_t>> get_int_list(std::string_view path, Findings& findings) const;
  std::optional<std::vector<std::string>> get_string_list(std::string_view path, Findings& findings) const;
  // Keys of a mapping, in file order (empty when absent or not a mapping; errors pushed).
  std::vector<std::string> keys(std::string_view path, Findings& findings) const;

  // Edits done by AudioCraft's loaders before building (cfg.device = ..., del cfg.x).
  // set_scalar creates the leaf (and missing parent maps); returns false when a parent is not a map.
  bool set_scalar(std::string_view path, std::string plain_text);
  bool erase(std::string_view path);

  // Work budget spent by the reads so far (Limits::max_config_interpolation_steps / _bytes).
  uint64_t interpolation_steps_spent() const { return spent_steps_; }
  uint64_t interpolation_bytes_spent() const { return spent_bytes_; }

  // Renders `line L, column C` of a node for messages ("" when unknown).
  std::string where(int32_t node) const;

 private:
  struct Node {
    enum class Kind { null, scalar, map, list };
    Kind kind = Kind::null;
    std::string text;      // scalar text
    bool quoted = false;   // quoted scalars are strings (interpolations still apply)
    int32_t parent = -1;
    int line = -1, column = -1;  // 1-based, -1 unknown
    std::vector<std::pair<std::string, int32_t>> children;  // map: key → node; list: "" → node
    std::vector<uint32_t> by_key;  // map: indices into children sorted by key (O(log n) lookups)
  };
  friend class XpCfgBuilder;
  friend class XpCfgResolver;

  std::string file_;
  Limits limits_;
  std::vector<Node> nodes_;  // nodes_[0] is the root
  mutable uint64_t spent_steps_ = 0;  // work budget used by reads so far
  mutable uint64_t spent_bytes_ = 0;

  int32_t child(int32_t node, std::string_view key) const;
  static void index_keys(Node& map);
};

// Splits "a.b.c" (also "a[0].b") into components. Exposed for tests.
std::vector<std::string> split_cfg_path(std::string_view path);

}  // namespace mgcheck::format
