// Container detection and the record-level view of a torch.save file (torch-save-format.md §1, §2, §5).
#pragma once
#include <cstdint>
#include <span>
#include <string>
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
// a pickle PROTO 2 + LONG1 magic → legacy; Git LFS pointer / HTML → unknown with a specific finding.
ContainerKind sniff_container(std::span<const uint8_t> head) noexcept;

// One record of a zip archive (name relative to the archive folder), located and verified.
struct ZipRecord {
  std::string name;            // e.g. "data.pkl", "data/0", "version"
  uint64_t header_offset = 0;  // local file header
  uint64_t data_offset = 0;    // first data byte
  uint64_t size = 0;           // stored == uncompressed size
  uint32_t crc32 = 0;          // from the central directory
  bool crc_ok = false;         // verified against the data
  bool zip64 = false;
};

struct ZipArchive {
  std::string folder;                 // prefix of central-directory entry 0
  std::vector<ZipRecord> records;     // central-directory order
  uint64_t central_directory_offset = 0;
  uint64_t central_directory_size = 0;
  bool torchscript = false;           // constants.pkl / code/ / ... present
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
// `findings`; the first fatal one is returned. Codes: MG-ZIP-*.
Result<ZipArchive> read_zip(const ByteSource& src, const Limits& limits, const ZipOptions& opts,
                            Findings& findings);

// CRC-32 (zlib polynomial) via libdeflate.
uint32_t crc32(std::span<const uint8_t> bytes, uint32_t seed = 0) noexcept;

}  // namespace mgcheck::format
