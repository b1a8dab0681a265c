// `mgcheck export` (contract §2): AudioCraft's export_lm / export_encodec /
// export_pretrained_compression_model without Python (musicgen-model.md §1.1).
//
// Reads a raw training checkpoint through read_checkpoint (nothing executed: its omegaconf config is
// inert data), and writes {best_state: {name: Tensor} (plain dict, same key order, tensors bit-identical),
// xp.cfg: YAML text as OmegaConf.to_yaml writes it, version: kExportVersion, exported: True} with
// write_torch_save_file (atomic; refuses to overwrite unless `force`).
//
// `version`: mgcheck writes the AudioCraft version whose export code it mirrors (kExportVersion,
// "1.4.0a2", the version string in the reference fixtures), not its own version: AudioCraft's loaders
// never read it, and the value then says which exporter's behaviour the file follows.
#pragma once
#include <string>
#include <vector>

#include "mgcheck/format/finding.h"
#include "mgcheck/format/limits.h"
#include "mgcheck/format/result.h"
#include "mgcheck/format/value.h"

namespace mgcheck::format {

inline constexpr const char* kExportVersion = "1.4.0a2";

enum class ExportWhat { lm, encodec, pretrained };

struct ExportOptions {
  bool force = false;  // replace an existing output file
  Limits limits;       // for reading the input checkpoint
};

struct ExportResult {
  std::string output;          // OUTDIR/state_dict.bin or OUTDIR/compression_state_dict.bin
  std::string source;          // "fsdp_best_state.model", "best_state.model", "pretrained", "re-saved"
  size_t tensors = 0;
  uint64_t tensor_bytes = 0;
  std::string xp_cfg;          // the YAML text written (empty for pretrained)
};

// export lm / export encodec: `checkpoint` is a raw training checkpoint file. Creates `outdir` if
// needed. Errors (returned; also the reason export did not write): MG-IO-* from reading,
// MG-SCHEMA-EXPORT-* for a checkpoint that is not a training checkpoint or lacks weights/config,
// MG-IO-EXISTS / MG-IO-WRITE from the writer. Non-fatal notes go to `findings`.
Result<ExportResult> export_model(ExportWhat what, const std::string& checkpoint, const std::string& outdir,
                                  const ExportOptions& opts, Findings& findings);

// export pretrained: NAME is a compression model name (facebook/encodec_32khz, dac_44khz, ...) written
// as {pretrained: NAME, exported: True, version}; or, when NAME is an existing file (or a directory
// holding compression_state_dict.bin), that exported file re-saved unchanged after checking that it has
// best_state, xp.cfg, version and exported (mirrors the assert in export.py).
Result<ExportResult> export_pretrained(const std::string& name, const std::string& outdir,
                                       const ExportOptions& opts, Findings& findings);

// OmegaConf.to_yaml(cfg) for a plain tree (dict / list / str / int / float / bool / None, as
// omegaconf_to_plain builds it): PyYAML's block-style emitter with OmegaConf's str representer
// (strings that read as bool/int/float are single-quoted), keys in insertion order, interpolations
// unquoted and unresolved. Error MG-SCHEMA-EXPORT-CFG for a value YAML cannot carry (bytes, tensors,
// objects, non-str/int keys), or a tree past the xp.cfg budgets (max_config_depth, _nodes, _bytes).
Result<std::string> omegaconf_to_yaml(const ValueArena& arena, ValueId root, const Limits& limits = {});

}  // namespace mgcheck::format
