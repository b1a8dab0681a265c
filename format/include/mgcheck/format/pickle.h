// A pickle machine that understands every opcode of protocols 0–5 and executes nothing
// (torch-save-format.md §3, §9.4). GLOBALs are matched against fixed allowlists:
//  - the weights-only allowlist (what torch.load(weights_only=True) admits for state dicts, narrowed to
//    the MusicGen profile: collections.OrderedDict, torch._utils._rebuild_tensor_v2/_v3,
//    _rebuild_parameter(_with_state), dense torch.*Storage classes, torch.storage.UntypedStorage,
//    torch.<dtype> for v3, _codecs.encode / builtins bytes-likes for plain data);
//  - the inert-class allowlist (omegaconf / flashy classes found in raw AudioCraft training
//    checkpoints, docs/pickle-allowlist.md): rebuilt as plain `object` values, never called; each use
//    is recorded so the schema layer can recognise a training checkpoint.
// Any other GLOBAL, and INST/OBJ/NEWOBJ/REDUCE/BUILD on anything not allowlisted, is an `unsafe`
// finding naming module.name and its byte offset; the scan goes on so every offender is listed.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mgcheck/format/finding.h"
#include "mgcheck/format/limits.h"
#include "mgcheck/format/result.h"
#include "mgcheck/format/value.h"

namespace mgcheck::format {

enum class GlobalClass : uint8_t { allowed, inert, unsafe };

struct GlobalUse {
  std::string module;
  std::string name;
  GlobalClass cls = GlobalClass::unsafe;
  uint64_t offset = 0;  // file offset of the GLOBAL / STACK_GLOBAL / INST opcode
};

// A storage named by a persistent id: ('storage', StorageClass, key, location, numel[, view_meta]).
struct StorageRef {
  std::string key;
  DType dtype = DType::uint8;
  std::string location;   // "cpu", "cuda:0", ...
  uint64_t numel = 0;     // in elements of dtype (bytes for UntypedStorage)
  uint64_t offset = 0;    // file offset of the BINPERSID opcode that first named it
};

// A tensor rebuilt by _rebuild_tensor_v2/_v3 (optionally wrapped by _rebuild_parameter).
struct TensorRef {
  uint32_t storage = 0;          // index into PickleResult::storages
  DType dtype = DType::float32;  // element type of the tensor (storage dtype, or v3's explicit dtype)
  int64_t storage_offset = 0;    // in elements
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  bool requires_grad = false;
  bool parameter = false;        // came through _rebuild_parameter
  uint64_t offset = 0;           // file offset of the REDUCE that rebuilt it
};

struct PickleOptions {
  std::string file;            // for findings
  std::string record;          // e.g. "data.pkl"; for findings
  uint64_t base_offset = 0;    // file offset of the first pickle byte (findings report file offsets)
  bool legacy_persistent_ids = false;  // 6-item ids of the legacy format
  bool require_stop_at_end = true;     // no trailing bytes after STOP (false for legacy stacked pickles)
};

struct PickleResult {
  ValueArena arena;
  ValueId root = kNoValue;
  uint64_t end = 0;                 // bytes consumed (position after STOP), relative to the input
  int protocol = 0;                 // from PROTO, 0 when absent
  uint64_t opcodes = 0;             // executed opcode count
  std::vector<GlobalUse> globals;   // every GLOBAL / STACK_GLOBAL / INST reference, in order
  std::vector<StorageRef> storages; // distinct storage keys, in first-use order
  std::vector<TensorRef> tensors;   // in creation order
};

// Runs the machine over `bytes`. Non-fatal problems (unsafe globals, refused calls, inert classes,
// duplicate dict keys, ...) are pushed to `findings` and the scan continues; structural damage
// (truncation, unknown opcode, stack underflow, limit exceeded) ends the run with the error.
// Error codes: MG-PICKLE-*.
Result<PickleResult> run_pickle(std::span<const uint8_t> bytes, const PickleOptions& opts,
                                const Limits& limits, Findings& findings);

// The allowlists, for docs and `inspect`.
GlobalClass classify_global(std::string_view module, std::string_view name) noexcept;

}  // namespace mgcheck::format
