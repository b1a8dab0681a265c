// The tensor layer: ties a container (zip or legacy) and its object pickle into a checked Checkpoint
// (torch-save-format.md §3.3–3.5, §6, §9.5). Every storage reference must resolve to a record of
// exactly numel × itemsize bytes (the CVE-2026-24747 class: torch before 2.10 did not check), every
// record must be referenced, and every tensor view must lie inside its storage. Tensors are views into
// the source's bytes; nothing is copied.
#include "mgcheck/format/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>

#include "mgcheck/format/checked.h"
#include "mgcheck/format/legacy.h"

namespace mgcheck::format {
namespace {

// One storage as the container holds it, after resolution against the pickle.
struct ResolvedStorage {
  bool ok = false;                 // present, right size, dense dtype, usable location
  std::span<const uint8_t> bytes;  // the record's data
  uint64_t file_offset = 0;        // first data byte
  uint64_t header_offset = 0;      // zip local header / legacy count field (for findings)
  std::string record;              // "data/<key>" or the legacy key
};

class CheckpointReader {
 public:
  CheckpointReader(const ByteSource& src, const Limits& limits, const ReadOptions& opts, Findings& findings)
      : src_(src), limits_(limits), opts_(opts), findings_(findings) {}

  Checkpoint take_partial() { return std::move(ck_); }  // after a failed run: what was read so far

  Result<Checkpoint> run() {
    ck_.file = src_.name();
    ck_.file_size = src_.size();
    if (src_.size() > limits_.max_file_bytes)
      return fatal(at(make_error("MG-IO-TOO-LARGE",
                                 "file is " + std::to_string(src_.size()) + " bytes (limit max_file_bytes = " +
                                     std::to_string(limits_.max_file_bytes) + ")",
                                 "raise --limit max_file_bytes only if the file is trusted"),
                      0, ""));
    auto head = src_.bytes().first(static_cast<size_t>(std::min<uint64_t>(src_.size(), 512)));
    ck_.kind = sniff_container(head);
    if (ck_.kind == ContainerKind::zip) {
      if (auto st = read_zip_container(); !st) return st.error();
    } else if (ck_.kind == ContainerKind::legacy) {
      if (auto st = read_legacy_container(); !st) return st.error();
    } else if (ck_.kind == ContainerKind::unknown && src_.size() > 0) {
      // torch.load unpickles whatever is not a zip: run it through the machine before refusing it, so a
      // raw pickle's payload is `unsafe`, and a magic number torch would accept is read as legacy.
      Findings scan_findings;
      scan_findings.set_cap(limits_.max_findings);
      auto scan = scan_raw_pickles(src_, limits_, scan_findings, opts_.partial != nullptr ? &ck_.pickle : nullptr);
      if (!scan.legacy_magic) {
        for (auto& f : scan_findings.items()) report(std::move(f));
        return fatal(unsupported_container_finding(ck_.kind, head, src_.name()));
      }
      ck_.kind = ContainerKind::legacy;
      if (auto st = read_legacy_container(); !st) return st.error();
    } else {
      return fatal(unsupported_container_finding(ck_.kind, head, src_.name()));
    }
    if (ck_.pickle.tensors.size() > limits_.max_tensors)
      return fatal(at(make_error("MG-TENSOR-LIMIT-COUNT",
                                 std::to_string(ck_.pickle.tensors.size()) + " tensors (limit max_tensors = " +
                                     std::to_string(limits_.max_tensors) + ")",
                                 "raise --limit max_tensors only if the file is trusted"),
                      pickle_base_, pickle_record_));
    check_total_storage();
    walk_tree();
    check_tensors();
    note_aliasing();
    return std::move(ck_);
  }

 private:
  Finding at(Finding f, uint64_t offset, std::string name) const {
    f.file = src_.name();
    f.offset = offset;
    f.name = std::move(name);
    return f;
  }
  // The fatal finding is returned, never pushed: the caller pushes it once.
  Finding fatal(Finding f) { return f; }
  void report(Finding f) { findings_.push(std::move(f)); }

  // A condition the zip reader pushed as a finding that is fatal here: it is taken out of `findings_` and
  // returned, so the caller's one push reports it once.
  Finding already_reported(const std::string& code, Finding fallback) {
    auto& items = findings_.items();
    for (auto it = items.begin(); it != items.end(); ++it)
      if (it->code == code) {
        Finding f = std::move(*it);
        items.erase(it);
        return f;
      }
    return fatal(std::move(fallback));
  }

  Status read_zip_container() {
    ZipOptions zo;
    zo.verify_crc = opts_.verify_crc;
    auto za = read_zip(src_, limits_, zo, findings_);
    if (!za) return fatal(std::move(za).error());
    zip_ = std::move(za.value());
    ck_.folder = zip_.folder;
    ck_.records = zip_.records;
    if (zip_.torchscript)
      return already_reported("MG-ZIP-TORCHSCRIPT", unsupported_container_finding(ContainerKind::torchscript, {},
                                                                                  src_.name()));
    const ZipRecord* pkl = zip_.find("data.pkl");
    if (pkl == nullptr)
      return already_reported("MG-ZIP-MISSING-RECORD",
                              at(make_error("MG-ZIP-MISSING-RECORD", "no data.pkl record in the archive folder",
                                            "not a torch.save file, or a damaged one: re-save it"),
                                 0, "data.pkl"));
    for (const char* v : {".data/version", "version"})
      if (const ZipRecord* r = zip_.find(v)) {
        auto d = zip_.data(src_, *r);
        ck_.version_record.assign(reinterpret_cast<const char*>(d.data()), std::min<size_t>(d.size(), 64));
        break;
      }
    if (pkl->size > limits_.max_pickle_bytes)
      return fatal(at(make_error("MG-PICKLE-LIMIT-SIZE",
                                 "data.pkl is " + std::to_string(pkl->size) + " bytes, more than max_pickle_bytes (" +
                                     std::to_string(limits_.max_pickle_bytes) + ")",
                                 "raise --limit max_pickle_bytes only for a trusted file"),
                      pkl->data_offset, "data.pkl"));
    PickleOptions po;
    po.file = src_.name();
    po.record = "data.pkl";
    po.base_offset = pkl->data_offset;
    po.partial = opts_.partial != nullptr ? &ck_.pickle : nullptr;
    pickle_base_ = pkl->data_offset;
    pickle_record_ = "data.pkl";
    auto pr = run_pickle(zip_.data(src_, *pkl), po, limits_, findings_);
    if (!pr) return fatal(std::move(pr).error());
    ck_.pickle = std::move(pr.value());
    resolve_zip_storages();
    return ok_status();
  }

  Status read_legacy_container() {
    auto la = read_legacy(src_, limits_, findings_, opts_.partial != nullptr ? &ck_.pickle : nullptr);
    if (!la) return std::move(la).error();
    LegacyArchive legacy = std::move(la.value());
    pickle_base_ = legacy.object_offset;
    pickle_record_ = "object pickle";
    ck_.pickle = std::move(legacy.object);
    resolve_legacy_storages(legacy.storages);
    return ok_status();
  }

  // Checks of a StorageRef independent of the container: dense dtype, location.
  bool check_storage_ref(const StorageRef& s, const std::string& record) {
    bool ok = true;
    if (is_quantized(s.dtype)) {
      report(at(make_error("MG-TENSOR-QUANTIZED",
                           std::string("storage '") + s.key + "' is quantized (" + storage_class_name(s.dtype) + ")",
                           "MusicGen exports hold dense tensors only: dequantize before saving"),
                s.offset, record));
      ok = false;
    }
    if (s.location != "cpu") {
      bool cuda = s.location.rfind("cuda:", 0) == 0 && s.location.size() > 5 && s.location.size() <= 9 &&
                  std::all_of(s.location.begin() + 5, s.location.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (cuda) {
        report(at(make_warning("MG-TENSOR-CUDA-LOCATION",
                               "storage '" + s.key + "' was saved from " + s.location,
                               "harmless for mgcheck; AudioCraft exports copy tensors to the CPU first"),
                  s.offset, record));
      } else {
        report(at(make_error("MG-TENSOR-LOCATION",
                             "storage '" + s.key + "' has unsupported location '" + s.location.substr(0, 64) + "'",
                             "save the tensors from the CPU (tensor.cpu()) before torch.save"),
                  s.offset, record));
        ok = false;
      }
    }
    return ok;
  }

  void resolve_zip_storages() {
    const auto& refs = ck_.pickle.storages;
    storages_.assign(refs.size(), {});
    std::unordered_map<std::string, size_t> referenced;
    for (size_t i = 0; i < refs.size(); ++i) {
      const StorageRef& s = refs[i];
      ResolvedStorage& rs = storages_[i];
      rs.record = "data/" + s.key;
      referenced.emplace(rs.record, i);
      bool ok = check_storage_ref(s, rs.record);
      const ZipRecord* r = zip_.find(rs.record);
      if (r == nullptr) {
        report(at(make_error("MG-TENSOR-MISSING-STORAGE",
                             "storage '" + s.key + "' is referenced by data.pkl but the archive has no record " +
                                 rs.record,
                             "the file is truncated or was assembled by hand: re-save it"),
                  s.offset, rs.record));
        continue;
      }
      rs.header_offset = r->header_offset;
      rs.file_offset = r->data_offset;
      auto expected = checked_mul(s.numel, itemsize(s.dtype));
      if (!expected || *expected != r->size) {
        report(at(make_error("MG-TENSOR-STORAGE-SIZE",
                             "record " + rs.record + " holds " + std::to_string(r->size) + " bytes but data.pkl declares " +
                                 std::to_string(s.numel) + " " + dtype_name(s.dtype) + " elements (" +
                                 (expected ? std::to_string(*expected) + " bytes" : std::string("overflow")) + ")",
                             "torch before 2.10 reads past such a record (CVE-2026-24747): do not load this file"),
                  r->header_offset, rs.record));
        continue;
      }
      if (!fits(r->data_offset, r->size, src_.size())) continue;  // the zip reader guarantees this
      rs.bytes = src_.bytes().subspan(r->data_offset, r->size);
      rs.ok = ok;
    }
    // Orphans: data/<key> records nothing refers to are payload torch never looks at.
    for (const auto& r : zip_.records)
      if (r.name.rfind("data/", 0) == 0 && !referenced.count(r.name))
        report(at(make_error("MG-TENSOR-ORPHAN-STORAGE",
                             "record " + r.name + " (" + std::to_string(r.size) + " bytes) is not referenced by data.pkl",
                             "unreferenced records are hidden payload torch.load never reads: re-save the file"),
                  r.header_offset, r.name));
  }

  void resolve_legacy_storages(const std::vector<LegacyStorage>& list) {
    const auto& refs = ck_.pickle.storages;
    storages_.assign(refs.size(), {});
    std::unordered_map<std::string, const LegacyStorage*> by_key;
    for (const auto& ls : list) by_key.emplace(ls.key, &ls);
    std::unordered_map<std::string, size_t> referenced;
    for (size_t i = 0; i < refs.size(); ++i) {
      const StorageRef& s = refs[i];
      ResolvedStorage& rs = storages_[i];
      rs.record = s.key;
      referenced.emplace(s.key, i);
      bool ok = check_storage_ref(s, s.key);
      auto it = by_key.find(s.key);
      if (it == by_key.end()) {
        report(at(make_error("MG-TENSOR-MISSING-STORAGE",
                             "storage '" + s.key + "' is referenced by the object pickle but not in the storage list",
                             "the file is truncated or was assembled by hand: re-save it"),
                  s.offset, s.key));
        continue;
      }
      const LegacyStorage& ls = *it->second;
      rs.header_offset = ls.count_offset;
      rs.file_offset = ls.data_offset;
      auto expected = checked_mul(s.numel, itemsize(s.dtype));
      if (ls.numel != s.numel || !expected || *expected != ls.bytes) {
        report(at(make_error("MG-TENSOR-STORAGE-SIZE",
                             "storage '" + s.key + "' has " + std::to_string(ls.numel) +
                                 " elements in the file but the object pickle declares " + std::to_string(s.numel),
                             "torch refuses such files ('storage has wrong byte size'): re-save the file"),
                  ls.count_offset, s.key));
        continue;
      }
      if (!fits(ls.data_offset, ls.bytes, src_.size())) continue;  // the legacy reader guarantees this
      rs.bytes = src_.bytes().subspan(ls.data_offset, ls.bytes);
      rs.ok = ok;
    }
    for (const auto& ls : list)
      if (!referenced.count(ls.key))
        report(at(make_error("MG-TENSOR-ORPHAN-STORAGE",
                             "storage '" + ls.key + "' (" + std::to_string(ls.bytes) +
                                 " bytes) is not referenced by the object pickle",
                             "unreferenced storages are hidden payload torch.load never uses: re-save the file"),
                  ls.count_offset, ls.key));
  }

  void check_total_storage() {
    uint64_t total = 0;
    bool overflow = false;
    for (const auto& rs : storages_) {
      auto t = checked_add(total, rs.bytes.size());
      if (!t) overflow = true;
      else total = *t;
    }
    uint64_t cap = std::min(limits_.max_total_storage_bytes, src_.size());
    if (overflow || total > cap) {
      report(at(make_error("MG-TENSOR-LIMIT-STORAGE",
                           "storages total " + std::to_string(total) + " bytes, more than " +
                               (total > src_.size() ? "the file holds" : "max_total_storage_bytes allows"),
                           "raise --limit max_total_storage_bytes only if the file is trusted"),
                pickle_base_, pickle_record_));
      for (auto& rs : storages_) {
        rs.ok = false;
        rs.bytes = {};
      }
    }
  }

  // Walks the value tree iteratively (explicit stack, sharing allowed) and lists every tensor reachable
  // from the root with its path of dict keys and list indices. Shared containers expand (a memo'd list
  // placed in itself twice per level doubles the paths), so both the node count (max_objects) and the
  // bytes of paths and frames created (max_pickle_memory_bytes, counted cumulatively) are bounded.
  void walk_tree() {
    const ValueArena& a = ck_.pickle.arena;
    if (ck_.pickle.root == kNoValue || ck_.pickle.root >= a.size()) return;
    struct Frame {
      ValueId id;
      std::string path;
      std::string key;
    };
    std::vector<Frame> stack;
    stack.push_back({ck_.pickle.root, "", ""});
    uint64_t visited = 0;
    uint64_t bytes = 0;
    const uint64_t budget = std::max<uint64_t>(limits_.max_objects, 1);
    // The walk shares the pickle run's working-memory budget: what the run charged is already spent.
    const uint64_t spent = ck_.pickle.memory_bytes;
    const uint64_t byte_budget = limits_.max_pickle_memory_bytes > spent ? limits_.max_pickle_memory_bytes - spent : 0;
    // The arena, the tensors and storages of the run stay alive beside the walk's own memory.
    auto join = [](const std::string& p, const std::string& k) { return p.empty() ? k : p + "/" + k; };
    auto over = [&](const std::string& what) {
      report(at(make_error("MG-TENSOR-LIMIT-WALK", "walking the value tree " + what + " (shared containers expand)",
                           "raise --limit max_objects / max_pickle_memory_bytes only if the file is trusted"),
                pickle_base_, pickle_record_));
    };
    // Charged as allocated: each string's heap block with its allocator overhead.
    auto heap = [](const std::string& x) -> uint64_t { return x.size() < 16 ? 0 : x.size() + 32; };
    auto push = [&](ValueId id, std::string path, std::string key) {
      bytes += sizeof(Frame) + heap(path) + heap(key);
      stack.push_back({id, std::move(path), std::move(key)});
    };
    while (!stack.empty()) {
      if (bytes > byte_budget) {
        over("creates more than " + std::to_string(byte_budget) + " bytes of paths (max_pickle_memory_bytes less the " +
             std::to_string(spent) + " the pickle run used)");
        return;
      }
      Frame f = std::move(stack.back());
      stack.pop_back();
      if (++visited > budget) {
        over("visits more than " + std::to_string(budget) + " nodes");
        return;
      }
      if (f.id >= a.size()) continue;
      const Value& v = a[f.id];
      switch (v.kind) {
        case ValueKind::tensor:
          if (v.i >= 0 && static_cast<uint64_t>(v.i) < ck_.pickle.tensors.size()) {
            auto idx = static_cast<uint32_t>(v.i);
            if (ck_.named.size() >= limits_.max_tensors) {  // every name is listed by inspect and the schema
              over("names more than max_tensors (" + std::to_string(limits_.max_tensors) + ") tensor paths");
              return;
            }
            // The list of names may double its capacity: count each entry twice.
            bytes += 2 * sizeof(ck_.named[0]) + heap(f.path) + heap(f.key);
            if (!first_path_.count(idx)) bytes += 64 + heap(f.path);
            if (!first_path_.count(idx)) first_path_.emplace(idx, f.path);
            ck_.named.push_back({f.path, f.key, idx});
          }
          break;
        case ValueKind::dict:
          // Push in reverse so pairs are visited in insertion order.
          for (size_t k = v.items.size() / 2; k-- > 0 && bytes <= byte_budget;) {
            ValueId key = v.items[2 * k];
            if (key >= a.size()) continue;
            const Value& kv = a[key];
            std::string ks;
            if (kv.kind == ValueKind::string) ks = kv.s;
            else if (kv.kind == ValueKind::integer) ks = std::to_string(kv.i);
            else continue;  // tuple keys never hold state-dict tensors
            std::string path = join(f.path, ks);
            push(v.items[2 * k + 1], std::move(path), std::move(ks));
          }
          break;
        case ValueKind::list:
        case ValueKind::tuple:
          for (size_t k = v.items.size(); k-- > 0 && bytes <= byte_budget;)
            push(v.items[k], join(f.path, std::to_string(k)), std::to_string(k));
          break;
        default:
          break;
      }
    }
  }

  std::string name_of(uint32_t tensor) const {
    auto it = first_path_.find(tensor);
    return it == first_path_.end() ? "<tensor " + std::to_string(tensor) + ">" : it->second;
  }

  void check_tensors() {
    const auto& refs = ck_.pickle.tensors;
    ck_.tensors.assign(refs.size(), {});
    for (uint32_t i = 0; i < refs.size(); ++i) check_tensor(i, refs[i], ck_.tensors[i]);
  }

  void check_tensor(uint32_t index, const TensorRef& t, TensorView& out) {
    const std::string name = name_of(index);
    auto bad = [&](const char* code, const std::string& msg, const char* hint) {
      report(at(make_error(code, msg, hint), t.offset, name));
    };
    out.dtype = t.dtype;
    out.sizes = t.sizes;
    out.strides = t.strides;
    out.storage_offset = t.storage_offset;
    if (t.storage >= ck_.pickle.storages.size()) {
      bad("MG-TENSOR-BAD-STORAGE-REF", "tensor refers to a storage the pickle never named",
          "the pickle is damaged: re-save the file");
      return;
    }
    const StorageRef& sref = ck_.pickle.storages[t.storage];
    const ResolvedStorage& rs = storages_[t.storage];
    out.storage_key = sref.key;
    out.storage_file_offset = rs.file_offset;

    bool ok = true;
    // The element type the view reads: v2 tensors use their storage's dtype; only a byte storage
    // (_rebuild_tensor_v3 over an UntypedStorage) may carry another dtype.
    uint64_t storage_numel = sref.numel;
    if (t.dtype != sref.dtype) {
      if (sref.dtype == DType::uint8 && rs.bytes.size() % itemsize(t.dtype) == 0) {
        storage_numel = rs.bytes.size() / itemsize(t.dtype);
      } else {
        bad("MG-TENSOR-DTYPE-MISMATCH",
            std::string("tensor is ") + dtype_name(t.dtype) + " but its storage '" + sref.key + "' holds " +
                dtype_name(sref.dtype),
            "torch.save never writes one storage with two types: the file was edited");
        ok = false;
      }
    }
    if (is_quantized(t.dtype)) {
      bad("MG-TENSOR-QUANTIZED", std::string("tensor is quantized (") + dtype_name(t.dtype) + ")",
          "MusicGen exports hold dense tensors only: dequantize before saving");
      ok = false;
    }
    if (t.sizes.size() > limits_.max_rank) {
      bad("MG-TENSOR-RANK",
          "tensor has rank " + std::to_string(t.sizes.size()) + " (limit max_rank = " +
              std::to_string(limits_.max_rank) + ")",
          "raise --limit max_rank only if the file is trusted");
      return;
    }
    if (t.sizes.size() != t.strides.size()) {
      bad("MG-TENSOR-STRIDE-RANK",
          std::to_string(t.sizes.size()) + " sizes but " + std::to_string(t.strides.size()) + " strides",
          "torch refuses such tensors: the file was edited");
      return;
    }
    for (size_t k = 0; k < t.sizes.size(); ++k) {
      if (t.sizes[k] < 0) {
        bad("MG-TENSOR-NEGATIVE-SIZE", "size " + std::to_string(k) + " is " + std::to_string(t.sizes[k]),
            "torch refuses such tensors: the file was edited");
        return;
      }
      if (t.strides[k] < 0) {
        bad("MG-TENSOR-NEGATIVE-STRIDE", "stride " + std::to_string(k) + " is " + std::to_string(t.strides[k]),
            "torch refuses such tensors: the file was edited");
        return;
      }
    }
    if (t.storage_offset < 0) {
      bad("MG-TENSOR-NEGATIVE-OFFSET", "storage offset is " + std::to_string(t.storage_offset),
          "torch refuses such tensors: the file was edited");
      return;
    }
    uint64_t numel = 1;
    for (auto s : t.sizes) {
      auto m = checked_mul(numel, static_cast<uint64_t>(s));
      if (!m || *m > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        bad("MG-TENSOR-NUMEL-OVERFLOW", "the product of the sizes overflows int64",
            "torch refuses such tensors: the file was edited");
        return;
      }
      numel = *m;
    }
    out.numel = numel;
    if (numel > limits_.max_tensor_elements) {
      bad("MG-TENSOR-LIMIT-ELEMENTS",
          "tensor has " + std::to_string(numel) + " elements (limit max_tensor_elements = " +
              std::to_string(limits_.max_tensor_elements) + ")",
          "raise --limit max_tensor_elements only if the file is trusted");
      return;
    }
    for (size_t k = 0; k < t.sizes.size(); ++k)
      if (t.strides[k] == 0 && t.sizes[k] > 1)
        report(at(make_warning("MG-TENSOR-ZERO-STRIDE",
                               "stride " + std::to_string(k) + " is 0 (an expanded tensor: elements repeat)",
                               "AudioCraft exports never hold expanded tensors; save a .contiguous() copy"),
                  t.offset, name));

    // Extent rule of set_ (§6): the elements [offset, offset + Σ(size_i − 1)·stride_i] lie inside the
    // storage; a zero-element tensor needs offset ≤ storage numel.
    const auto offset = static_cast<uint64_t>(t.storage_offset);
    uint64_t last = offset;
    bool overflow = false;
    if (numel > 0)
      for (size_t k = 0; k < t.sizes.size() && !overflow; ++k) {
        auto step = checked_mul(static_cast<uint64_t>(t.sizes[k] - 1), static_cast<uint64_t>(t.strides[k]));
        auto nl = step ? checked_add(last, *step) : std::nullopt;
        if (!nl) overflow = true;
        else last = *nl;
      }
    bool inside = numel > 0 ? (!overflow && last < storage_numel) : offset <= storage_numel;
    if (!inside) {
      bad("MG-TENSOR-OUT-OF-BOUNDS",
          numel > 0 ? "view reaches element " + (overflow ? std::string("beyond 2^64") : std::to_string(last)) +
                          " of a storage of " + std::to_string(storage_numel) + " elements"
                    : "empty view starts at element " + std::to_string(offset) + " of a storage of " +
                          std::to_string(storage_numel) + " elements",
          "the view reads outside its storage: the file was edited");
      return;
    }
    const uint64_t isz = itemsize(t.dtype);
    out.first_byte = offset * isz;  // ≤ storage bytes: no overflow
    out.span_bytes = numel > 0 ? (last - offset + 1) * isz : 0;
    out.contiguous = true;
    uint64_t expect = 1;
    for (size_t k = t.sizes.size(); k-- > 0;) {
      if (t.sizes[k] != 1 && static_cast<uint64_t>(t.strides[k]) != expect) out.contiguous = false;
      expect *= static_cast<uint64_t>(t.sizes[k]);
    }
    if (numel == 0) out.contiguous = true;
    if (!ok || !rs.ok) return;  // the storage's own finding says why
    out.storage = rs.bytes;
    out.valid = true;
  }

  // Tensors sharing a storage: legitimate for tied weights and views; AudioCraft's export gives every
  // tensor its own storage, so a note lets the schema layer and the report mention it.
  void note_aliasing() {
    std::map<uint32_t, std::vector<uint32_t>> by_storage;
    for (uint32_t i = 0; i < ck_.pickle.tensors.size(); ++i) by_storage[ck_.pickle.tensors[i].storage].push_back(i);
    for (const auto& [sidx, ts] : by_storage) {
      if (ts.size() < 2 || sidx >= ck_.pickle.storages.size()) continue;
      bool overlap = false;
      std::vector<std::pair<uint64_t, uint64_t>> ranges;
      for (auto t : ts) {
        const TensorView& v = ck_.tensors[t];
        if (v.span_bytes > 0) ranges.emplace_back(v.first_byte, v.first_byte + v.span_bytes);
      }
      std::sort(ranges.begin(), ranges.end());
      for (size_t k = 1; k < ranges.size(); ++k)
        if (ranges[k].first < ranges[k - 1].second) overlap = true;
      std::string names;
      for (size_t k = 0; k < ts.size() && k < 4; ++k) names += (k ? ", " : "") + name_of(ts[k]);
      if (ts.size() > 4) names += ", ...";
      report(at(make_note("MG-TENSOR-SHARED-STORAGE",
                          std::to_string(ts.size()) + " tensors share storage '" + ck_.pickle.storages[sidx].key +
                              "'" + (overlap ? " with overlapping bytes" : "") + ": " + names,
                          "expected for tied weights and views; an AudioCraft export gives each tensor its own"),
                ck_.pickle.tensors[ts[0]].offset, name_of(ts[0])));
    }
  }

  const ByteSource& src_;
  const Limits& limits_;
  const ReadOptions& opts_;
  Findings& findings_;
  Checkpoint ck_;
  ZipArchive zip_;
  std::vector<ResolvedStorage> storages_;
  std::unordered_map<uint32_t, std::string> first_path_;
  uint64_t pickle_base_ = 0;
  std::string pickle_record_;
};

// IEEE half → double, by hand (format/ never links libtorch).
double half_to_double(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  double v;
  if (exp == 0) v = std::ldexp(mant, -24);
  else if (exp == 31) v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else v = std::ldexp(mant + 1024, exp - 25);
  return sign ? -v : v;
}

// bfloat16 is the upper half of a float32.
double bfloat16_to_double(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Byte position of element `linear` (row-major over sizes); nullopt when outside the storage.
std::optional<size_t> element_position(const TensorView& t, uint64_t linear) {
  if (!t.valid || linear >= t.numel || t.sizes.size() != t.strides.size()) return std::nullopt;
  uint64_t e = static_cast<uint64_t>(t.storage_offset);
  for (size_t k = t.sizes.size(); k-- > 0;) {
    auto s = static_cast<uint64_t>(t.sizes[k]);
    e += (linear % s) * static_cast<uint64_t>(t.strides[k]);
    linear /= s;
  }
  uint64_t isz = itemsize(t.dtype);
  auto pos = checked_mul(e, isz);
  if (!pos || !fits(*pos, isz, t.storage.size())) return std::nullopt;
  return static_cast<size_t>(*pos);
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

Result<Checkpoint> read_checkpoint(const ByteSource& src, const Limits& limits, const ReadOptions& opts,
                                   Findings& findings) {
  CheckpointReader r(src, limits, opts, findings);
  auto res = r.run();
  if (!res && opts.partial != nullptr) *opts.partial = r.take_partial();
  return res;
}

double element_as_double(const TensorView& t, uint64_t linear_index) noexcept {
  auto pos = element_position(t, linear_index);
  if (!pos) return 0.0;
  const uint8_t* p = t.storage.data() + *pos;
  switch (t.dtype) {
    case DType::float64: return load<double>(p);
    case DType::float32: return load<float>(p);
    case DType::float16: return half_to_double(load<uint16_t>(p));
    case DType::bfloat16: return bfloat16_to_double(load<uint16_t>(p));
    case DType::int64: return static_cast<double>(load<int64_t>(p));
    case DType::int32:
    case DType::qint32: return load<int32_t>(p);
    case DType::int16: return load<int16_t>(p);
    case DType::int8:
    case DType::qint8: return load<int8_t>(p);
    case DType::uint8:
    case DType::quint8:
    case DType::quint4x2:
    case DType::quint2x4: return *p;
    case DType::bool_: return *p != 0 ? 1.0 : 0.0;
    case DType::complex64: return load<float>(p);
    case DType::complex128: return load<double>(p);
  }
  return 0.0;
}

int64_t element_as_int(const TensorView& t, uint64_t linear_index) noexcept {
  auto pos = element_position(t, linear_index);
  if (!pos) return 0;
  const uint8_t* p = t.storage.data() + *pos;
  switch (t.dtype) {
    case DType::int64: return load<int64_t>(p);
    case DType::int32:
    case DType::qint32: return load<int32_t>(p);
    case DType::int16: return load<int16_t>(p);
    case DType::int8:
    case DType::qint8: return load<int8_t>(p);
    case DType::uint8:
    case DType::quint8:
    case DType::quint4x2:
    case DType::quint2x4: return *p;
    case DType::bool_: return *p != 0;
    default: break;
  }
  double d = element_as_double(t, linear_index);
  if (std::isnan(d)) return 0;
  if (d >= 9223372036854775807.0) return std::numeric_limits<int64_t>::max();
  if (d <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(d);
}

}  // namespace mgcheck::format
