// One streaming pass over the bytes of a checkpoint the reader has already checked structurally: the
// CRC-32 of every zip record (when read_checkpoint ran with ReadOptions::verify_crc = false) and the
// NaN / Inf / zero / subnormal counts of every contiguous floating tensor, read in file order through
// ByteSource::copy_out into one reused buffer. For a mapped file that is pread(2): the data are never
// touched through the mapping, whose page faults cost more than the read itself (docs/performance.md).
// The findings are the ones read_zip and scan_weights give for the same bytes (the same functions make
// them); tests/format/byte_pass_test.cc checks the two routes agree.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/finding.h"
#include "mgcheck/format/weights_scan.h"

namespace mgcheck::format {

struct BytePassOptions {
  bool verify_crc = true;        // records with ZipRecord::crc_verifiable
  bool scan = true;              // floating tensors (contiguous, element-aligned in the file)
  std::string path_prefix;       // tensors to scan, as WeightsScanOptions::path_prefix
  size_t chunk_bytes = 4u << 20; // read size; rounded up to a multiple of 64 (no element straddles two)
  // Threads for large files: the items are cut into `threads` groups at record boundaries (no item
  // spans two groups), each read and checked by its own thread with its own buffer; findings are merged
  // in file order, so the result does not depend on the thread count. Files with fewer bytes to read
  // than `parallel_min_bytes` use one thread.
  unsigned threads = 1;
  uint64_t parallel_min_bytes = 64u << 20;
};

struct BytePass {
  // By tensor index; nullopt where this pass did not scan the tensor (a strided view, an unaligned
  // storage, a failed read): scan_weights reads those through the mapping as before.
  std::vector<std::optional<ScannedCounts>> counts;
  uint64_t bytes_read = 0;
  uint32_t records_verified = 0;
  bool read_failed = false;      // MG-IO-READ was reported; counts of unfinished tensors are nullopt
};

// Sets ZipRecord::crc_ok in ck.records for the records it verifies. Findings: MG-ZIP-CRC,
// MG-ZIP-CRC-ZERO (crc_finding, container.h), MG-IO-READ (the pass stops at the first failed read).
BytePass byte_pass(const ByteSource& src, Checkpoint& ck, const BytePassOptions& opts, Findings& findings);

}  // namespace mgcheck::format
