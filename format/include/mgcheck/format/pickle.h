// A pickle machine that understands every opcode of protocols 0–5 and executes nothing
// (torch-save-format.md §3, §9.4). GLOBALs are matched against fixed allowlists
// (pickle_allowlist.cc, docs/pickle-allowlist.md):
//  - the weights-only allowlist (what torch.load(weights_only=True) admits for state dicts, narrowed to
//    the MusicGen profile: collections.OrderedDict, torch._utils._rebuild_tensor_v2/_v3/_rebuild_tensor,
//    _rebuild_parameter(_with_state), dense torch.*Storage classes, torch.storage.UntypedStorage,
//    torch.<dtype> for v3, _codecs.encode / builtins set, frozenset, bytes, bytearray, complex for plain data);
//  - the inert-class allowlist (omegaconf classes, typing.Any, builtins dict/list/int/... and
//    collections.defaultdict found in raw AudioCraft training checkpoints): rebuilt as plain `object`
//    values, never called; each use is recorded (and noted, MG-PICKLE-INERT-GLOBAL) so the schema layer
//    can recognise a training checkpoint.
// Any other GLOBAL, and INST/OBJ/NEWOBJ/REDUCE/BUILD on anything not allowlisted, is an `unsafe`
// finding naming module.name and its byte offset; the scan goes on so every offender is listed.
//
// How the value tree encodes what the machine saw (readers of PickleResult rely on this):
//  - global:  s = "module.name" as written; i = index into PickleResult::globals (module, name, class
//             kept apart there); poisoned = true when the class is `unsafe`.
//  - integer: i = value. An integer outside int64 (or a LONG1/LONG4 payload longer than
//             max_int_bytes) gets a MG-PICKLE-LIMIT-INT finding and poisoned = true, i = 0, and s holds
//             the payload as written: raw little-endian two's-complement bytes for LONG1/LONG4
//             (e.g. the legacy-format magic number), decimal text for INT/LONG.
//  - boolean: NEWTRUE/NEWFALSE, and protocol 0's "I01"/"I00".
//  - string:  str payload as UTF-8. Python-2 `str` (STRING/BINSTRING/SHORT_BINSTRING) is decoded the
//             way torch.load decodes it (encoding='utf-8'): valid UTF-8 → string; otherwise a
//             MG-PICKLE-UTF8 finding and the value is `bytes`. Invalid UTF-8 in a unicode opcode is a
//             MG-PICKLE-UTF8 finding and the raw bytes are kept as the string.
//  - bytes:   BINBYTES*, BYTEARRAY8, _codecs.encode(str, 'latin1'), builtins.bytes(), bytearray(b).
//  - set:     EMPTY_SET/ADDITEMS, FROZENSET (frozen from birth), builtins set(list)/frozenset(list).
//  - dict:    EMPTY_DICT/DICT, collections.OrderedDict() (ordered_dict = true), and — because
//             AudioCraft's omegaconf metadata holds them — collections.defaultdict(factory) and
//             builtins.dict() are rebuilt as plain dicts (the factory is dropped: nothing is ever called).
//             Keys must be str, int or tuple (MG-PICKLE-DICT-KEY otherwise); a duplicate str/int key is
//             MG-PICKLE-DUP-KEY and, as in Python, the later value replaces the earlier one.
//  - object:  NEWOBJ cls args / REDUCE f args / INST / OBJ on an inert class → items = [callable global,
//             args tuple]; each BUILD appends its state → [callable, args, state]. A refused call gives the
//             same shape with poisoned = true. complex(re, im) is an (allowed, not poisoned) object too.
//             BUILD on an object that is already inside another container (omegaconf's `_parent`
//             back-references make this the normal case) does not mutate it: the machine makes a built
//             copy, puts it where the BUILD target was (stack slot, and every later memo GET), and leaves
//             the earlier references pointing at the unbuilt shell [cls, args]. So the tree stays acyclic
//             and a `_parent` value is a shell without state.
//  - storage: i = index into PickleResult::storages (BINPERSID of a ('storage', cls, key, loc, numel) id).
//  - tensor:  i = index into PickleResult::tensors (_rebuild_tensor_v2/_v3/_rebuild_tensor, and
//             _rebuild_parameter(_with_state), which marks the same TensorRef parameter = true).
// Freezing: a container placed inside another becomes frozen; SETITEM(S)/APPEND(S)/ADDITEMS on a frozen
// container, or putting a container into itself, is MG-PICKLE-CYCLE and the mutation is skipped.
// SETITEM(S) on a non-dict, APPEND(S) on a non-list, ADDITEMS on a non-set, BUILD on anything but an
// OrderedDict or an inert object are `unsafe` (MG-PICKLE-BAD-TARGET): that is the CVE-2026-24747 shape.
//
// Fatal errors are returned, not pushed to `findings` (the caller decides where they go). Codes and
// their meaning: docs/error-codes.d/pickle.md. Limits: one code per limit, MG-PICKLE-LIMIT-OPCODES,
// -MEMO, -DEPTH (MARK depth and container depth), -STRING, -OBJECTS (arena values plus items copied by
// set()/frozenset(), so no DAG can expand without bound), -MEMORY (the working memory of values, their
// strings and item lists, stack, memo and side tables, charged as they are built) are fatal;
// MG-PICKLE-LIMIT-INT is a finding.
// Frames (protocol 4+): FRAME is accepted only after PROTO >= 4, and a frame's end is a hard boundary:
// an opcode argument crossing it, or STOP before it, is a fatal `unsafe` MG-PICKLE-FRAME-STRADDLE
// (real unpicklers disagree on such bytes; docs/pickle-machine.md). Opcodes CPython's pickler never
// writes for checkpoint values (DUP, INST, OBJ, STRING, BINSTRING, SHORT_BINSTRING, NEWOBJ_EX) are
// MG-PICKLE-OPCODE-UNUSED errors, and a str that is not strict UTF-8 is MG-PICKLE-UTF8 and poisoned.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
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

struct PickleResult;

struct PickleOptions {
  std::string file;            // for findings
  std::string record;          // e.g. "data.pkl"; for findings
  uint64_t base_offset = 0;    // file offset of the first pickle byte (findings report file offsets)
  bool legacy_persistent_ids = false;  // 6-item ids of the legacy format
  bool require_stop_at_end = true;     // no trailing bytes after STOP (false for legacy stacked pickles)
  // When set and the run fails, receives what the machine saw before the failure: every GLOBAL (in
  // order, with offsets), the storages and tensors rebuilt so far (root stays kNoValue). For reports that
  // show what a refused file tried.
  PickleResult* partial = nullptr;
};

struct PickleResult {
  ValueArena arena;
  ValueId root = kNoValue;
  uint64_t end = 0;                 // bytes consumed (position after STOP), relative to the input
  int protocol = 0;                 // from PROTO, 0 when absent
  uint64_t opcodes = 0;             // executed opcode count
  uint64_t memory_bytes = 0;        // working memory charged against max_pickle_memory_bytes
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

// The allowlists, for docs and `inspect`. `module`/`name` as written; Python-2 spellings are mapped
// first (canonical_global).
GlobalClass classify_global(std::string_view module, std::string_view name) noexcept;
const char* global_class_name(GlobalClass c) noexcept;  // "allowed", "inert", "unsafe"

// The Python-3 name a Python-2 GLOBAL resolves to (CPython _compat_pickle, narrowed to the names the
// allowlists care about): `__builtin__ X` → `builtins X`, `__builtin__ long` → `builtins int`,
// `__builtin__ unicode` → `builtins str`, `copy_reg` → `copyreg`. Anything else is returned unchanged.
struct CanonicalGlobal {
  std::string module;
  std::string name;
};
CanonicalGlobal canonical_global(std::string_view module, std::string_view name);

// The GlobalUse a `global` value refers to; nullptr when `id` is not a global value.
const GlobalUse* global_of(const PickleResult& r, ValueId id) noexcept;
// For an `object` value: the canonical "module.name" of its class ("" when not an object).
std::string object_class(const PickleResult& r, ValueId id);
// For an `object` value: its last BUILD state (kNoValue when never built).
ValueId object_state(const PickleResult& r, ValueId id) noexcept;

// Rebuilds the plain content of an inert omegaconf node (DictConfig, ListConfig or a *Node value)
// as new values in r.arena: DictConfig → dict of key → plain value, ListConfig → list, value node →
// its `_val` (interpolations such as "${dset.x}" and "???" stay strings, as omegaconf stores them).
// This is how the schema layer reads a raw training checkpoint's `xp.cfg`. Shared nodes are
// converted once; nesting is capped at limits.max_nesting_depth. Error: MG-PICKLE-OMEGACONF.
Result<ValueId> omegaconf_to_plain(PickleResult& r, ValueId node, const Limits& limits);

}  // namespace mgcheck::format
