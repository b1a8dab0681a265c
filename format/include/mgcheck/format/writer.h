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
  int pickle_protocol = 2;
};

// Serialises to memory.
Result<std::vector<uint8_t>> write_torch_save(const WValue& root, const WriteOptions& opts);
// Serialises to `path` atomically. Errors: MG-IO-EXISTS, MG-IO-WRITE.
Status write_torch_save_file(const std::string& path, const WValue& root, const WriteOptions& opts);

}  // namespace mgcheck::format
