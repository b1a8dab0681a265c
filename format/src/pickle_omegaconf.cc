// Reads the plain content out of the inert omegaconf objects the pickle machine builds for a raw
// AudioCraft training checkpoint's `xp.cfg` (see pickle.h for how objects are encoded).
// mirrors omegaconf's DictConfig/ListConfig/ValueNode __getstate__ (state dicts with `_content` / `_val`)
#include <algorithm>
#include <unordered_map>

#include "mgcheck/format/pickle.h"

namespace mgcheck::format {

namespace {

class PlainBuilder {
 public:
  PlainBuilder(PickleResult& r, const Limits& limits) : r_(r), limits_(limits) {}

  Result<ValueId> convert(ValueId node, uint64_t depth) {
    if (node == kNoValue || node >= r_.arena.size()) return bad("missing value", node);
    if (auto it = done_.find(node); it != done_.end()) return it->second;
    if (depth > limits_.max_nesting_depth) return bad("omegaconf nodes nested deeper than max_nesting_depth", node);
    const Value& v = r_.arena[node];
    if (v.kind != ValueKind::object) return node;  // already plain (str, int, None, ...)
    const std::string cls = object_class(r_, node);
    const ValueId state = object_state(r_, node);
    if (v.poisoned || state == kNoValue || !r_.arena.is_dict(state))
      return bad("object of class '" + cls + "' has no state dict", node);
    ValueId out = kNoValue;
    if (cls == "omegaconf.dictconfig.DictConfig" || cls == "omegaconf.listconfig.ListConfig") {
      const ValueId content = r_.arena.dict_get(state, "_content");
      if (content == kNoValue) return bad(cls + " without _content", node);
      const ValueKind want = cls == "omegaconf.dictconfig.DictConfig" ? ValueKind::dict : ValueKind::list;
      const Value& c = r_.arena[content];
      if (c.kind != want) {
        // None (a None config) or a str ("???" missing, "${...}" interpolation): kept as omegaconf stores it.
        if (c.kind != ValueKind::none && c.kind != ValueKind::string) return bad(cls + " _content has an unexpected type", node);
        out = content;
      } else {
        const std::vector<ValueId> items = c.items;
        std::vector<ValueId> converted;
        converted.reserve(items.size());
        for (size_t k = 0; k < items.size(); ++k) {
          const bool is_key = want == ValueKind::dict && k % 2 == 0;
          if (is_key) {
            converted.push_back(items[k]);
            continue;
          }
          auto child = convert(items[k], depth + 1);
          if (!child) return child;
          converted.push_back(*child);
        }
        Value plain;
        plain.kind = want;
        plain.offset = r_.arena[node].offset;
        plain.depth = 1;
        for (ValueId id : converted) {
          r_.arena[id].frozen = r_.arena[id].frozen || r_.arena[id].kind == ValueKind::dict ||
                                r_.arena[id].kind == ValueKind::list;
          plain.depth = std::max(plain.depth, r_.arena[id].depth + 1);
        }
        plain.items = std::move(converted);
        out = r_.arena.add(std::move(plain));
      }
    } else if (cls.rfind("omegaconf.nodes.", 0) == 0) {
      out = r_.arena.dict_get(state, "_val");
      if (out == kNoValue) return bad(cls + " without _val", node);
    } else {
      return bad("'" + cls + "' is not an omegaconf node", node);
    }
    done_[node] = out;
    return out;
  }

 private:
  Result<ValueId> bad(const std::string& why, ValueId node) {
    Finding f = make_error("MG-PICKLE-OMEGACONF", "cannot read the omegaconf config: " + why,
                           "the training checkpoint's config is not a plain omegaconf DictConfig");
    if (node != kNoValue && node < r_.arena.size()) f.offset = r_.arena[node].offset;
    return f;
  }

  PickleResult& r_;
  const Limits& limits_;
  std::unordered_map<ValueId, ValueId> done_;  // shared nodes are converted once (no DAG expansion)
};

}  // namespace

Result<ValueId> omegaconf_to_plain(PickleResult& r, ValueId node, const Limits& limits) {
  PlainBuilder b(r, limits);
  return b.convert(node, 0);
}

}  // namespace mgcheck::format
