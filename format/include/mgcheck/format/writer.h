// Writes torch.save zip archives that Python's torch.load(weights_only=True) reads
// (torch-save-format.md §7): stored records, 64-byte aligned data through the "FB" extra field, data
// descriptors, ZIP64 end records, version record, correct CRCs, protocol-2 pickle with only allowlisted
// globals. Writes atomically: temp file in the same directory, fsync, rename; never overwrites unless
// asked.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "mgcheck/format/dtype.h"
#include "mgcheck/format/result.h"

namespace mgcheck::format {

// A tensor to write: contiguous bytes of `dtype` in row-major order of `sizes` (or any strides over a
// storage, see `strides`/`storage_offset`). The writer does not copy `data` until it writes.
struct WTensor {
  DType dtype = DType::float32;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;       // empty: contiguous
  int64_t storage_offset = 0;         // elements
  std::shared_ptr<const std::vector<uint8_t>> owned;  // storage bytes when owned
  std::span<const uint8_t> storage;   // storage bytes (points into `owned` or external memory)
  std::string share_key;              // tensors with the same non-empty share_key share one storage
  bool parameter = false;             // write through _rebuild_parameter
  bool requires_grad = false;         // the Parameter's flag (plain tensors: _rebuild_tensor_v2's)
  // Testing hook for negative tests: the numel written in the persistent id (-1: the real one).
  int64_t declared_numel = -1;
};

// The tree to write.
struct WValue;
using WList = std::vector<WValue>;
using WDict = std::vector<std::pair<std::string, WValue>>;  // insertion order; str keys
struct WNone {};
struct WValue {
  std::variant<WNone, bool, int64_t, double, std::string, WList, WDict, WTensor> v;
  bool tuple = false;         // write a WList as a tuple
  bool ordered_dict = false;  // write a WDict as collections.OrderedDict
  WValue() = default;
  template <typename T>
  WValue(T x) : v(std::move(x)) {}  // NOLINT: implicit by design
};

WTensor make_tensor(DType dtype, std::vector<int64_t> sizes, std::vector<uint8_t> bytes);

struct WriteOptions {
  std::string folder = "archive";  // the archive's top-level folder
  bool overwrite = false;          // refuse to replace an existing file unless true
  int pickle_protocol = 2;          // only 2 is written (torch.save's default)
  uint64_t alignment = 64;          // record data alignment (a power of two)

  // Testing hooks for building deliberately broken files; never set them in production.
  bool check_tensors = true;        // refuse views, dtypes and sizes torch.load would reject
  std::vector<std::string> omit_records;  // generated record names (under the folder) to leave out
  std::vector<std::pair<std::string, std::vector<uint8_t>>> extra_records;  // written before "version"
  std::string location = "cpu";     // the persistent ids' location string
  // File variant only: the archive starts this many bytes into the file, after a sparse hole, so the
  // ZIP64 offset path can be exercised (with Python's zipfile) without writing 4 GiB.
  uint64_t testing_start_offset = 0;
};

// The layout decisions for one stored record (torch-save-format.md §2.4–2.6), exposed so the ZIP64
// rules can be unit-tested at offsets and sizes beyond 4 GiB without writing such files.
struct ZipEntryLayout {
  bool zip64_size = false;       // size >= 0xFFFFFFFF
  bool zip64_offset = false;     // local header offset >= 0xFFFFFFFF
  std::vector<uint8_t> local_extra;    // ZIP64 field (if any) + "FB" padding field
  std::vector<uint8_t> central_extra;  // ZIP64 field (if any)
  uint64_t padding = 0;          // "Z" bytes in the FB field
  uint64_t data_offset = 0;      // first data byte
  uint64_t descriptor_bytes = 0; // 0 (empty record), 16 or 24
  uint64_t end = 0;              // first byte after the data descriptor
  uint16_t flags = 0;            // 0x0808, or 0x0800 for an empty record
};
ZipEntryLayout plan_zip_entry(uint64_t header_offset, uint64_t name_bytes, uint64_t size,
                              uint64_t alignment = 64);

// Serialises to memory.
Result<std::vector<uint8_t>> write_torch_save(const WValue& root, const WriteOptions& opts);
// Serialises to `path` atomically. Errors: MG-IO-EXISTS, MG-IO-WRITE.
Status write_torch_save_file(const std::string& path, const WValue& root, const WriteOptions& opts);

}  // namespace mgcheck::format
