// A whole torch.save file, read strictly: container, pickle, and every tensor checked against its
// storage (torch-save-format.md §3.3–3.5, §6, §9.5). Tensors are views into the source's bytes.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/container.h"
#include "mgcheck/format/finding.h"
#include "mgcheck/format/limits.h"
#include "mgcheck/format/pickle.h"
#include "mgcheck/format/result.h"

namespace mgcheck::format {

// A checked tensor: metadata plus the bytes of its whole storage (never copied).
struct TensorView {
  DType dtype = DType::float32;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  int64_t storage_offset = 0;          // elements
  std::string storage_key;
  std::span<const uint8_t> storage;    // the whole storage record's bytes
  uint64_t storage_file_offset = 0;    // file offset of storage byte 0
  uint64_t numel = 0;
  bool contiguous = false;             // row-major dense strides
  // Bytes spanned by the view: [first_byte, first_byte + span_bytes) within `storage`.
  uint64_t first_byte = 0;
  uint64_t span_bytes = 0;
  // False when the tensor or its storage failed a check (an error finding says why): `storage` is then
  // empty and the element accessors return 0. Only valid tensors may be read.
  bool valid = false;
};

// A tensor reachable from the root, with its path of dict keys / list indices ("best_state/emb.0.weight").
struct NamedTensor {
  std::string path;        // components joined with '/'
  std::string key;         // last component (the state-dict key)
  uint32_t tensor = 0;     // index into Checkpoint::tensors
};

struct Checkpoint {
  std::string file;                  // display name / path
  uint64_t file_size = 0;
  ContainerKind kind = ContainerKind::unknown;
  std::string folder;                // zip archive folder ("" for legacy)
  std::vector<ZipRecord> records;    // zip only
  PickleResult pickle;               // the object pickle
  std::vector<TensorView> tensors;   // parallel to pickle.tensors
  std::vector<NamedTensor> named;    // every tensor reachable from the root, in traversal order
  std::string version_record;        // zip "version" content
};

struct ReadOptions {
  bool verify_crc = true;
  // When set and the read fails, receives what was read before the failure: container kind, folder and
  // records (zip), and the object pickle's partial result (every GLOBAL seen, storages and tensors rebuilt
  // so far; root kNoValue when the pickle itself failed). For a legacy file `pickle.globals` holds the
  // GLOBALs of every one of its pickles that ran (read_legacy); for a file of unknown kind, which torch.load
  // would unpickle, `pickle` is its first pickle with the GLOBALs of every pickle scanned
  // (scan_raw_pickles). `tensors`/`named` stay empty. For `inspect`, which shows what a refused file tried.
  Checkpoint* partial = nullptr;
};

// Reads and checks one file. A fatal problem is returned and not pushed to `findings` (the caller pushes
// it once, as for every parser); everything else is pushed to `findings`. Codes: MG-IO-*, MG-ZIP-*, MG-PICKLE-*, MG-TENSOR-*
// (docs/error-codes.d/tensor.md). A returned Checkpoint may still carry error findings (a storage of
// the wrong size, a view out of bounds, ...): check `findings.has_errors()`; tensors that failed a check
// have TensorView::valid == false.
Result<Checkpoint> read_checkpoint(const ByteSource& src, const Limits& limits, const ReadOptions& opts,
                                   Findings& findings);

// Element `i` (row-major over sizes) of a tensor as double / int64, for scans and small reads.
// Precondition: the view was checked (read_checkpoint guarantees every element is in range); as a
// safety net an index or element outside the storage reads as 0. Complex types give the real part;
// element_as_int truncates floats toward zero (NaN → 0, out of range → saturated).
double element_as_double(const TensorView& t, uint64_t linear_index) noexcept;
int64_t element_as_int(const TensorView& t, uint64_t linear_index) noexcept;

}  // namespace mgcheck::format
