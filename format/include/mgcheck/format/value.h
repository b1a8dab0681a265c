// The inert value tree the pickle machine builds. Nothing in it can be called: GLOBALs stay opaque
// names. Values live in an arena and refer to each other by index, so a hostile pickle can neither leak
// (cycles) nor overflow the C++ stack when the tree is destroyed.
//
// Sharing (a memoised object fetched twice) is allowed; cycles are impossible by construction: a
// container that has been placed inside another is frozen, and mutating a frozen container, or putting
// a container into itself, is a finding (torch-save-format.md §9.4 item 20).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mgcheck/format/dtype.h"

namespace mgcheck::format {

using ValueId = uint32_t;
inline constexpr ValueId kNoValue = 0xFFFFFFFFu;

enum class ValueKind : uint8_t {
  none, boolean, integer, floating, string, bytes,
  list, tuple, dict, set,
  global,    // an opaque reference to module.name (never resolved)
  storage,   // a persistent-id storage reference (index into PickleResult::storages)
  tensor,    // a rebuilt tensor (index into PickleResult::tensors)
  object,    // an inert instance of an allowlisted plain-data class (omegaconf/flashy), or a poisoned
             // result of calling something not allowlisted; `items` holds [callable, args, state...]
  mark,      // internal: never appears in a finished tree
};
const char* value_kind_name(ValueKind k) noexcept;

struct Value {
  ValueKind kind = ValueKind::none;
  bool frozen = false;        // placed inside another container: no further mutation
  bool ordered_dict = false;  // dict built by collections.OrderedDict()
  bool poisoned = false;      // result of a refused call; carries no meaning
  uint32_t depth = 0;         // 0 for scalars; 1 + max child depth for containers
  union {
    int64_t i = 0;            // boolean (0/1), integer, index for storage/tensor/global
    double f;                 // floating (the only kind that uses it, so it shares i's bytes)
  };
  std::string s;              // string/bytes payload; for `global`: "module.name"
  std::vector<ValueId> items; // list/tuple/set elements; dict: k0, v0, k1, v1, ...; object: see above
  uint64_t offset = 0;        // byte offset (in the file) of the opcode that created it
};

// Values are stored in fixed-size chunks that never move or grow once allocated: adding a value never
// copies the arena (a single growing vector would briefly hold its old and new buffers, tripling the
// peak for a pickle of millions of small values), and the arena's memory is exactly
// ceil(size / kChunk) chunks, which the pickle machine charges against max_pickle_memory_bytes.
class ValueArena {
 public:
  static constexpr size_t kChunkBits = 12;
  static constexpr size_t kChunk = size_t{1} << kChunkBits;  // values per chunk

  ValueId add(Value v) {
    if (size_ % kChunk == 0) {
      chunks_.emplace_back();
      chunks_.back().reserve(kChunk);
    }
    chunks_.back().push_back(std::move(v));
    return static_cast<ValueId>(size_++);
  }
  Value& operator[](ValueId id) { return chunks_[id >> kChunkBits][id & (kChunk - 1)]; }
  const Value& operator[](ValueId id) const { return chunks_[id >> kChunkBits][id & (kChunk - 1)]; }
  size_t size() const noexcept { return size_; }
  void reserve(size_t) {}  // chunks are allocated on demand

  // Dict lookup by string key: kNoValue when `dict` is not a dict or the key is absent.
  ValueId dict_get(ValueId dict, std::string_view key) const;
  bool is_dict(ValueId id) const { return id != kNoValue && (*this)[id].kind == ValueKind::dict; }
  bool is_string(ValueId id) const { return id != kNoValue && (*this)[id].kind == ValueKind::string; }
  // Number of key/value pairs of a dict.
  size_t dict_size(ValueId id) const { return (*this)[id].items.size() / 2; }

 private:
  std::vector<std::vector<Value>> chunks_;
  size_t size_ = 0;
};

}  // namespace mgcheck::format
