// Internal: the protocol-2 pickler behind the writer. It emits what CPython's C pickler emits for the
// same Python objects (torch-save-format.md §3.1, §3.5), with storages as 5-item persistent ids.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mgcheck/format/dtype.h"
#include "mgcheck/format/result.h"
#include "mgcheck/format/writer.h"

namespace mgcheck::format::detail {

// One storage to write as record data/<key>, keys "0".."n-1" in first-use order.
struct PickledStorage {
  std::string key;
  DType dtype = DType::uint8;
  std::span<const uint8_t> bytes;  // points into the WValue tree (never copied)
};

struct PickledObject {
  std::vector<uint8_t> pickle;            // data.pkl
  std::vector<PickledStorage> storages;   // in key order
};

// Errors: MG-TENSOR-WRITE-INVALID (a tensor or value torch.load would not accept).
Result<PickledObject> pickle_for_torch_save(const WValue& root, const WriteOptions& opts);

}  // namespace mgcheck::format::detail
