// The `quick` pipeline (contract §2): resolution, both files through the strict reader, export schema,
// xp.cfg, typed configs, inventory, cross-file consistency, weights scan and CRCs — no model is built and
// no libtorch is needed. `deep` runs it first and reuses what it produced (nothing is read twice).
// `mgcheck quick`, `deep`, the tools and the fuzz target all run the same run_quick_checks: only where
// the bytes come from differs (ExportFiles), so the fuzzer exercises exactly the code that ships.
#pragma once
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/configs.h"
#include "mgcheck/format/resolve.h"
#include "mgcheck/format/schema.h"
#include "mgcheck/format/xpcfg.h"
#include "mgcheck/harness/report.h"

namespace mgcheck::harness {

struct QuickOptions {
  format::Env env = format::Env::from_process();
  bool verify_crc = true;
  // SHA-256 of each file for the JSON report's files[].sha256 (contract §6). It is the costliest pass
  // (~1.6 GB/s against ~10 GB/s for CRC-32), so it runs on its own thread, and the CLI asks for it only
  // when a report that carries it is written.
  bool hash = true;
  // The one read of the data for CRCs and the weights scan (format/byte_pass.h). 0 = its default read
  // size; 0 threads = up to 2 (the hardware's count). The fuzz target reads in small chunks with two
  // threads from the first byte, so records and tensors straddle read and group boundaries.
  size_t byte_pass_chunk_bytes = 0;
  unsigned byte_pass_threads = 0;
  std::optional<uint64_t> byte_pass_parallel_min_bytes;
};

// Where quick's files come from: the CLI and deep map them from disk (DiskFiles), the fuzz target and
// tests serve an export held in memory (MemoryFiles). Paths are the resolved target's, and the path a
// `pretrained` reference to a local export names.
class ExportFiles {
 public:
  virtual ~ExportFiles() = default;
  // True when `path` is a regular file (a `pretrained` reference is followed only then).
  virtual bool exists(const std::string& path) const = 0;
  // The bytes of `path`, named `path` in findings. Errors: MG-IO-OPEN, MG-IO-MMAP.
  virtual format::Result<std::unique_ptr<format::ByteSource>> open(const std::string& path) const = 0;
};

// The file system: MappedFile::open.
class DiskFiles final : public ExportFiles {
 public:
  bool exists(const std::string& path) const override;
  format::Result<std::unique_ptr<format::ByteSource>> open(const std::string& path) const override;
};

// Files held in memory under their paths. Non-owning: the bytes must outlive every source opened (and
// so the QuickResult built from them).
class MemoryFiles final : public ExportFiles {
 public:
  void add(const std::string& path, std::span<const uint8_t> bytes) { files_[path] = bytes; }
  bool exists(const std::string& path) const override { return files_.count(path) != 0; }
  format::Result<std::unique_ptr<format::ByteSource>> open(const std::string& path) const override;

 private:
  std::map<std::string, std::span<const uint8_t>> files_;
};

// One file of the export, as far as it could be read. `source` keeps the mapping alive for the views.
struct LoadedFile {
  std::string path;
  bool present = false;
  std::unique_ptr<format::ByteSource> source;
  std::optional<format::Checkpoint> checkpoint;
  format::ExportInfo info;
  std::optional<format::XpCfg> cfg;
  size_t file_index = 0;               // this file's entry in Report::files
  // The SHA-256 being computed on another thread (declared after `source`, so it is joined before the
  // source it reads is destroyed).
  std::future<std::optional<std::string>> digest;
};

struct QuickResult {
  bool resolved = false;                 // false: usage error already recorded in the report
  std::optional<format::Target> target;
  LoadedFile lm, compression;
  std::optional<format::LmConfig> lm_config;
  std::optional<format::CompressionConfig> compression_config;
  bool lm_inventory_ok = false;          // the LM file has exactly the expected tensors
  bool compression_inventory_ok = false;
  bool single_file = false;              // TARGET was one file (only its role was checked)
  // Ready for model building: the file read, config derived and inventory matched, no errors in it.
  bool lm_ready() const { return lm_config && lm_inventory_ok; }
  bool compression_ready() const { return compression_config && compression_inventory_ok; }
};

// Every quick check on an already resolved target whose files `files` serves: reading, schema, xp.cfg,
// typed configs, inventory, weights scan with CRCs, cross-file consistency, the top_k warning. Fills
// `report` (target, checks_run, findings, files, model; command name and rendering left to the caller).
QuickResult run_quick_checks(const format::Target& target, const ExportFiles& files, const QuickOptions& opts,
                             Report& report);

// `mgcheck quick TARGET`: resolves `target_arg` (a usage error is recorded in the report, resolved=false)
// and runs run_quick_checks on the disk.
QuickResult run_quick(const std::string& target_arg, const QuickOptions& opts, Report& report);

// AudioCraft's MusicGen.generate default top_k (musicgen-model.md §5.1): above the card it crashes.
inline constexpr int64_t kAudiocraftDefaultTopK = 250;

}  // namespace mgcheck::harness
