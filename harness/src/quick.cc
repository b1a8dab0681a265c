#include "mgcheck/harness/quick.h"

#include <algorithm>
#include <filesystem>
#include <future>
#include <thread>

#include "mgcheck/format/byte_pass.h"
#include "mgcheck/format/inventory.h"
#include "mgcheck/format/weights_scan.h"
#include "mgcheck/harness/file_info.h"

namespace mgcheck::harness {

using format::FileRole;
using nlohmann::json;

namespace {

// Which role a lone file plays: a compression export names `compression_model` (or is a `pretrained`
// reference); anything else is checked as an LM file (the schema then says what is wrong with it).
FileRole guess_role(const format::Checkpoint& ck, const format::Limits& limits) {
  const auto& arena = ck.pickle.arena;
  format::ValueId root = ck.pickle.root;
  if (arena.dict_get(root, "pretrained") != format::kNoValue) return FileRole::compression;
  format::ValueId cfg = arena.dict_get(root, "xp.cfg");
  if (arena.is_string(cfg)) {
    auto parsed = format::XpCfg::parse(arena[cfg].s, ck.file, limits);
    if (parsed && parsed->has("compression_model") && !parsed->has("transformer_lm")) return FileRole::compression;
  }
  return FileRole::lm;
}

// Maps and reads one file; pushes IO/container/pickle/tensor findings. False when unreadable.
// CRCs are not verified here: check_file's byte pass does them together with the weights scan, in one
// read of the data. A file the reader refuses gets its record CRCs checked by a zip read of its own.
bool read_file(LoadedFile& f, const ExportFiles& files, Report& report, const QuickOptions& opts) {
  auto opened = files.open(f.path);
  if (!opened) {
    report.findings.push(opened.error());
    return false;
  }
  f.source = std::move(opened).value();
  FileInfo info;
  info.path = f.path;
  info.bytes = f.source->size();
  if (opts.hash)
    f.digest = std::async(std::launch::async, [src = f.source.get()] { return sha256_hex(*src); });
  format::ReadOptions ro;
  ro.verify_crc = false;
  auto ck = format::read_checkpoint(*f.source, report.limits, ro, report.findings);
  if (ck) {
    info.format = format::container_kind_name(ck->kind);
    info.tensors = ck->named.size();
    f.checkpoint = std::move(ck).value();
  } else {
    report.findings.push(ck.error());
    if (opts.verify_crc && format::sniff_container(f.source->bytes()) == format::ContainerKind::zip) {
      format::Findings zip_findings;
      zip_findings.set_cap(static_cast<size_t>(report.limits.max_findings));
      format::ZipOptions zo;
      (void)format::read_zip(*f.source, report.limits, zo, zip_findings);
      for (const auto& z : zip_findings.items())
        if (z.code == "MG-ZIP-CRC" || z.code == "MG-ZIP-CRC-ZERO") report.findings.push(z);
    }
  }
  f.file_index = report.files.size();
  report.files.push_back(info);
  return f.checkpoint.has_value();
}

// Joins the file's SHA-256 thread and records the digest.
void finish_digest(LoadedFile& f, Report& report) {
  if (!f.digest.valid()) return;
  auto d = f.digest.get();
  if (f.file_index < report.files.size() && d) report.files[f.file_index].sha256 = *d;
}

std::vector<format::FoundTensor> found_tensors(const format::Checkpoint& ck, const std::string& prefix) {
  std::vector<format::FoundTensor> out;
  for (const auto& n : ck.named) {
    if (n.path.rfind(prefix, 0) != 0) continue;
    out.push_back({n.path.substr(prefix.size()), ck.tensors.at(n.tensor).sizes});
  }
  return out;
}

json lm_summary(const format::LmConfig& c, uint64_t params) {
  json conditioners = json::array();
  for (const auto& k : c.conditioners) conditioners.push_back({{"name", k.name}, {"model", k.model}});
  return {{"dim", c.dim}, {"num_heads", c.num_heads}, {"num_layers", c.num_layers}, {"ffn_dim", c.ffn_dim()},
          {"n_q", c.n_q}, {"card", c.card}, {"activation", c.activation}, {"norm_first", c.norm_first},
          {"positional_embedding", c.positional_embedding}, {"custom_attention", c.custom_attention()},
          {"cross_attention", c.cross_attention}, {"pattern", c.pattern.modeling}, {"delays", c.pattern.delays},
          {"cfg_coef", c.cfg_inference_coef}, {"interleave_stereo", c.interleave_stereo},
          {"conditioners", conditioners}, {"fuser_cross", c.fuser.cross}, {"fuser_prepend", c.fuser.prepend},
          {"segment_duration", c.segment_duration}, {"parameters", params}};
}

json compression_summary(const format::CompressionConfig& c, uint64_t params) {
  return {{"model", c.compression_model}, {"sample_rate", c.sample_rate}, {"channels", c.channels},
          {"frame_rate", c.frame_rate()}, {"hop_length", c.hop_length()}, {"n_q", c.rvq_n_q},
          {"bins", c.rvq_bins}, {"dimension", c.seanet.dimension}, {"n_filters", c.seanet.n_filters},
          {"ratios", c.seanet.ratios}, {"lstm", c.seanet.lstm}, {"pad_mode", c.seanet.pad_mode},
          {"causal", c.causal}, {"renormalize", c.renormalize}, {"parameters", params}};
}

// Schema, xp.cfg, typed config, inventory and weights of one readable file.
// A config that describes more tensors than a file may hold (max_tensors) is corrupt (num_layers 10^12):
// one finding, and no inventory diff against the cut list.
void too_many_expected(const std::string& path, std::vector<format::ExpectedTensor>& expected, Report& report) {
  format::Finding e = format::make_error(
      "MG-CONFIG-INVALID-VALUE",
      "xp.cfg describes more than max_tensors (" + std::to_string(report.limits.max_tensors) +
          ") tensors: a layer or codebook count is corrupt",
      "check num_layers, n_q and n_residual_layers in xp.cfg; no checkpoint holds this many tensors");
  e.file = path;
  e.name = "xp.cfg";
  report.findings.push(std::move(e));
  expected.clear();
}

void check_file(LoadedFile& f, FileRole role, QuickResult& q, Report& report, const QuickOptions& opts) {
  format::Checkpoint& ck = *f.checkpoint;
  f.info = role == FileRole::lm ? format::classify_and_check_lm(ck, report.findings)
                                : format::classify_and_check_compression(ck, opts.env, report.findings);
  if (f.info.xp_cfg) {
    auto cfg = format::XpCfg::parse(*f.info.xp_cfg, f.path, report.limits);
    if (cfg) {
      f.cfg = std::move(cfg).value();
    } else {
      report.findings.push(cfg.error());
    }
  }
  std::vector<format::ExpectedTensor> expected;
  format::InventoryRules rules;
  if (f.cfg && (f.info.kind == format::ExportKind::lm_export ||
                f.info.kind == format::ExportKind::compression_export)) {
    if (role == FileRole::lm) {
      auto c = format::lm_config_from_xpcfg(*f.cfg, report.findings);
      if (c) {
        q.lm_config = std::move(c).value();
        bool complete = true;
        expected = format::expected_lm_tensors(*q.lm_config, report.limits.max_tensors, complete);
        if (!complete) too_many_expected(f.path, expected, report);
        rules = format::lm_inventory_rules(*q.lm_config);
        report.model["lm"] = lm_summary(*q.lm_config, format::count_elements(expected));
      } else {
        report.findings.push(c.error());  // returned, not pushed, by the derivation
      }
    } else {
      auto c = format::compression_config_from_xpcfg(*f.cfg, report.findings);
      if (c) {
        q.compression_config = std::move(c).value();
        bool complete = true;
        expected = format::expected_compression_tensors(*q.compression_config, report.limits.max_tensors, complete);
        if (!complete) too_many_expected(f.path, expected, report);
        report.model["compression"] = compression_summary(*q.compression_config, format::count_elements(expected));
      } else {
        report.findings.push(c.error());
      }
    }
  }
  if (!expected.empty() && f.info.best_state_ok) {
    bool ok = format::compare_inventory(expected, found_tensors(ck, f.info.best_state_prefix), f.path,
                                        report.findings, rules);
    (role == FileRole::lm ? q.lm_inventory_ok : q.compression_inventory_ok) = ok;
  }
  // One read of the data for the record CRCs and the weights scan (byte_pass.h).
  format::BytePassOptions bo;
  bo.verify_crc = opts.verify_crc;
  bo.scan = f.info.best_state_ok;
  bo.path_prefix = f.info.best_state_prefix;
  bo.threads = opts.byte_pass_threads ? opts.byte_pass_threads
                                      : std::max(1u, std::min(2u, std::thread::hardware_concurrency()));
  if (opts.byte_pass_chunk_bytes) bo.chunk_bytes = opts.byte_pass_chunk_bytes;
  if (opts.byte_pass_parallel_min_bytes) bo.parallel_min_bytes = *opts.byte_pass_parallel_min_bytes;
  format::BytePass pass = format::byte_pass(*f.source, *f.checkpoint, bo, report.findings);
  if (f.info.best_state_ok && !pass.read_failed) {
    format::WeightsScanOptions wo;
    // musicgen-model.md §1.2: AudioCraft writes the LM in float16 and EnCodec in float32.
    wo.expected_float_dtype = role == FileRole::lm ? format::DType::float16 : format::DType::float32;
    wo.path_prefix = f.info.best_state_prefix;
    wo.precomputed = &pass.counts;
    (void)format::scan_weights(ck, wo, report.findings);
  }
}

void load_and_check(LoadedFile& f, FileRole role, const ExportFiles& files, QuickResult& q, Report& report,
                    const QuickOptions& opts) {
  if (!f.present) {
    report.findings.push(format::missing_file_finding(role, f.path));
    return;
  }
  if (!read_file(f, files, report, opts)) return;
  check_file(f, role, q, report, opts);
  // A `pretrained` reference to a local AudioCraft export is followed once, as
  // CompressionModel.get_pretrained does (mirrors audiocraft/models/encodec.py).
  if (role == FileRole::compression && f.info.kind == format::ExportKind::pretrained_reference &&
      f.info.pretrained_resolution &&
      f.info.pretrained_resolution->how == format::PretrainedResolution::How::local_path) {
    LoadedFile target;
    target.path = f.info.pretrained_resolution->path;
    target.present = files.exists(target.path);
    if (target.present && read_file(target, files, report, opts)) {
      check_file(target, role, q, report, opts);
      finish_digest(f, report);
      f = std::move(target);
    }
  }
}

}  // namespace

bool DiskFiles::exists(const std::string& path) const {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

format::Result<std::unique_ptr<format::ByteSource>> DiskFiles::open(const std::string& path) const {
  auto mapped = format::MappedFile::open(path);
  if (!mapped) return std::move(mapped).error();
  return std::unique_ptr<format::ByteSource>(std::move(mapped).value());
}

format::Result<std::unique_ptr<format::ByteSource>> MemoryFiles::open(const std::string& path) const {
  auto it = files_.find(path);
  if (it == files_.end()) {
    format::Finding f = format::make_error("MG-IO-OPEN", "cannot open: " + path + " (no such file)",
                                           "check the path and its permissions");
    f.file = path;
    return f;
  }
  return std::unique_ptr<format::ByteSource>(
      std::make_unique<format::MemorySource>(it->second.data(), it->second.size(), path));
}

QuickResult run_quick(const std::string& target_arg, const QuickOptions& opts, Report& report) {
  report.target = target_arg;
  auto t = format::resolve_target(target_arg, opts.env);
  if (!t) {
    report.checks_run = {"IO", "ZIP", "PICKLE", "TENSOR", "SCHEMA", "CONFIG", "SHAPE", "WEIGHTS"};
    report.findings.push(t.error());
    report.forced = Verdict::usage;
    return QuickResult{};
  }
  return run_quick_checks(t.value(), DiskFiles{}, opts, report);
}

QuickResult run_quick_checks(const format::Target& target, const ExportFiles& files, const QuickOptions& opts,
                             Report& report) {
  QuickResult q;
  report.target = target.arg;
  report.checks_run = {"IO", "ZIP", "PICKLE", "TENSOR", "SCHEMA", "CONFIG", "SHAPE", "WEIGHTS"};
  q.resolved = true;
  q.target = target;
  for (const auto& n : q.target->notes) report.findings.push(n);
  if (q.target->kind == format::TargetKind::file) {
    // One file: check it in the role its content says (contract §1: `mgcheck quick FILE`).
    q.single_file = true;
    LoadedFile f;
    f.path = q.target->lm_path;
    f.present = true;
    if (!read_file(f, files, report, opts)) return q;
    FileRole role = guess_role(*f.checkpoint, report.limits);
    check_file(f, role, q, report, opts);
    finish_digest(f, report);
    (role == FileRole::lm ? q.lm : q.compression) = std::move(f);
  } else {
    q.lm.path = q.target->lm_path;
    q.lm.present = q.target->lm_exists;
    q.compression.path = q.target->compression_path;
    q.compression.present = q.target->compression_exists;
    load_and_check(q.lm, FileRole::lm, files, q, report, opts);
    load_and_check(q.compression, FileRole::compression, files, q, report, opts);
    if (q.lm_config && q.compression_config)
      format::check_consistency(*q.lm_config, *q.compression_config, report.findings, q.lm.path,
                                q.compression.path);
  }
  // Joined last: each file's hash overlaps the checks of both files.
  finish_digest(q.lm, report);
  finish_digest(q.compression, report);
  if (q.lm_config && q.lm_config->card < kAudiocraftDefaultTopK) {
    format::Finding w = format::make_warning(
        "MG-CONFIG-TOPK-EXCEEDS-CARD",
        "card " + std::to_string(q.lm_config->card) + " < AudioCraft's default top_k " +
            std::to_string(kAudiocraftDefaultTopK) +
            ": MusicGen.generate with default parameters fails on this model (selected index k out of range)",
        "generate with top_k <= " + std::to_string(q.lm_config->card) +
            " (set_generation_params(top_k=...)), or document it for users of this export");
    w.file = q.lm.path;
    report.findings.push(w);
  }
  return q;
}

}  // namespace mgcheck::harness
