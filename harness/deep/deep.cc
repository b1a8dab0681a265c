// `mgcheck deep`: quick first, then the matrix of cells (contract §4), each run in isolation, the
// reduced-precision comparison with fp32, the reference comparison, WAVs and the HTML page.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <optional>

#include "mgcheck/harness/html_report.h"
#include "mgcheck/harness/matrix.h"
#include "mgcheck/harness/quick.h"
#include "mgcheck/model/generate.h"
#include "mgcheck/model/weights.h"
#include "reference_stages.h"
#include "torch_session.h"

namespace mgcheck::harness {

using deep::TextState;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What the fp32 cell of (device, config) produced, for the reduced-precision comparison.
struct Baseline {
  torch::Tensor codes, audio;      // CPU
  torch::Tensor pred_logits, pred_mask;  // compute_predictions of item 0 on `codes`, CPU float32
};

struct Built {
  std::optional<model::LmModel> lm;
  std::optional<model::Encodec> encodec;
};

class DeepRun {
 public:
  DeepRun(const MatrixOptions& o, Report& r) : o_(o), report_(r) {}

  void run(const std::string& target) {
    report_.command = "deep";
    report_.target = target;
    const std::string devices = join(o_.devices);
    report_.environment = deep::environment(o_.threads, o_.blas_threads, devices);
    q_ = run_quick(target, QuickOptions{}, report_);
    report_.command = "deep";
    report_.environment = deep::environment(o_.threads, o_.blas_threads, devices);
    if (!q_.resolved) return;
    for (const char* c : {"MODEL", "AUDIO"}) report_.checks_run.push_back(c);
    if (!o_.reference.empty()) report_.checks_run.push_back("REF");
    if (!prepare_text_state()) return;
    card_ = q_.lm_config ? q_.lm_config->card : 0;

    auto cells = plan_cells(o_);
    for (const auto& device : o_.devices) {
      for (const auto& precision : o_.precisions) run_group(device, precision, cells);
    }
    if (!o_.reference.empty()) reference();
    if (!o_.html.empty()) html();
  }

 private:
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  }

  void progress(const std::string& line) const {
    if (o_.progress) std::cerr << "mgcheck deep: " << line << "\n" << std::flush;
  }

  bool prepare_text_state() {
    if (!o_.condition_state.empty()) {
      std::string err;
      if (!deep::load_text_state(o_.condition_state, text_, err)) {
        auto f = format::make_error("MG-IO-USAGE", "--condition-state: " + err,
                                    "pass a torch.save file holding {'hidden': [L, D], 'mask': [L]}");
        f.file = o_.condition_state;
        report_.findings.push(f);
        report_.forced = Verdict::usage;
        return false;
      }
      return true;
    }
    int64_t width = 768;  // t5-base, what every released text MusicGen uses
    if (q_.lm_config)
      for (const auto& c : q_.lm_config->conditioners)
        if (c.model == "t5" && c.internal_dim > 0) width = c.internal_dim;
    text_ = deep::default_text_state(width);
    return true;
  }

  double frame_rate() const {
    if (q_.compression_config) return static_cast<double>(q_.compression_config->frame_rate());
    return 50.0;  // every released MusicGen codec runs at 50 Hz
  }
  int64_t frames() const {
    if (o_.frames) return std::max<int64_t>(1, *o_.frames);
    // mirrors audiocraft/models/musicgen.py: max_gen_len = int(duration * frame_rate)
    return std::max<int64_t>(1, static_cast<int64_t>(o_.duration * frame_rate() + 1e-9));
  }

  CellResult make_cell(const CellSpec& s) const {
    CellResult c;
    c.device = s.device;
    c.precision = s.precision;
    c.config = s.config;
    return c;
  }

  void skip_all(const std::string& device, const std::string& precision, const std::vector<CellSpec>& cells,
                const std::string& reason) {
    for (const auto& s : cells) {
      if (s.device != device || s.precision != precision) continue;
      CellResult c = make_cell(s);
      c.status = "skip";
      c.reason = reason;
      report_.cells.push_back(c);
    }
  }

  void fail_cell(CellResult& c, const std::string& code, const std::string& message, const std::string& hint) {
    auto f = format::make_error(code, message, hint);
    f.name = c.device + "/" + c.precision + "/" + c.config;
    report_.findings.push(f);
    c.status = "fail";
    if (c.reason.empty()) c.reason = code + ": " + message;
  }

  // Builds the models of one (device, precision) and runs its cells.
  void run_group(const std::string& device, const std::string& precision, const std::vector<CellSpec>& cells) {
    if (device == "cuda" && !torch::cuda::is_available()) {
      skip_all(device, precision, cells, "CUDA was asked for but is not available (no GPU, or libtorch without CUDA)");
      return;
    }
    const torch::Device dev = device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    const torch::Dtype dtype = deep::dtype_of(precision);
    if (!q_.lm_ready()) {
      skip_all(device, precision, cells, "the LM was not built: quick found problems in the LM file (see findings)");
      if (!report_.findings.has_errors())
        report_.findings.push(format::make_error("MG-AUDIO-CELL-ERROR", "no LM could be built from this target",
                                                "deep needs an export directory (state_dict.bin + compression_state_dict.bin)"));
      return;
    }
    progress("building " + device + "/" + precision + " models");
    Built built;
    format::Findings build_findings;
    std::string build_error;
    try {
      built.lm = deep::build_lm(q_, dev, dtype, build_findings);
      if (!built.lm) build_error = "the LM could not be built";
      else built.encodec = build_decoder(dev, dtype, precision, build_findings);
    } catch (const std::exception& e) {
      build_error = std::string("libtorch error while building: ") + e.what();
    }
    // Build findings describe the file, not the cell: report them once (first build), and every time a
    // build fails.
    if (first_build_ || !built.lm) {
      for (auto f : build_findings.items()) {
        if (f.name.empty()) f.name = device + "/" + precision;
        report_.findings.push(f);
      }
    }
    first_build_ = false;
    if (!build_error.empty()) {
      for (const auto& s : cells) {
        if (s.device != device || s.precision != precision) continue;
        CellResult c = make_cell(s);
        fail_cell(c, "MG-AUDIO-CELL-ERROR", build_error, "see the MG-MODEL-* findings for what the build refused");
        report_.cells.push_back(c);
      }
      return;
    }
    if (!built.encodec && !noted_no_decoder_) {
      noted_no_decoder_ = true;
      report_.findings.push(format::make_note(
          "MG-AUDIO-NO-DECODER",
          "no compression model could be built (e.g. a `pretrained` reference mgcheck cannot resolve offline): "
          "cells generate codes only and the audio checks are skipped",
          "place the compression model's export next to the LM to check the audio"));
    }
    for (const auto& s : cells) {
      if (s.device != device || s.precision != precision) continue;
      progress("cell " + s.name());
      CellResult c = make_cell(s);
      try {
        if (s.config == "forward") {
          forward_cell(c, built);
        } else {
          generate_cell(c, built);
        }
      } catch (const std::exception& e) {
        // One cell's libtorch error (OOM, unsupported op, shape error) is that cell's failure only.
        std::string msg = e.what();
        if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
        if (s.precision != "fp32" && unsupported_dtype_error(msg)) {
          // A platform limit (an op libtorch lacks for this dtype on this device), not a model defect.
          c.status = "skip";
          c.reason = "libtorch cannot run " + s.precision + " on " + s.device + " here: " + msg;
        } else {
          fail_cell(c, "MG-AUDIO-CELL-ERROR", "the cell raised: " + msg,
                    "read the message; OOM: lower --duration; unsupported precision: drop it from --precisions");
        }
      }
      if (!decoder_note_.empty() && c.status != "skip") c.extra["decoder_precision"] = decoder_note_;
      progress("cell " + s.name() + ": " + c.status + " (" + std::to_string(c.seconds) + " s)");
      report_.cells.push_back(c);
    }
    if (device == "cpu" && precision == "fp32") reference_models_ = std::move(built);
  }

  // The EnCodec of a cell. When libtorch cannot run the codec in a reduced precision on this device
  // (e.g. reflect padding in bf16 on CPU), the LM still runs in that precision and decodes with an fp32
  // codec; the cells say so (`decoder_precision`).
  std::optional<model::Encodec> build_decoder(const torch::Device& dev, torch::Dtype dtype, const std::string& precision,
                                              format::Findings& findings) {
    decoder_note_.clear();
    if (precision == "fp32") return deep::build_encodec(q_, dev, dtype, findings);
    std::string why;
    if (model::encodec_dtype_supported(dtype, dev, &why)) {
      auto enc = deep::build_encodec(q_, dev, dtype, findings);
      if (!enc) return enc;
      try {  // the probe is generic: one real decode finds ops this codec needs and the dtype lacks
        auto codes = torch::zeros({1, enc->num_codebooks(), 2}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
        (void)enc->decode(codes);
        return enc;
      } catch (const std::exception& e) {
        std::string msg = e.what();
        if (!unsupported_dtype_error(msg)) return enc;  // a real failure: the cells will report it
        why = msg.substr(0, msg.find('\n'));
      }
    }
    decoder_note_ = "fp32 (libtorch cannot run EnCodec in " + precision + " here: " + why + ")";
    return deep::build_encodec(q_, dev, torch::kFloat32, findings);
  }

  static bool unsupported_dtype_error(const std::string& msg) {
    return msg.find("not implemented for 'BFloat16'") != std::string::npos ||
           msg.find("not implemented for 'Half'") != std::string::npos;
  }

  model::GenerateParams params_for(const std::string& config) const {
    model::GenerateParams p;
    p.max_gen_len = frames();
    p.cfg_coef = o_.cfg;
    p.seed = o_.seed;
    if (config == "sampled") {
      p.sampling.use_sampling = true;
      p.sampling.top_k = std::min<int64_t>(o_.top_k, card_);
      p.sampling.top_p = o_.top_p;
      p.sampling.temperature = o_.temperature;
    } else {
      p.sampling.use_sampling = false;
    }
    return p;
  }

  void generate_cell(CellResult& c, const Built& b) {
    const auto& lm = *b.lm;
    const int64_t B = o_.batch;
    auto t0 = Clock::now();
    auto conds = deep::conditions_for(lm, c.config, B, text_);
    auto params = params_for(c.config);
    auto res = model::generate(lm, conds, B, params);
    const double lm_seconds = since(t0);
    torch::Tensor audio;
    if (b.encodec) audio = b.encodec->decode(res.codes);
    c.seconds = since(t0);
    c.steps_per_s = lm_seconds > 0 ? static_cast<double>(res.steps) / lm_seconds : 0;
    c.codes_shape = deep::shape_of(res.codes);
    if (c.config == "sampled") c.extra["top_k"] = params.sampling.top_k;
    c.extra["frames"] = params.max_gen_len;
    auto codes_cpu = res.codes.to(torch::kCPU);
    torch::Tensor audio_cpu = audio.defined() ? audio.to(torch::kCPU, torch::kFloat32) : torch::Tensor();
    const double sr = b.encodec ? static_cast<double>(b.encodec->sample_rate()) : 0.0;
    const double clip_seconds = audio_cpu.defined() && sr > 0 ? static_cast<double>(audio_cpu.size(2)) / sr : 0.0;
    if (clip_seconds > 0) c.rtf = c.seconds / clip_seconds;
    AudioMetrics m = deep::measure(audio_cpu, codes_cpu, sr, o_.thresholds);
    c.status = "pass";
    const size_t before = report_.findings.size();
    bool ok = true;
    if (audio_cpu.defined()) {
      c.audio = m;
      ok = audio_findings(m, o_.thresholds, clip_seconds, params.max_gen_len, c.device + "/" + c.precision + "/" + c.config,
                          report_.findings);
    } else {
      c.reason = "codes only: no compression model";
      c.extra["stuck_fraction"] = m.stuck_fraction;
      format::Findings ignore;
      AudioMetrics only_codes;
      only_codes.rms_dbfs = 0;
      only_codes.stuck_fraction = m.stuck_fraction;
      audio_findings(only_codes, o_.thresholds, 0, params.max_gen_len, c.device + "/" + c.precision + "/" + c.config,
                     report_.findings);
    }
    if (!ok) {
      c.status = "fail";
      for (size_t i = before; i < report_.findings.size(); ++i) {
        const auto& f = report_.findings.items()[i];
        if (f.severity == format::Severity::error) {
          c.reason = f.code + ": " + f.message;
          break;
        }
      }
    }
    const std::string key = c.device + "|" + c.config;
    if (c.precision == "fp32") {
      Baseline base;
      base.codes = codes_cpu;
      base.audio = audio_cpu;
      if (wants_precision_comparison()) {
        auto p = lm.compute_predictions(res.codes.narrow(0, 0, 1), first_item(conds));
        base.pred_logits = p.logits.to(torch::kCPU, torch::kFloat32);
        base.pred_mask = p.mask.to(torch::kCPU);
      }
      baselines_[key] = base;
    } else if (baselines_.count(key)) {
      compare_with_fp32(c, b, baselines_[key], codes_cpu);
    }
    if (!o_.wav_dir.empty() && audio_cpu.defined()) {
      std::vector<std::string> written;
      std::string err;
      if (deep::write_item_wavs(o_.wav_dir, c.device + "_" + c.precision + "_" + c.config, audio_cpu, static_cast<int>(sr),
                                written, err)) {
        c.extra["wavs"] = written;
      } else {
        report_.findings.push(format::make_error("MG-AUDIO-WAV", "cannot write the cell's WAV: " + err,
                                                "check that --wav-dir is writable"));
      }
    }
    if (!o_.html.empty() && audio_cpu.defined() && audio_cpu.size(0) > 0) {
      CellMedia media;
      media.cell = report_.cells.size();  // this cell's index once pushed
      auto item = audio_cpu[0].contiguous();
      media.planar = deep::to_floats(item);
      media.channels = item.size(0);
      media.frames = item.size(1);
      media.sample_rate = static_cast<int>(sr);
      media_.push_back(std::move(media));
    }
  }

  bool wants_precision_comparison() const {
    for (const auto& p : o_.precisions)
      if (p != "fp32") return true;
    return false;
  }

  static model::ConditionList first_item(const model::ConditionList& conds) {
    model::ConditionList out;
    for (const auto& [n, c] : conds) out.push_back({n, {c.emb.narrow(0, 0, 1), c.mask.narrow(0, 0, 1)}});
    return out;
  }

  // Reduced precision vs fp32 on the same inputs: the LM's predictions over the fp32 cell's codes, and the
  // decoder on the fp32 cell's codes. Greedy code agreement is reported only.
  void compare_with_fp32(CellResult& c, const Built& b, const Baseline& base, const torch::Tensor& codes) {
    const auto tol = precision_tolerance(c.precision);
    json v = {{"logits_tolerance_rel", tol.logits_rel}, {"audio_tolerance_rel", tol.audio_rel}};
    if (codes.sizes() == base.codes.sizes())
      v["code_agreement"] = codes.eq(base.codes).to(torch::kFloat64).mean().item<double>();
    bool drift = false;
    std::string what;
    if (base.pred_logits.defined()) {
      auto conds = first_item(deep::conditions_for(*b.lm, c.config, 1, text_));
      auto dev = b.lm->options().device;
      auto p = b.lm->compute_predictions(base.codes.narrow(0, 0, 1).to(dev), conds);
      auto ours = p.logits.to(torch::kCPU, torch::kFloat32);
      auto mask = base.pred_mask.unsqueeze(-1).expand_as(ours);
      auto ref = base.pred_logits.masked_select(mask);
      auto diff = (ours.masked_select(mask) - ref).abs();
      const double scale = std::max(ref.abs().max().item<double>(), 1e-6);
      const bool finite = torch::isfinite(diff).all().item<bool>();
      const double rel = finite ? diff.max().item<double>() / scale : INFINITY;
      v["logits_rel"] = finite ? json(rel) : json("non-finite");
      if (!(rel <= tol.logits_rel)) {
        drift = true;
        what = "LM logits differ from fp32 by " + (finite ? std::to_string(rel) : std::string("non-finite values")) +
               " of their range (tolerance " + std::to_string(tol.logits_rel) + ")";
      }
    }
    if (b.encodec && base.audio.defined()) {
      auto dev = b.encodec->device();
      auto audio = b.encodec->decode(base.codes.to(dev)).to(torch::kCPU, torch::kFloat32);
      if (audio.sizes() == base.audio.sizes()) {
        auto diff = (audio - base.audio).abs();
        const double peak = std::max(base.audio.abs().nan_to_num(0, 0, 0).max().item<double>(), 1e-3);
        const bool finite = torch::isfinite(diff).all().item<bool>();
        const double rel = finite ? diff.max().item<double>() / peak : INFINITY;
        v["audio_rel"] = finite ? json(rel) : json("non-finite");
        if (!(rel <= tol.audio_rel)) {
          drift = true;
          what += std::string(what.empty() ? "" : "; ") + "decoded audio (same codes) differs from fp32 by " +
                  (finite ? std::to_string(rel) : std::string("non-finite values")) + " of the peak (tolerance " +
                  std::to_string(tol.audio_rel) + ")";
        }
      }
    }
    c.extra["vs_fp32"] = v;
    if (drift)
      fail_cell(c, "MG-AUDIO-PRECISION-DRIFT", c.precision + " " + what,
                "the model is not usable in " + c.precision + ": keep fp32, or look for weights near the range limits");
  }

  // --no-generate: one LM forward on a fixed random sequence, one decode of fixed random codes; only
  // NaN/Inf are judged (random codes make no music, so silence/DC/clipping say nothing here).
  void forward_cell(CellResult& c, const Built& b) {
    auto t0 = Clock::now();
    const auto& lm = *b.lm;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(o_.seed);
    const int64_t S = 16;
    auto seq = torch::randint(0, lm.card(), {1, lm.num_codebooks(), S}, gen, torch::kInt64);
    auto logits = lm.forward(seq.to(lm.options().device), lm.null_conditions(1)).to(torch::kCPU);
    const int64_t bad = logits.numel() - torch::isfinite(logits).sum().item<int64_t>();
    c.codes_shape = deep::shape_of(seq);
    c.status = "pass";
    if (bad > 0)
      fail_cell(c, "MG-AUDIO-CELL-ERROR", "one LM forward gives " + std::to_string(bad) + " non-finite logits",
                "NaN/Inf logits come from NaN/Inf or huge weights; see quick's weight statistics");
    if (b.encodec) {
      auto codes = torch::randint(0, b.encodec->cardinality(), {1, b.encodec->num_codebooks(), 4}, gen, torch::kInt64);
      auto audio = b.encodec->decode(codes.to(b.encodec->device())).to(torch::kCPU, torch::kFloat32);
      AudioMetrics m = deep::measure(audio, torch::Tensor(), static_cast<double>(b.encodec->sample_rate()), o_.thresholds);
      c.audio = m;
      AudioThresholds only_finite;
      only_finite.silence_rms_dbfs = -INFINITY;
      only_finite.near_silence_rms_dbfs = -INFINITY;
      only_finite.silent_run_fraction = INFINITY;
      only_finite.clip_fraction = INFINITY;
      only_finite.dc_abs = INFINITY;
      only_finite.stuck_fraction = INFINITY;
      if (!audio_findings(m, only_finite, 0, 0, c.device + "/" + c.precision + "/" + c.config, report_.findings)) {
        c.status = "fail";
        if (c.reason.empty()) c.reason = "the decoder gives non-finite audio";
      }
    }
    c.seconds = since(t0);
  }

  void reference() {
    progress("reference comparison " + o_.reference);
    Built* b = reference_models_.lm ? &reference_models_ : nullptr;
    Built local;
    if (!b && q_.lm_ready()) {
      format::Findings ignore;  // already reported by the matrix
      try {
        local.lm = deep::build_lm(q_, torch::kCPU, torch::kFloat32, ignore);
        if (local.lm) local.encodec = deep::build_encodec(q_, torch::kCPU, torch::kFloat32, ignore);
      } catch (const std::exception&) {
      }
      if (local.lm) b = &local;
    }
    const model::LmModel* lm = b && b->lm ? &*b->lm : nullptr;
    const model::Encodec* enc = b && b->encodec ? &*b->encodec : nullptr;
    if (!lm && !enc) {
      report_.findings.push(format::make_warning("MG-REF-MISSING", "--reference given but no model could be built",
                                                "fix the findings above first"));
      return;
    }
    deep::run_reference(o_.reference, lm, enc, report_);
  }

  void html() {
    std::string err;
    if (!write_output(o_.html, render_html(report_, media_), err)) {
      auto f = format::make_error("MG-IO-USAGE", "--html: " + err, "check that the path is writable");
      report_.findings.push(f);
    }
  }

  const MatrixOptions& o_;
  Report& report_;
  QuickResult q_;
  TextState text_;
  int64_t card_ = 0;
  bool first_build_ = true;
  bool noted_no_decoder_ = false;
  std::map<std::string, Baseline> baselines_;
  Built reference_models_;
  std::vector<CellMedia> media_;
  std::string decoder_note_;
};

}  // namespace

void run_deep(const std::string& target, const MatrixOptions& o, Report& report) {
  DeepRun(o, report).run(target);
}

}  // namespace mgcheck::harness
