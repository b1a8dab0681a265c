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
// Every one of the five pickles goes through the non-executing machine, the magic number's included
// (torch.load unpickles it first); when a header pickle is wrong the remaining ones are still scanned and
// their `unsafe` findings pushed before the fatal finding is returned. Like every parser, read_legacy
// returns its fatal finding without pushing it: the caller pushes it once.
// `partial`, when set and the read fails, receives what the machine saw before the failure, for reports
// that show what a refused file tried: the object pickle's result (complete, or as far as it ran; empty
// when it never ran) with `globals` replaced by every GLOBAL of every pickle run, in file order (the
// object pickle's global values still refer to their own entries).
Result<LegacyArchive> read_legacy(const ByteSource& src, const Limits& limits, Findings& findings,
                                  PickleResult* partial = nullptr);

// True when `r`, a pickle run through the machine, is torch's legacy magic number 0x1950A86A20F9469CFC6C
// (however framed: torch.save writes it with PROTO 2..5, and FRAME from protocol 4 on).
bool is_legacy_magic(const PickleResult& r) noexcept;

// torch.load unpickles any file that is not a zip (the legacy path), so a raw pickle's payload would run.
// Runs up to five stacked pickles from offset 0 (the legacy layout; a raw pickle is one) through the
// machine, never executing anything, and pushes only their `unsafe` findings (foreign GLOBALs,
// code-executing calls, with offsets) to `findings`; it stops at the first pickle that does not parse.
struct RawPickleScan {
  size_t pickles = 0;         // pickles that parsed to STOP
  bool legacy_magic = false;  // the first one is the legacy magic number
};
// `partial`, when set, receives the first pickle's result (complete, or as far as it ran) with `globals`
// replaced by every GLOBAL of every pickle scanned, in file order.
RawPickleScan scan_raw_pickles(const ByteSource& src, const Limits& limits, Findings& findings,
                               PickleResult* partial = nullptr);

}  // namespace mgcheck::format
