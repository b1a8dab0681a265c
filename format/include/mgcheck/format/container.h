// Container detection and the record-level view of a torch.save file (torch-save-format.md §1, §2, §5).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/finding.h"
#include "mgcheck/format/limits.h"
#include "mgcheck/format/result.h"

namespace mgcheck::format {

enum class ContainerKind : uint8_t { zip, legacy, torchscript, tar, preview_pytorch1, unknown };
const char* container_kind_name(ContainerKind k) noexcept;

// Decides from the first bytes exactly as torch.load does: "PK\3\4" → zip (TorchScript is decided
// later, from its records); "PYTORCH1" → preview (refused); a POSIX tar header → tar (refused);
// the whole legacy magic pickle as torch.save writes it at protocols 2..5 (80 0p [95 <13 as u64>]
// 8A 0A 6C FC 9C 46 F9 20 6A A8 50 19 2E) → legacy; anything else (including Git LFS pointers, HTML pages
// and raw pickles) → unknown. `head` may be the whole file; 512 bytes suffice. torch.load unpickles every
// non-zip file, so read_checkpoint also runs an `unknown` file through the pickle machine
// (scan_raw_pickles, legacy.h): a magic number framed some other way is still read as legacy, and a raw
// pickle's foreign GLOBALs and calls are `unsafe` findings.
ContainerKind sniff_container(std::span<const uint8_t> head) noexcept;

// The finding for a container mgcheck refuses (`kind` other than zip / legacy), with a specific message
// for Git LFS pointers (MG-IO-LFS-POINTER), HTML pages (MG-IO-HTML), empty files (MG-IO-EMPTY), tar
// (MG-IO-TAR), the PYTORCH1 preview (MG-IO-PYTORCH1), TorchScript (MG-ZIP-TORCHSCRIPT, `unsafe`) and
// anything else (MG-IO-UNKNOWN-FORMAT). `file` fills Finding::file; the offset is 0.
Finding unsupported_container_finding(ContainerKind kind, std::span<const uint8_t> head,
                                      const std::string& file);

// One record of a zip archive (name relative to the archive folder), located and verified.
struct ZipRecord {
  std::string name;            // e.g. "data.pkl", "data/0", "version"
  uint64_t header_offset = 0;  // local file header
  uint64_t data_offset = 0;    // first data byte
  uint64_t size = 0;           // stored == uncompressed size
  uint32_t crc32 = 0;          // from the central directory
  bool crc_ok = false;         // verified against the data
  bool crc_verifiable = false; // stored and not aliasing an earlier record: its CRC is (or can be) checked
  bool zip64 = false;
};

struct ZipArchive {
  std::string folder;                 // prefix of central-directory entry 0
  std::vector<ZipRecord> records;     // central-directory order
  uint64_t central_directory_offset = 0;
  uint64_t central_directory_size = 0;
  bool torchscript = false;           // constants.pkl / code/ / ... present
  // Indices into `records` sorted by name, filled by read_zip so find() is O(log n); when it does not
  // match `records` (an archive assembled by hand) find() falls back to a linear scan.
  std::vector<uint32_t> by_name;
  const ZipRecord* find(std::string_view name) const;  // exact (case-sensitive) match
  std::span<const uint8_t> data(const ByteSource& src, const ZipRecord& r) const {
    return src.bytes().subspan(r.data_offset, r.size);
  }
};

struct ZipOptions {
  bool verify_crc = true;
};

// Strict zip reader (§2, §9.1–9.3): bounded EOCD search, ZIP64 end record and locator, CD entries
// cross-checked with local headers, stored only, data descriptors, one folder, safe names, no duplicates
// (case-folded), no overlaps/gaps, required records, CRC-32 via libdeflate. Non-fatal problems go to
// `findings`; the first fatal one is returned (not pushed: the caller pushes it). An archive returned ok
// may still have error findings (bad CRC, gaps, ...): check `findings`. Codes: MG-ZIP-* (docs/error-codes.d/zip.md).
Result<ZipArchive> read_zip(const ByteSource& src, const Limits& limits, const ZipOptions& opts,
                            Findings& findings);

// The finding for a record whose data has CRC-32 `computed` (nullopt when it matches): MG-ZIP-CRC, or the
// warning MG-ZIP-CRC-ZERO when the stored CRC is 0 for non-empty data. read_zip and a deferred pass over
// the bytes (byte_pass.h) report through this one function.
std::optional<Finding> crc_finding(const ZipRecord& rec, uint32_t computed, const std::string& file);

// CRC-32 (zlib polynomial) via libdeflate.
uint32_t crc32(std::span<const uint8_t> bytes, uint32_t seed = 0) noexcept;

}  // namespace mgcheck::format
