// The export schema (contract §6, musicgen-model.md §1.1–1.5): what AudioCraft's loaders accept in
// state_dict.bin / compression_state_dict.bin, checked on the inert value tree of a checkpoint.
//
// Accepted: {best_state, xp.cfg, version, exported} (export_lm / export_encodec), the first-release
// {best_state, xp.cfg}, plain dicts and OrderedDicts; for compression also {pretrained, exported,
// version} (export_pretrained_compression_model). Raw training checkpoints are recognised and refused
// with a hint to export them first.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/format/checkpoint.h"
#include "mgcheck/format/finding.h"
#include "mgcheck/format/resolve.h"
#include "mgcheck/format/value.h"

namespace mgcheck::format {

enum class ExportKind {
  lm_export,             // {best_state, xp.cfg[, version, exported]} checked as an LM file
  compression_export,    // the same layout, checked as a compression (EnCodec) file
  pretrained_reference,  // {pretrained: NAME, exported, version}
  training_checkpoint,   // a raw flashy/AudioCraft training checkpoint (refused)
  invalid,               // something else: the findings say what
};
const char* export_kind_name(ExportKind k) noexcept;

enum class FileRole { lm, compression };

// How a `pretrained` reference resolves offline, mirroring CompressionModel.get_pretrained.
struct PretrainedResolution {
  enum class How {
    local_path,      // an existing local path: AudioCraft loads it with load_compression_model
    hf_transformers, // found in the local HF cache in transformers' EncodecModel layout
    debug_model,     // "debug_compression_model": builders' random debug EnCodec
    unresolved,      // AudioCraft would need the network (Hugging Face, or the dac package's download)
  };
  How how = How::unresolved;
  std::string name;
  std::string path;                      // local_path: the file to load (dir/compression_state_dict.bin)
  std::string hf_snapshot;               // hf_transformers: the snapshot directory
  std::vector<std::string> hf_files;     // hf_transformers: files found (config.json, model.safetensors, ...)
  // hf_transformers: a few fields of config.json, when it parses ("sampling_rate=32000", ...).
  std::vector<std::string> hf_config_summary;
  std::vector<std::string> looked_in;
};

struct ExportInfo {
  ExportKind kind = ExportKind::invalid;
  FileRole role = FileRole::lm;
  ValueId root = kNoValue;
  ValueId best_state = kNoValue;            // the state dict (a dict of str → tensor) when usable
  std::string best_state_prefix;            // NamedTensor::path prefix of its tensors ("best_state/")
  bool best_state_ok = false;               // present, a dict, every key a str and every value a tensor
  std::optional<std::string> xp_cfg;        // the YAML text, when xp.cfg is a str
  std::optional<std::string> version;       // when present and a str
  std::optional<bool> exported;             // when present and a bool
  bool first_release = false;               // {best_state, xp.cfg} without version / exported
  std::optional<std::string> pretrained;    // the reference name, when a str
  std::optional<PretrainedResolution> pretrained_resolution;
  // Training checkpoints: which export subcommand the hint names ("lm" or "encodec").
  std::string training_kind;
};

// Checks the LM file (state_dict.bin). Findings: MG-SCHEMA-*.
ExportInfo classify_and_check_lm(const Checkpoint& ckpt, Findings& findings);

// Checks the compression file (compression_state_dict.bin), resolving a `pretrained` reference
// offline with `env` (HF cache) relative to the current directory, as AudioCraft does.
ExportInfo classify_and_check_compression(const Checkpoint& ckpt, const Env& env, Findings& findings);

// The finding for a file of an export that does not exist (AudioCraft: FileNotFoundError, or a
// failed hf_hub_download): MG-SCHEMA-MISSING-FILE naming `path`.
Finding missing_file_finding(FileRole role, const std::string& path);

// Resolves a `pretrained` name as CompressionModel.get_pretrained would, offline. Pushes nothing.
PretrainedResolution resolve_pretrained(const std::string& name, const Env& env);

// True when the tree looks like a raw training checkpoint (musicgen-model.md §1.3): xp.cfg that is
// not a str (a pickled DictConfig), best_state / fsdp_best_state of the form {'model': {...}}, or
// model + optimizer at the top level, or omegaconf/flashy globals in the pickle.
bool looks_like_training_checkpoint(const Checkpoint& ckpt);

}  // namespace mgcheck::format
