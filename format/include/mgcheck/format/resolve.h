// TARGET resolution (contract §1): an export directory, a single file, or a Hugging Face repo id found
// OFFLINE the way AudioCraft's loaders._get_state_dict + huggingface_hub.hf_hub_download would find it
// (musicgen-model.md §1.4, §1.5). Nothing here touches the network or opens the files' contents.
//
// Every error resolve_target returns is a usage error (exit 3): MG-IO-TARGET-NOT-FOUND (naming every
// place looked in), MG-IO-TARGET-URL (an https:// target), MG-IO-TARGET-EMPTY.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "mgcheck/format/finding.h"
#include "mgcheck/format/result.h"

namespace mgcheck::format {

// The environment resolution depends on, injectable so tests can lay out caches in temp dirs.
struct Env {
  std::optional<std::string> audiocraft_cache_dir;  // $AUDIOCRAFT_CACHE_DIR
  std::optional<std::string> hf_hub_cache;          // $HF_HUB_CACHE
  std::optional<std::string> hf_home;               // $HF_HOME
  std::optional<std::string> home;                  // $HOME
  // Reads the process environment (empty variables count as unset, as huggingface_hub treats them).
  static Env from_process();
  // The Hugging Face hub cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
  // nullopt only when none of these can be formed (no HOME).
  std::optional<std::string> hf_cache_dir() const;
};

inline constexpr const char* kLmFileName = "state_dict.bin";
inline constexpr const char* kCompressionFileName = "compression_state_dict.bin";

enum class TargetKind { directory, file, hf_repo };
const char* target_kind_name(TargetKind k) noexcept;

struct Target {
  TargetKind kind = TargetKind::directory;
  std::string arg;            // as given on the command line
  std::string repo_id;        // hf_repo: the repo id after the short-name map ("facebook/musicgen-small")
  // The LM and compression files. For `file`, both name the same file (what get_pretrained(file)
  // would do, pitfall §9.6); the pipeline decides how to use it. For `directory` and `hf_repo` a path is
  // filled even when the file is missing (then *_exists is false: MG-SCHEMA-MISSING-FILE later).
  std::string lm_path;
  std::string compression_path;
  bool lm_exists = false;
  bool compression_exists = false;
  // Notes for the report (deprecated short name, revision fallback, ...). Never errors.
  std::vector<Finding> notes;
  // Every place looked in, in order (for messages and --json).
  std::vector<std::string> looked_in;
};

// Resolves `arg`. Order: "" → error; https:// or http:// → MG-IO-TARGET-URL; an existing directory;
// an existing file; a deprecated short name (small/medium/large/melody/style → facebook/musicgen-<x>,
// with note MG-IO-TARGET-SHORT-NAME); a repo id looked up in $AUDIOCRAFT_CACHE_DIR then the HF cache.
// A repo id resolves when at least one of its two files is found.
Result<Target> resolve_target(std::string arg, const Env& env);

// True when `s` is a syntactically valid Hugging Face repo id ("name" or "org/name", [A-Za-z0-9._-],
// no "..", no leading/trailing '.' or '-'): anything else is never turned into a cache path.
bool is_valid_repo_id(const std::string& s) noexcept;

// Looks `filename` of `repo_id` up in one Hugging Face hub cache directory laid out as
// models--<org>--<name>/snapshots/<rev>/<filename>, refs/main naming <rev>. When refs/main is absent and
// exactly one snapshot holds the file, that snapshot is used. Every path tried is appended to
// `looked_in`. nullopt when not found (or repo_id invalid).
std::optional<std::string> find_in_hf_cache(const std::string& cache_dir, const std::string& repo_id,
                                            const std::string& filename,
                                            std::vector<std::string>& looked_in);

// The full offline lookup of one file of a repo, in AudioCraft's order: $AUDIOCRAFT_CACHE_DIR
// (<dir>/<repo_id>/<filename>, then the hub layout under it, which is what hf_hub_download(cache_dir=)
// writes), then the HF cache (Env::hf_cache_dir).
std::optional<std::string> find_repo_file(const std::string& repo_id, const std::string& filename,
                                          const Env& env, std::vector<std::string>& looked_in);

}  // namespace mgcheck::format
