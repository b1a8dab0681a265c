#include "torch_session.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "mgcheck/format/writer.h"
#include "mgcheck/model/reference.h"
#include "mgcheck/model/weights.h"

namespace mgcheck::harness::deep {

torch::Dtype dtype_of(const std::string& precision) {
  if (precision == "bf16") return torch::kBFloat16;
  if (precision == "fp16") return torch::kHalf;
  return torch::kFloat32;
}

std::optional<model::LmModel> build_lm(const QuickResult& q, const torch::Device& device, torch::Dtype dtype,
                                       format::Findings& findings) {
  if (!q.lm_ready() || !q.lm.checkpoint) return std::nullopt;
  model::WeightMap weights(*q.lm.checkpoint, "best_state");
  model::LmOptions opt;
  opt.device = device;
  opt.dtype = dtype;
  auto built = model::LmModel::build(*q.lm_config, weights, opt, findings);
  if (!built) return std::nullopt;
  return std::move(built).value();
}

std::optional<model::Encodec> build_encodec(const QuickResult& q, const torch::Device& device, torch::Dtype dtype,
                                            format::Findings& findings) {
  if (!q.compression_ready() || !q.compression.checkpoint) return std::nullopt;
  model::WeightMap weights(*q.compression.checkpoint, "best_state");
  model::EncodecOptions opt;
  opt.device = device;
  opt.dtype = dtype;
  if (q.lm_config) {
    // The LM decides whether the mono codec is wrapped for interleaved stereo (as MusicGen's loader does).
    opt.interleave_stereo = q.lm_config->interleave_stereo;
    opt.interleave_per_timestep = q.lm_config->interleave_per_timestep;
  }
  auto built = model::Encodec::build(*q.compression_config, weights, opt, findings);
  if (!built) return std::nullopt;
  return std::move(built).value();
}

std::string text_conditioner_name(const format::LmConfig& cfg) {
  for (const auto& c : cfg.conditioners)
    if (c.model == "t5" || c.model == "lut") return c.name;
  return "";
}

TextState default_text_state(int64_t width) {
  // Smooth, deterministic, clearly non-zero: a fixed pattern of sines (no RNG, identical everywhere).
  const int64_t L = 8;
  auto l = torch::arange(L, torch::kFloat64).unsqueeze(1) + 1;
  auto d = torch::arange(width, torch::kFloat64).unsqueeze(0) + 1;
  TextState s;
  s.hidden = (0.5 * torch::sin(0.37 * l * d + 0.11 * d)).to(torch::kFloat32);
  s.mask = torch::ones({L}, torch::kInt64);
  s.source = "built-in deterministic state";
  return s;
}

std::optional<torch::Tensor> read_tensor_pt(const std::string& path, const std::string& key, std::string& error) {
  format::Findings f;
  auto ck = model::load_checkpoint_file(path, f);
  if (!ck) {
    error = path + ": " + ck.error().message;
    return std::nullopt;
  }
  for (const auto& n : ck->checkpoint.named) {
    if (n.path != key) continue;
    const auto& view = ck->checkpoint.tensors.at(n.tensor);
    if (!view.valid) break;
    auto t = model::view_as_torch(view);
    if (!t.defined()) break;
    return t.clone();  // the mapping goes away with `ck`
  }
  error = path + ": no valid tensor '" + key + "' at the top level";
  return std::nullopt;
}

bool load_text_state(const std::string& path, TextState& out, std::string& error) {
  auto hidden = read_tensor_pt(path, "hidden", error);
  if (!hidden) return false;
  auto mask = read_tensor_pt(path, "mask", error);
  if (!mask) return false;
  if (hidden->dim() != 2 || mask->dim() != 1 || mask->size(0) != hidden->size(0)) {
    error = path + ": expected {'hidden': [L, D], 'mask': [L]}";
    return false;
  }
  if (!hidden->is_floating_point()) {
    error = path + ": 'hidden' must be a floating tensor";
    return false;
  }
  out.hidden = hidden->to(torch::kFloat32);
  out.mask = mask->to(torch::kInt64);
  out.source = path;
  return true;
}

model::ConditionList conditions_for(const model::LmModel& lm, const std::string& config, int64_t batch,
                                    const TextState& text) {
  auto conds = lm.null_conditions(batch);
  if (config != "text") return conds;
  const std::string name = text_conditioner_name(lm.config());
  if (name.empty()) throw std::invalid_argument("the model has no text conditioner (t5 or lut)");
  for (auto& [n, c] : conds) {
    if (n != name) continue;
    const format::ConditionerConfig* cc = nullptr;
    for (const auto& k : lm.config().conditioners)
      if (k.name == name) cc = &k;
    if (cc && cc->model == "lut") {
      // A fixed token sequence through the LUT conditioner.
      const int64_t L = 8, bins = std::max<int64_t>(1, cc->lut_n_bins);
      auto tokens = (torch::arange(L, torch::kInt64) * 7 + 3).remainder(bins).unsqueeze(0).expand({batch, L});
      c = lm.lut_condition(name, tokens.contiguous(), torch::ones({batch, L}, torch::kInt64));
    } else {
      auto h = text.hidden.unsqueeze(0).expand({batch, text.hidden.size(0), text.hidden.size(1)}).contiguous();
      auto m = text.mask.unsqueeze(0).expand({batch, text.mask.size(0)}).contiguous();
      c = lm.t5_condition(name, h, m);
    }
  }
  return conds;
}

std::vector<float> to_floats(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::vector<int64_t> to_int64s(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

std::vector<int64_t> shape_of(const torch::Tensor& t) {
  if (!t.defined()) return {};
  return std::vector<int64_t>(t.sizes().begin(), t.sizes().end());
}

AudioMetrics measure(const torch::Tensor& audio, const torch::Tensor& codes, double sample_rate,
                     const AudioThresholds& t) {
  AudioMetrics m;
  if (audio.defined() && audio.dim() == 3) {
    auto x = to_floats(audio);
    m = measure_audio(AudioView{x, audio.size(0), audio.size(1), audio.size(2), sample_rate}, t);
  }
  if (codes.defined() && codes.dim() == 3) {
    auto c = to_int64s(codes);
    m.stuck_fraction = stuck_fraction(CodesView{c, codes.size(0), codes.size(1), codes.size(2)});
  }
  return m;
}

bool write_item_wavs(const std::string& dir, const std::string& stem, const torch::Tensor& audio, int sample_rate,
                     std::vector<std::string>& written, std::string& error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    error = "cannot create " + dir + ": " + ec.message();
    return false;
  }
  auto x = audio.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  for (int64_t b = 0; b < x.size(0); ++b) {
    auto item = x[b].contiguous();
    std::span<const float> planar(item.data_ptr<float>(), static_cast<size_t>(item.numel()));
    std::string path = (std::filesystem::path(dir) / (stem + "_" + std::to_string(b) + ".wav")).string();
    if (!write_wav_float(path, planar, item.size(0), item.size(1), sample_rate, error)) return false;
    written.push_back(path);
  }
  return true;
}

format::Status write_tensors_pt(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& items,
                                bool overwrite) {
  format::WDict root;
  for (const auto& [name, t] : items) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    format::DType dt;
    if (c.scalar_type() == torch::kInt64) {
      dt = format::DType::int64;
    } else {
      c = c.to(torch::kFloat32);
      dt = format::DType::float32;
    }
    const auto* p = static_cast<const uint8_t*>(c.data_ptr());
    std::vector<uint8_t> bytes(p, p + c.numel() * c.element_size());
    root.emplace_back(name, format::make_tensor(dt, shape_of(c), std::move(bytes)));
  }
  format::WriteOptions wo;
  wo.overwrite = overwrite;
  wo.folder = std::filesystem::path(path).stem().string();
  if (wo.folder.empty()) wo.folder = "archive";
  return format::write_torch_save_file(path, format::WValue(std::move(root)), wo);
}

nlohmann::json environment(int torch_threads, int blas_threads, const std::string& device) {
  std::string cpu = "unknown";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) cpu = line.substr(p + 2);
      break;
    }
  }
  std::string dev = device;
  if (torch::cuda::is_available()) dev += " (CUDA available: " + std::to_string(torch::cuda::device_count()) + " device(s))";
  return {{"torch", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                        std::to_string(TORCH_VERSION_PATCH)},
          {"threads", torch_threads},
          {"blas_threads", blas_threads},
          {"threads_in_force", model::configure_threads(torch_threads, blas_threads)},
          {"cpu", cpu},
          {"hardware_threads", std::thread::hardware_concurrency()},
          {"device", dev}};
}

}  // namespace mgcheck::harness::deep
