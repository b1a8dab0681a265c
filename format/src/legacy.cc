// The legacy "stacked pickles" reader (torch-save-format.md §5): five pickles back to back, then each
// storage as an 8-byte little-endian element count followed by its bytes, in the order of pickle #5.
// All pickles go through the non-executing machine; nothing is allocated from a declared size.
#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "mgcheck/format/checked.h"
#include "mgcheck/format/legacy.h"

namespace mgcheck::format {

namespace {

// The magic number 0x1950A86A20F9469CFC6C as the little-endian two's-complement payload of LONG1, which is
// how the pickle machine keeps an integer that does not fit int64 (pickle.h). torch.save pickles it with
// the protocol it was given (PROTO 2..5, FRAME from 4 on), so the first pickle is run, not compared as bytes.
constexpr char kMagicPayload[] = "\x6C\xFC\x9C\x46\xF9\x20\x6A\xA8\x50\x19";
constexpr int64_t kProtocolVersion = 1001;
constexpr int kLegacyPickles = 5;  // magic, protocol version, sys_info, object, storage keys

// Makes `object`, one pickle's result, the record of everything seen: its globals become `seen` (every
// GLOBAL of every pickle, in file order), in which the object pickle's own start at index `first`.
void merge_globals(PickleResult& object, std::vector<GlobalUse> seen, size_t first) {
  for (size_t id = 0; id < object.arena.size(); ++id) {
    Value& v = object.arena[static_cast<ValueId>(id)];
    if (v.kind == ValueKind::global && v.i >= 0) v.i += static_cast<int64_t>(first);
  }
  object.globals = std::move(seen);
}

class LegacyReader {
 public:
  LegacyReader(const ByteSource& src, const Limits& limits, Findings& findings, PickleResult* partial)
      : src_(src), bytes_(src.bytes()), size_(src.size()), limits_(limits), out_(findings), partial_(partial) {}

  // read(), and on failure what was seen into *partial_ (read_legacy in legacy.h).
  Result<LegacyArchive> run();

 private:
  Result<LegacyArchive> read();
  Finding error(const char* code, uint64_t off, std::string msg, std::string hint, std::string name = {}) const {
    Finding f = make_error(code, std::move(msg), std::move(hint));
    f.file = src_.name();
    f.offset = off;
    f.name = std::move(name);
    return f;
  }
  // Runs the pickle starting at pos_ into `sink` and moves pos_ past its STOP.
  Result<PickleResult> next_pickle(const char* label, bool legacy_ids, Findings& sink);
  Result<PickleResult> next_pickle(const char* label, bool legacy_ids) { return next_pickle(label, legacy_ids, out_); }
  // A fatal finding that does not stop torch.load's unpickler from having run the pickles before it, nor a
  // looser reader from running the ones after it: the remaining pickles (from index `next`) are still
  // scanned, their `unsafe` findings pushed, so a payload behind a damaged header is still reported.
  Finding stop(Finding f, int next);
  const Value* root(const PickleResult& r) const {
    return r.root == kNoValue ? nullptr : &r.arena[r.root];
  }

  const ByteSource& src_;
  std::span<const uint8_t> bytes_;
  uint64_t size_;
  const Limits& limits_;
  Findings& out_;
  uint64_t pos_ = 0;
  LegacyArchive la_;
  // Kept only when partial_ is set:
  PickleResult* partial_ = nullptr;
  std::vector<GlobalUse> seen_;                 // every GLOBAL of every pickle run, in file order
  size_t object_first_ = 0;                     // index in seen_ of the object pickle's first GLOBAL
  bool object_done_ = false;                    // la_.object holds the object pickle
  std::optional<PickleResult> object_partial_;  // else: the object pickle as far as it ran
  int first_protocol_ = 0;                      // the magic number pickle's PROTO
};

Result<PickleResult> LegacyReader::next_pickle(const char* label, bool legacy_ids, Findings& sink) {
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
  PickleResult part;
  po.partial = partial_ != nullptr ? &part : nullptr;
  auto r = run_pickle(in, po, limits_, sink);
  if (partial_ != nullptr) {
    const PickleResult& seen = r ? r.value() : part;
    if (pos_ == 0) first_protocol_ = seen.protocol;
    if (legacy_ids) object_first_ = seen_.size();
    seen_.insert(seen_.end(), seen.globals.begin(), seen.globals.end());
    if (legacy_ids && !r) object_partial_ = std::move(part);
  }
  if (!r) {
    // Only a pickle that may merely have been cut at the limit is reported as too large; an unsafe fatal
    // finding (a frame straddle, a bomb) stands on its own, whatever follows the cut.
    if (!capped || r.error().impact == Impact::unsafe) return std::move(r).error();
    return error("MG-IO-LEGACY-PICKLE-TOO-LARGE", pos_,
                 std::string(label) + " does not end within max_pickle_bytes (" +
                     std::to_string(limits_.max_pickle_bytes) + "): " + r.error().message,
                 "raise --limit max_pickle_bytes only if the file is trusted", label);
  }
  pos_ += r->end;  // end <= in.size(): stays inside the file
  return r;
}

Finding LegacyReader::stop(Finding f, int next) {
  static const char* const kLabels[kLegacyPickles] = {"magic number pickle", "protocol version pickle",
                                                      "sys_info pickle", "object pickle",
                                                      "storage key list pickle"};
  for (int i = next; i < kLegacyPickles && pos_ < size_; ++i) {
    Findings scratch;
    auto r = next_pickle(kLabels[i], i == 3, scratch);
    for (auto& g : scratch.items())
      if (g.impact == Impact::unsafe) out_.push(std::move(g));
    if (!r) {
      // The fatal finding is returned, not pushed: an unsafe one (a frame straddle) is kept here.
      if (r.error().impact == Impact::unsafe) out_.push(std::move(r).error());
      break;  // no way to find the next pickle
    }
    if (i == 3 && partial_ != nullptr) object_partial_ = std::move(r).value();
  }
  return f;
}

Result<LegacyArchive> LegacyReader::run() {
  auto r = read();
  if (!r && partial_ != nullptr) {
    PickleResult p;
    if (object_done_)
      p = std::move(la_.object);
    else if (object_partial_)
      p = std::move(*object_partial_);
    else
      p.protocol = first_protocol_;
    merge_globals(p, std::move(seen_), object_first_);
    *partial_ = std::move(p);
  }
  return r;
}

Result<LegacyArchive> LegacyReader::read() {
  const char* hint_damaged = "the legacy file is damaged: re-save it with a current torch.save";
  // Pickle #1, the magic number: torch.load unpickles it before checking anything, so it goes through the
  // machine like every other pickle (its GLOBALs and calls are findings); only the over-wide integer that
  // the magic number is by design is not reported.
  Findings magic_findings;
  auto magic = next_pickle("magic number pickle", false, magic_findings);
  bool is_magic = magic && is_legacy_magic(*magic);
  for (auto& f : magic_findings.items())
    if (!(is_magic && f.code == "MG-PICKLE-LIMIT-INT")) out_.push(std::move(f));
  if (!is_magic) {
    Finding f = error("MG-IO-LEGACY-MAGIC", 0, "file does not start with the legacy torch.save magic pickle",
                      "not a legacy torch.save file");
    return magic ? stop(std::move(f), 1) : f;
  }

  uint64_t at = pos_;
  auto version = next_pickle("protocol version pickle", false);
  if (!version) return std::move(version).error();
  const Value* v = root(*version);
  if (v == nullptr || v->kind != ValueKind::integer || v->i != kProtocolVersion)
    return stop(error("MG-IO-LEGACY-VERSION", at, "legacy protocol version is not 1001",
                      "torch.load refuses other versions: re-save the file"),
                2);

  at = pos_;
  auto sys_info = next_pickle("sys_info pickle", false);
  if (!sys_info) return std::move(sys_info).error();
  ValueId little = sys_info->arena.is_dict(sys_info->root) ? sys_info->arena.dict_get(sys_info->root, "little_endian")
                                                           : kNoValue;
  if (little == kNoValue || sys_info->arena[little].kind != ValueKind::boolean)
    return stop(error("MG-IO-LEGACY-SYS-INFO", at, "sys_info is not a dict with a boolean 'little_endian'",
                      hint_damaged),
                3);
  if (sys_info->arena[little].i == 0)
    return stop(error("MG-IO-LEGACY-BIG-ENDIAN", at,
                      "the file was written on a big-endian machine (little_endian = False)",
                      "re-save the checkpoint on a little-endian machine"),
                3);

  LegacyArchive& la = la_;
  la.object_offset = pos_;
  auto object = next_pickle("object pickle", true);
  if (!object) return std::move(object).error();
  la.object = std::move(object).value();
  object_done_ = true;

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
  return std::move(la_);
}

}  // namespace

Result<LegacyArchive> read_legacy(const ByteSource& src, const Limits& limits, Findings& findings,
                                  PickleResult* partial) {
  return LegacyReader(src, limits, findings, partial).run();
}

bool is_legacy_magic(const PickleResult& r) noexcept {
  if (r.root == kNoValue || r.root >= r.arena.size()) return false;
  const Value& v = r.arena[r.root];
  return v.kind == ValueKind::integer && v.poisoned &&
         v.s == std::string_view(kMagicPayload, sizeof kMagicPayload - 1);
}

RawPickleScan scan_raw_pickles(const ByteSource& src, const Limits& limits, Findings& findings,
                               PickleResult* partial) {
  RawPickleScan scan;
  std::vector<GlobalUse> seen;
  const auto bytes = src.bytes();
  uint64_t pos = 0;
  for (int i = 0; i < kLegacyPickles && pos < bytes.size(); ++i) {
    uint64_t left = bytes.size() - pos;
    auto in = bytes.subspan(static_cast<size_t>(pos), static_cast<size_t>(std::min(left, limits.max_pickle_bytes)));
    PickleOptions po;
    po.file = src.name();
    po.record = i == 0 ? "pickle" : "pickle #" + std::to_string(i + 1);
    po.base_offset = pos;
    po.legacy_persistent_ids = i == 3;
    po.require_stop_at_end = false;
    Findings scratch;
    PickleResult part;
    po.partial = partial != nullptr ? &part : nullptr;
    auto r = run_pickle(in, po, limits, scratch);
    for (auto& f : scratch.items())
      if (f.impact == Impact::unsafe) findings.push(std::move(f));
    // A fatal finding is returned, not pushed: an unsafe one (a frame straddle) is kept.
    if (!r && r.error().impact == Impact::unsafe) findings.push(r.error());
    if (r) {
      ++scan.pickles;
      if (i == 0) scan.legacy_magic = is_legacy_magic(*r);
      pos += r->end;
    }
    if (partial != nullptr) {
      PickleResult& res = r ? r.value() : part;
      seen.insert(seen.end(), res.globals.begin(), res.globals.end());
      if (i == 0) *partial = std::move(res);
    }
    if (!r) break;
  }
  if (partial != nullptr) merge_globals(*partial, std::move(seen), 0);
  return scan;
}

}  // namespace mgcheck::format
