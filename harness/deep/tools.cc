// generate / encode / decode: quick first (the files are read once, strictly), then the rebuilt models.
#include "tools.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>

#include "mgcheck/harness/quick.h"
#include "mgcheck/model/generate.h"
#include "torch_session.h"

namespace mgcheck::harness {

namespace {

using Clock = std::chrono::steady_clock;

void add_error(Report& r, const std::string& code, const std::string& msg, const std::string& hint,
               const std::string& file = "") {
  auto f = format::make_error(code, msg, hint);
  f.file = file;
  r.findings.push(f);
}

void usage(Report& r, const std::string& msg, const std::string& hint) {
  add_error(r, "MG-IO-USAGE", msg, hint);
  r.forced = Verdict::usage;
}

bool valid_run_options(const ModelRunOptions& o, Report& r, torch::Device& dev) {
  if (o.device != "cpu" && o.device != "cuda") {
    usage(r, "--device must be cpu or cuda", "e.g. --device cpu");
    return false;
  }
  if (o.precision != "fp32" && o.precision != "bf16" && o.precision != "fp16") {
    usage(r, "--precision must be fp32, bf16 or fp16", "e.g. --precision fp32");
    return false;
  }
  if (o.device == "cuda" && !torch::cuda::is_available()) {
    usage(r, "--device cuda: CUDA is not available (no GPU, or libtorch without CUDA)", "use --device cpu");
    return false;
  }
  dev = o.device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  r.environment = deep::environment(o.threads, o.blas_threads, o.device);
  return true;
}

// Drops findings about `file` (used by --no-decode, which never reads the compression model's weights).
void drop_findings_of(Report& r, const std::string& file) {
  auto& items = r.findings.items();
  items.erase(std::remove_if(items.begin(), items.end(), [&](const format::Finding& f) { return f.file == file; }),
              items.end());
}

bool refuse_existing(const std::string& path, bool force, Report& r) {
  std::error_code ec;
  if (!force && std::filesystem::exists(path, ec)) {
    usage(r, path + " exists", "pass --force to replace it");
    return true;
  }
  return false;
}

}  // namespace

void run_generate(const std::string& target, const GenerateOptions& o, Report& report) {
  torch::Device dev = torch::kCPU;
  if (!valid_run_options(o.run, report, dev)) return;
  if (refuse_existing(o.out, o.run.force, report)) return;
  QuickResult q = run_quick(target, QuickOptions{}, report);
  if (!q.resolved) return;
  if (o.no_decode) drop_findings_of(report, q.compression.path);
  if (!q.lm_ready()) {
    if (!report.findings.has_errors())
      add_error(report, "MG-AUDIO-CELL-ERROR", "no LM could be built from this target", "pass an export directory");
    return;
  }
  if (!o.no_decode && !q.compression_ready()) {
    if (!report.findings.has_errors())
      add_error(report, "MG-AUDIO-NO-DECODER", "no compression model available to decode",
                "pass --no-decode to write codes only");
    return;
  }
  if (report.findings.has_errors()) return;  // a defective export: quick's findings say why
  deep::TextState text;
  std::string config = "unconditional";
  if (!o.condition_state.empty()) {
    std::string err;
    if (!deep::load_text_state(o.condition_state, text, err)) {
      usage(report, "--condition-state: " + err, "pass {'hidden': [L, D], 'mask': [L]}");
      return;
    }
    config = "text";
  }
  const torch::Dtype dtype = deep::dtype_of(o.run.precision);
  auto lm = deep::build_lm(q, dev, dtype, report.findings);
  if (!lm) return;
  std::optional<model::Encodec> enc;
  if (!o.no_decode) {
    enc = deep::build_encodec(q, dev, dtype, report.findings);
    if (!enc) return;
  }
  model::GenerateParams p;
  const double frame_rate = enc ? static_cast<double>(enc->frame_rate())
                                : q.compression_config ? static_cast<double>(q.compression_config->frame_rate()) : 50.0;
  // mirrors audiocraft/models/musicgen.py: max_gen_len = int(duration * frame_rate)
  p.max_gen_len = o.frames ? *o.frames : static_cast<int64_t>(o.duration * frame_rate + 1e-9);
  if (p.max_gen_len <= 0 || o.batch <= 0) {
    usage(report, "--duration/--frames and --batch must give at least one frame and one item", "e.g. --duration 1");
    return;
  }
  p.cfg_coef = o.cfg;
  p.seed = o.seed;
  p.sampling.use_sampling = !o.greedy;
  p.sampling.top_k = std::min<int64_t>(o.top_k, lm->card());
  p.sampling.top_p = o.top_p;
  p.sampling.temperature = o.temperature;
  CellResult c;
  c.device = o.run.device;
  c.precision = o.run.precision;
  c.config = config + (o.greedy ? "/greedy" : "/sampled");
  auto t0 = Clock::now();
  try {
    auto conds = deep::conditions_for(*lm, config, o.batch, text);
    auto res = model::generate(*lm, conds, o.batch, p);
    const double lm_s = std::chrono::duration<double>(Clock::now() - t0).count();
    torch::Tensor audio;
    if (enc) audio = enc->decode(res.codes).to(torch::kCPU, torch::kFloat32);
    c.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    c.steps_per_s = lm_s > 0 ? static_cast<double>(res.steps) / lm_s : 0;
    c.codes_shape = deep::shape_of(res.codes);
    c.status = "pass";
    std::vector<std::pair<std::string, torch::Tensor>> items = {{"codes", res.codes.to(torch::kCPU)}};
    if (audio.defined()) {
      items.push_back({"audio", audio});
      const double sr = static_cast<double>(enc->sample_rate());
      const double clip = static_cast<double>(audio.size(2)) / sr;
      c.rtf = clip > 0 ? c.seconds / clip : 0;
      c.audio = deep::measure(audio, res.codes, sr, o.thresholds);
      if (!audio_findings(*c.audio, o.thresholds, clip, p.max_gen_len, c.device + "/" + c.precision + "/" + c.config,
                          report.findings))
        c.status = "fail";
      if (!o.wav_dir.empty()) {
        std::vector<std::string> written;
        std::string err;
        if (!deep::write_item_wavs(o.wav_dir, "generated", audio, static_cast<int>(sr), written, err))
          add_error(report, "MG-AUDIO-WAV", err, "check that --wav-dir is writable");
        else
          c.extra["wavs"] = written;
      }
    }
    auto st = deep::write_tensors_pt(o.out, items, o.run.force);
    if (!st) {
      report.findings.push(st.error());
    } else {
      c.extra["out"] = o.out;
    }
  } catch (const std::exception& e) {
    c.status = "fail";
    c.reason = std::string("libtorch error: ") + e.what();
    add_error(report, "MG-AUDIO-CELL-ERROR", c.reason.substr(0, c.reason.find('\n')), "read the message");
  }
  report.cells.push_back(c);
}

void run_encode(const std::string& target, const std::string& wav, const std::string& out, const ModelRunOptions& o,
                Report& report) {
  torch::Device dev = torch::kCPU;
  if (!valid_run_options(o, report, dev)) return;
  if (refuse_existing(out, o.force, report)) return;
  PlanarAudio a;
  std::string err;
  if (!read_audio_file(wav, a, err)) {
    usage(report, err, "pass a readable audio file (any format libsndfile supports)");
    return;
  }
  QuickResult q = run_quick(target, QuickOptions{}, report);
  if (!q.resolved || report.findings.has_errors()) return;
  auto enc = deep::build_encodec(q, dev, deep::dtype_of(o.precision), report.findings);
  if (!enc) {
    if (!report.findings.has_errors())
      add_error(report, "MG-AUDIO-NO-DECODER", "no compression model could be built from this target",
                "pass an export directory holding compression_state_dict.bin");
    return;
  }
  if (!require_sample_rate(a, static_cast<int>(enc->sample_rate()), wav, err)) {
    add_error(report, "MG-AUDIO-SAMPLE-RATE", err, "resample the file first (mgcheck has no resampler)", wav);
    report.forced = Verdict::usage;  // the input file, not the target, is wrong
    return;
  }
  if (!convert_channels(a, enc->channels(), err)) {
    add_error(report, "MG-AUDIO-WAV", err, "pass mono or a file with the model's channel count", wav);
    report.forced = Verdict::usage;
    return;
  }
  try {
    auto x = torch::from_blob(a.samples.data(), {1, a.channels, a.frames}, torch::kFloat32)
                 .to(dev, deep::dtype_of(o.precision));
    auto res = enc->encode(x);
    auto st = deep::write_tensors_pt(out, {{"codes", res.codes.to(torch::kCPU)}}, o.force);
    if (!st) report.findings.push(st.error());
    report.extra["codes_shape"] = deep::shape_of(res.codes);
    if (res.scale.defined())
      report.findings.push(format::make_note("MG-AUDIO-RENORM-SCALE",
                                            "this codec renormalises: decode needs the scale, which the codes file does not hold",
                                            "AudioCraft's decode(codes, scale) takes it; decoding without it changes the level"));
  } catch (const std::exception& e) {
    std::string m = e.what();
    add_error(report, "MG-AUDIO-CELL-ERROR", "encode raised: " + m.substr(0, m.find('\n')), "read the message");
  }
}

void run_decode(const std::string& target, const std::string& codes_pt, const std::string& out,
                const ModelRunOptions& o, Report& report) {
  torch::Device dev = torch::kCPU;
  if (!valid_run_options(o, report, dev)) return;
  const bool to_pt = out.size() >= 3 && out.compare(out.size() - 3, 3, ".pt") == 0;
  if (refuse_existing(out, o.force, report)) return;
  std::string err;
  auto codes = deep::read_tensor_pt(codes_pt, "codes", err);
  if (!codes) {
    usage(report, err, "pass a file holding {'codes': int64 [B, K, T]} (written by mgcheck encode/generate)");
    return;
  }
  QuickResult q = run_quick(target, QuickOptions{}, report);
  if (!q.resolved || report.findings.has_errors()) return;
  auto enc = deep::build_encodec(q, dev, deep::dtype_of(o.precision), report.findings);
  if (!enc) {
    if (!report.findings.has_errors())
      add_error(report, "MG-AUDIO-NO-DECODER", "no compression model could be built from this target",
                "pass an export directory holding compression_state_dict.bin");
    return;
  }
  if (codes->dim() != 3 || codes->scalar_type() != torch::kInt64 || codes->size(1) != enc->num_codebooks() ||
      codes->numel() == 0 || codes->min().item<int64_t>() < 0 || codes->max().item<int64_t>() >= enc->cardinality()) {
    usage(report,
          codes_pt + ": 'codes' must be int64 [B, " + std::to_string(enc->num_codebooks()) + ", T] with values in [0, " +
              std::to_string(enc->cardinality()) + ")",
          "pass codes produced for this model");
    return;
  }
  try {
    auto audio = enc->decode(codes->to(dev)).to(torch::kCPU, torch::kFloat32);
    report.extra["audio_shape"] = deep::shape_of(audio);
    if (to_pt) {
      auto st = deep::write_tensors_pt(out, {{"audio", audio}}, o.force);
      if (!st) report.findings.push(st.error());
      return;
    }
    for (int64_t b = 0; b < audio.size(0); ++b) {
      std::string path = out;
      if (audio.size(0) > 1) {  // one WAV per item: OUT_0.wav, OUT_1.wav, ...
        auto p = std::filesystem::path(out);
        path = (p.parent_path() / (p.stem().string() + "_" + std::to_string(b) + p.extension().string())).string();
      }
      auto item = audio[b].contiguous();
      std::span<const float> planar(item.data_ptr<float>(), static_cast<size_t>(item.numel()));
      if (!write_wav_float(path, planar, item.size(0), item.size(1), static_cast<int>(enc->sample_rate()), err)) {
        add_error(report, "MG-AUDIO-WAV", err, "check that the output path is writable", path);
        return;
      }
    }
  } catch (const std::exception& e) {
    std::string m = e.what();
    add_error(report, "MG-AUDIO-CELL-ERROR", "decode raised: " + m.substr(0, m.find('\n')), "read the message");
  }
}

}  // namespace mgcheck::harness
