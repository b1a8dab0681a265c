// The legacy (pre-1.6) "stacked pickles" format (torch-save-format.md §5): magic, protocol version,
// sys_info, the object pickle, the storage key list, then raw storages back to back, each prefixed by an
// 8-byte little-endian element count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/finding.h"
#include "mgcheck/format/limits.h"
#include "mgcheck/format/pickle.h"
#include "mgcheck/format/result.h"

namespace mgcheck::format {

struct LegacyStorage {
  std::string key;
  uint64_t count_offset = 0;  // file offset of the 8-byte element count
  uint64_t data_offset = 0;   // first data byte
  uint64_t numel = 0;         // from the count field
  uint64_t bytes = 0;         // numel × itemsize of the storage's dtype
};

struct LegacyArchive {
  PickleResult object;                 // pickle #4, with 6-item persistent ids
  uint64_t object_offset = 0;          // file offset of pickle #4
  std::vector<LegacyStorage> storages; // in the order of pickle #5
  uint64_t end = 0;                    // end of the last storage
};

// Codes: MG-LEGACY-* are spelled MG-ZIP-* / MG-PICKLE-* / MG-TENSOR-* by layer (contract §6 layers);
// legacy-specific ones use MG-IO-LEGACY-*.
Result<LegacyArchive> read_legacy(const ByteSource& src, const Limits& limits, Findings& findings);

}  // namespace mgcheck::format
