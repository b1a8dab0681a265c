// The legacy "stacked pickles" reader (torch-save-format.md §5): five pickles back to back, then each
// storage as an 8-byte little-endian element count followed by its bytes, in the order of pickle #5.
// All pickles go through the non-executing machine; nothing is allocated from a declared size.
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "mgcheck/format/checked.h"
#include "mgcheck/format/legacy.h"

namespace mgcheck::format {

namespace {

// PROTO 2, LONG1 of the magic 0x1950A86A20F9469CFC6C, STOP. Compared as bytes: the value does not fit the
// pickle machine's int64 integers, and torch writes exactly these bytes.
constexpr uint8_t kMagicPickle[] = {0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46,
                                    0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E};
constexpr int64_t kProtocolVersion = 1001;

class LegacyReader {
 public:
  LegacyReader(const ByteSource& src, const Limits& limits, Findings& findings)
      : src_(src), bytes_(src.bytes()), size_(src.size()), limits_(limits), out_(findings) {}

  Result<LegacyArchive> run();

 private:
  Finding error(const char* code, uint64_t off, std::string msg, std::string hint, std::string name = {}) const {
    Finding f = make_error(code, std::move(msg), std::move(hint));
    f.file = src_.name();
    f.offset = off;
    f.name = std::move(name);
    return f;
  }
  // Runs the pickle starting at pos_ and moves pos_ past its STOP.
  Result<PickleResult> next_pickle(const char* label, bool legacy_ids);
  const Value* root(const PickleResult& r) const {
    return r.root == kNoValue ? nullptr : &r.arena[r.root];
  }

  const ByteSource& src_;
  std::span<const uint8_t> bytes_;
  uint64_t size_;
  const Limits& limits_;
  Findings& out_;
  uint64_t pos_ = 0;
};

Result<PickleResult> LegacyReader::next_pickle(const char* label, bool legacy_ids) {
  uint64_t left = size_ - pos_;
  bool capped = left > limits_.max_pickle_bytes;
  std::span<const uint8_t> in = bytes_.subspan(static_cast<size_t>(pos_),
                                               static_cast<size_t>(capped ? limits_.max_pickle_bytes : left));
  PickleOptions po;
  po.file = src_.name();
  po.record = label;
  po.base_offset = pos_;
  po.legacy_persistent_ids = legacy_ids;
  po.require_stop_at_end = false;  // the next pickle (or the raw storages) follows
  auto r = run_pickle(in, po, limits_, out_);
  if (!r) {
    if (!capped) return std::move(r).error();
    return error("MG-IO-LEGACY-PICKLE-TOO-LARGE", pos_,
                 std::string(label) + " does not end within max_pickle_bytes (" +
                     std::to_string(limits_.max_pickle_bytes) + "): " + r.error().message,
                 "raise --limit max_pickle_bytes only if the file is trusted", label);
  }
  pos_ += r->end;  // end <= in.size(): stays inside the file
  return r;
}

Result<LegacyArchive> LegacyReader::run() {
  const char* hint_damaged = "the legacy file is damaged: re-save it with a current torch.save";
  if (size_ < sizeof kMagicPickle || std::memcmp(bytes_.data(), kMagicPickle, sizeof kMagicPickle) != 0)
    return error("MG-IO-LEGACY-MAGIC", 0, "file does not start with the legacy torch.save magic pickle",
                 "not a legacy torch.save file");
  pos_ = sizeof kMagicPickle;

  uint64_t at = pos_;
  auto version = next_pickle("protocol version pickle", false);
  if (!version) return std::move(version).error();
  const Value* v = root(*version);
  if (v == nullptr || v->kind != ValueKind::integer || v->i != kProtocolVersion)
    return error("MG-IO-LEGACY-VERSION", at, "legacy protocol version is not 1001",
                 "torch.load refuses other versions: re-save the file");

  at = pos_;
  auto sys_info = next_pickle("sys_info pickle", false);
  if (!sys_info) return std::move(sys_info).error();
  ValueId little = sys_info->arena.is_dict(sys_info->root) ? sys_info->arena.dict_get(sys_info->root, "little_endian")
                                                           : kNoValue;
  if (little == kNoValue || sys_info->arena[little].kind != ValueKind::boolean)
    return error("MG-IO-LEGACY-SYS-INFO", at, "sys_info is not a dict with a boolean 'little_endian'", hint_damaged);
  if (sys_info->arena[little].i == 0)
    return error("MG-IO-LEGACY-BIG-ENDIAN", at, "the file was written on a big-endian machine (little_endian = False)",
                 "re-save the checkpoint on a little-endian machine");

  LegacyArchive la;
  la.object_offset = pos_;
  auto object = next_pickle("object pickle", true);
  if (!object) return std::move(object).error();
  la.object = std::move(object).value();

  at = pos_;
  auto keys = next_pickle("storage key list pickle", false);
  if (!keys) return std::move(keys).error();
  const Value* list = root(*keys);
  if (list == nullptr || list->kind != ValueKind::list)
    return error("MG-IO-LEGACY-KEYS", at, "the storage key pickle is not a list", hint_damaged);

  std::unordered_map<std::string_view, size_t> by_key;
  for (size_t i = 0; i < la.object.storages.size(); ++i) by_key.emplace(la.object.storages[i].key, i);
  std::unordered_set<std::string_view> listed;
  for (ValueId id : list->items) {
    const Value& k = keys->arena[id];
    if (k.kind != ValueKind::string)
      return error("MG-IO-LEGACY-KEYS", at, "a storage key is not a str", hint_damaged);
    auto it = by_key.find(k.s);
    if (it == by_key.end())
      return error("MG-IO-LEGACY-KEY-UNREFERENCED", at,
                   "storage key '" + k.s + "' is listed but no tensor in the object pickle uses it",
                   "unreferenced storages are hidden payloads; torch.load rejects them too", k.s);
    const StorageRef& ref = la.object.storages[it->second];
    if (!listed.insert(ref.key).second)
      return error("MG-IO-LEGACY-KEYS", at, "storage key '" + k.s + "' is listed twice", hint_damaged, k.s);

    LegacyStorage s;
    s.key = k.s;
    s.count_offset = pos_;
    if (!fits(pos_, 8, size_))
      return error("MG-IO-LEGACY-TRUNCATED", pos_, "file ends before the element count of storage '" + k.s + "'",
                   "the file is truncated: download it again", k.s);
    uint64_t count = 0;
    for (int b = 7; b >= 0; --b) count = (count << 8) | bytes_[static_cast<size_t>(pos_) + static_cast<size_t>(b)];
    if (count != ref.numel)
      return error("MG-IO-LEGACY-COUNT", pos_,
                   "storage '" + k.s + "' holds " + std::to_string(static_cast<int64_t>(count)) +
                       " elements but the object pickle declares " + std::to_string(ref.numel),
                   "torch.load rejects this (\"storage has wrong byte size\"): the file was altered or damaged", k.s);
    s.numel = count;
    s.data_offset = pos_ + 8;
    auto nbytes = checked_mul(count, itemsize(ref.dtype));
    if (!nbytes || !fits(s.data_offset, *nbytes, size_))
      return error("MG-IO-LEGACY-TRUNCATED", s.data_offset,
                   "storage '" + k.s + "' (" + std::to_string(count) + " elements of " + dtype_name(ref.dtype) +
                       ") runs past the end of the file",
                   "the file is truncated: download it again", k.s);
    s.bytes = *nbytes;
    pos_ = s.data_offset + s.bytes;
    la.storages.push_back(std::move(s));
  }
  for (const StorageRef& ref : la.object.storages)
    if (listed.count(ref.key) == 0) {
      out_.push(error("MG-IO-LEGACY-KEY-MISSING", ref.offset,
                      "storage '" + ref.key + "' is used by a tensor but its data is not in the file",
                      "torch.load fails on this file: re-save it", ref.key));
    }
  if (pos_ < size_)
    out_.push(error("MG-IO-LEGACY-TRAILING-DATA", pos_,
                    std::to_string(size_ - pos_) + " bytes follow the last storage",
                    "torch.save writes nothing after the storages: hidden bytes may carry a payload"));
  la.end = pos_;
  return la;
}

}  // namespace

Result<LegacyArchive> read_legacy(const ByteSource& src, const Limits& limits, Findings& findings) {
  return LegacyReader(src, limits, findings).run();
}

}  // namespace mgcheck::format
