// mgcheck generate TARGET --out FILE.pt: codes and audio with AudioCraft's generation options (contract §2).
#include "../deep/tools.h"
#include "torch_commands.h"

namespace mgcheck::cli {

void register_generate(CLI::App& app, TorchContext& ctx) {
  auto* cmd = app.add_subcommand(
      "generate",
      "Generate with the rebuilt model and write {'codes': int64 [B, K, T], 'audio': float32 [B, C, N]} as a\n"
      "torch.save file (mgcheck's own writer; loads with torch.load(weights_only=True)). Sampling defaults are\n"
      "AudioCraft's (top_k 250, top_p 0, temperature 1), with top_k capped at the model's card. Without\n"
      "--condition-state generation is unconditional (null conditions + CFG, as generate_unconditional).\n\n"
      "Examples:\n"
      "  mgcheck generate exports/x --out gen.pt --duration 2 --wav-dir wavs\n"
      "  mgcheck generate exports/x --out codes.pt --greedy --no-decode\n"
      "Exit 0 written, 1 the target is defective or the audio fails its checks, 3 usage, 4 internal error.");
  static harness::ReportOptions opts_storage{};  // lives as long as the CLI (no leak)
  auto* opts = &opts_storage;
  static harness::GenerateOptions g_storage{};  // lives as long as the CLI (no leak)
  auto* g = &g_storage;
  static std::string target_storage{};  // lives as long as the CLI (no leak)
  auto* target = &target_storage;
  static int64_t frames_storage{0};  // lives as long as the CLI (no leak)
  auto* frames = &frames_storage;
  cmd->add_option("TARGET", *target, "export directory, file, or Hugging Face repo id (offline)")->required();
  cmd->add_option("--out", g->out, "output torch.save file")->required()->type_name("FILE.pt");
  cmd->add_option("--duration", g->duration, "seconds to generate")->default_val(g->duration);
  cmd->add_option("--frames", *frames, "frames to generate (overrides --duration)");
  cmd->add_option("--batch", g->batch, "items")->default_val(g->batch)->check(CLI::Range(1, 256));
  auto* greedy = cmd->add_flag("--greedy", g->greedy, "argmax decoding instead of sampling");
  cmd->add_option("--top-k", g->top_k, "top-k sampling (min(top_k, card) is used)")->default_val(g->top_k)->excludes(greedy);
  cmd->add_option("--top-p", g->top_p, "top-p sampling (0: off)")->default_val(g->top_p)->excludes(greedy);
  cmd->add_option("--temperature", g->temperature, "sampling temperature")->default_val(g->temperature)->excludes(greedy);
  static double cfg_text_storage = 0;  // parsed again by each() into the optional cfg (no leak)
  cmd->add_option("--cfg", cfg_text_storage, "classifier-free guidance coefficient (default: the file's, else 3.0)")
      ->each([g](const std::string& s) { g->cfg = std::stod(s); });
  cmd->add_option("--seed", g->seed, "sampling seed")->default_val(g->seed);
  cmd->add_option("--condition-state", g->condition_state, "text state {'hidden': [L, D], 'mask': [L]}")
      ->type_name("FILE.pt");
  cmd->add_option("--device", g->run.device, "cpu or cuda")->default_val(g->run.device);
  cmd->add_option("--precision", g->run.precision, "fp32, bf16 or fp16")->default_val(g->run.precision);
  cmd->add_option("--threads", g->run.threads, "torch intra-op threads")->default_val(g->run.threads);
  cmd->add_flag("--no-decode", g->no_decode, "codes only: the compression model is not needed");
  cmd->add_option("--wav-dir", g->wav_dir, "also write each item as a 32-bit float WAV")->type_name("DIR");
  cmd->add_flag("--force", g->run.force, "replace an existing --out file");
  harness::add_report_options(cmd, *opts);
  cmd->callback([&ctx, opts, g, target, frames] {
    harness::Report report;
    report.command = "generate";
    report.target = *target;
    ctx.exit_code = harness::run_guarded(report, *opts, [&] {
      if (!harness::apply_limits(report, *opts)) return harness::finish_report(report, *opts);
      if (*frames > 0) g->frames = *frames;
      harness::run_generate(*target, *g, report);
      report.command = "generate";
      return harness::finish_report(report, *opts);
    });
  });
}

}  // namespace mgcheck::cli
