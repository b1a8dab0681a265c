// The `quick` pipeline (contract §2): resolution, both files through the strict reader, export schema,
// xp.cfg, typed configs, inventory, cross-file consistency, weights scan and CRCs — no model is built and
// no libtorch is needed. `deep` runs it first and reuses what it produced (nothing is read twice).
#pragma once
#include <future>
#include <memory>
#include <optional>
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

// Runs every quick check on `target_arg`, filling `report` (command name left to the caller).
QuickResult run_quick(const std::string& target_arg, const QuickOptions& opts, Report& report);

// AudioCraft's MusicGen.generate default top_k (musicgen-model.md §5.1): above the card it crashes.
inline constexpr int64_t kAudiocraftDefaultTopK = 250;

}  // namespace mgcheck::harness
