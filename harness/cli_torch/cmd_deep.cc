// mgcheck deep TARGET: quick, then the device × precision × config matrix with audio checks (contract §4).
#include <unistd.h>

#include "../deep/tools.h"
#include "mgcheck/harness/matrix.h"
#include "torch_commands.h"

namespace mgcheck::cli {

void register_deep(CLI::App& app, TorchContext& ctx) {
  auto* cmd = app.add_subcommand(
      "deep",
      "Everything `quick` checks, then rebuild the LM and EnCodec with libtorch, generate, decode and check the\n"
      "audio over a matrix of cells: device x precision x config. Configs: unconditional (null conditions, CFG,\n"
      "greedy), text (a deterministic non-zero text state, or --condition-state, through the model's own text\n"
      "conditioner, CFG, greedy), sampled (CFG, top-k = min(--top-k, card), fixed --seed). Each cell runs in\n"
      "isolation: an error or OOM in one cell fails that cell only. Audio is measured raw (never clamped):\n"
      "a cell fails on NaN/Inf, silence, clipping or DC, and warns on near-silence and stuck codes.\n"
      "bf16/fp16 cells are compared with the fp32 cell (tolerances printed in the report).\n\n"
      "Examples:\n"
      "  mgcheck deep exports/my-finetune\n"
      "  mgcheck deep exports/x --precisions fp32,bf16 --html report.html --wav-dir wavs\n"
      "  mgcheck deep corpus/audiocraft-tiny/a_small_like --reference corpus/audiocraft-tiny/a_small_like/refs.pt\n"
      "Exit 0 pass, 1 fail, 2 unsafe, 3 usage, 4 internal error.");
  static harness::ReportOptions opts_storage{};  // lives as long as the CLI (no leak)
  auto* opts = &opts_storage;
  static harness::MatrixOptions m_storage{};  // lives as long as the CLI (no leak)
  auto* m = &m_storage;
  static std::string target_storage{};  // lives as long as the CLI (no leak)
  auto* target = &target_storage;
  static std::string devices_storage{"cpu"};  // lives as long as the CLI (no leak)
  auto* devices = &devices_storage;
  static std::string precisions_storage{"fp32"};  // lives as long as the CLI (no leak)
  auto* precisions = &precisions_storage;
  static std::string configs_storage{"all"};  // lives as long as the CLI (no leak)
  auto* configs = &configs_storage;
  static int64_t frames_storage{0};  // lives as long as the CLI (no leak)
  auto* frames = &frames_storage;
  cmd->add_option("TARGET", *target, "export directory, file, or Hugging Face repo id (offline)")->required();
  cmd->add_option("--devices", *devices, "cpu, cuda or all (cuda absent: skipped cells)")->default_str("cpu");
  cmd->add_option("--precisions", *precisions, "fp32, bf16, fp16 or all")->default_str("fp32");
  cmd->add_option("--configs", *configs, "unconditional, text, sampled or all")->default_str("all");
  cmd->add_option("--duration", m->duration, "seconds generated per cell (frames = int(duration * frame rate))")
      ->default_val(m->duration);
  cmd->add_option("--frames", *frames, "frames per cell (overrides --duration)");
  cmd->add_option("--batch", m->batch, "items per cell")->default_val(m->batch)->check(CLI::Range(1, 64));
  cmd->add_option("--seed", m->seed, "seed of the sampling cells")->default_val(m->seed);
  cmd->add_option("--threads", m->threads, "torch intra-op threads")->default_val(m->threads)->check(CLI::Range(1, 256));
  cmd->add_option("--blas-threads", m->blas_threads, "OpenBLAS threads")->default_val(m->blas_threads)
      ->check(CLI::Range(1, 256));
  cmd->add_option("--top-k", m->top_k, "top-k of the sampled cell (AudioCraft's default; min(top_k, card) is used)")
      ->default_val(m->top_k);
  cmd->add_option("--top-p", m->top_p, "top-p of the sampled cell (0: off)")->default_val(m->top_p);
  cmd->add_option("--temperature", m->temperature, "temperature of the sampled cell")->default_val(m->temperature);
  static double cfg_text_storage = 0;  // parsed again by each() into the optional cfg (no leak)
  cmd->add_option("--cfg", cfg_text_storage, "classifier-free guidance coefficient (default: the file's inference_coef)")
      ->each([m](const std::string& s) { m->cfg = std::stod(s); });
  cmd->add_option("--condition-state", m->condition_state,
                  "text state for the text cells: torch.save {'hidden': [L, D], 'mask': [L]}")->type_name("FILE.pt");
  cmd->add_flag("--no-generate", m->no_generate, "build the models and run one forward each (NaN/Inf only)");
  cmd->add_option("--wav-dir", m->wav_dir, "write each cell's audio as 32-bit float WAVs (exact decoder output)")
      ->type_name("DIR");
  cmd->add_option("--html", m->html, "write a self-contained HTML report (waveforms, spectrograms, players)")
      ->type_name("FILE");
  cmd->add_option("--reference", m->reference, "compare every stage present in an AudioCraft refs.pt")
      ->type_name("refs.pt");
  auto& t = m->thresholds;
  cmd->add_option("--silence-dbfs", t.silence_rms_dbfs, "fail below this RMS (dBFS)")->default_val(t.silence_rms_dbfs);
  cmd->add_option("--near-silence-dbfs", t.near_silence_rms_dbfs, "warn below this RMS (dBFS)")
      ->default_val(t.near_silence_rms_dbfs);
  cmd->add_option("--max-silent-run", t.silent_run_fraction, "fail when digital silence lasts longer than this share of the clip")
      ->default_val(t.silent_run_fraction);
  cmd->add_option("--max-clip", t.clip_fraction, "fail when more than this share of samples is at/over 0.999 FS")
      ->default_val(t.clip_fraction);
  cmd->add_option("--max-dc", t.dc_abs, "fail when |mean| of an item/channel exceeds this")->default_val(t.dc_abs);
  cmd->add_option("--max-stuck", t.stuck_fraction, "warn when codebook streams repeat one code this much (0..1)")
      ->default_val(t.stuck_fraction);
  harness::add_report_options(cmd, *opts);
  cmd->footer(
      "Threads are set deliberately (default 1 torch thread, 2 OpenBLAS threads) and reported in the JSON\n"
      "`environment`. Progress goes to stderr when it is a terminal. Audio files are 32-bit float WAV at the\n"
      "model's rate, never normalised. See docs/checks/deep.md.");
  cmd->callback([&ctx, opts, m, target, devices, precisions, configs, frames] {
    harness::Report report;
    report.command = "deep";
    report.target = *target;
    ctx.exit_code = harness::run_guarded(report, *opts, [&] {
      if (!harness::apply_limits(report, *opts)) return harness::finish_report(report, *opts);
      std::string err;
      if (!harness::parse_list(*devices, {"cpu", "cuda"}, m->devices, err))
        return harness::usage_error(report, *opts, "--devices: " + err, "e.g. --devices cpu,cuda");
      if (!harness::parse_list(*precisions, harness::all_precisions(), m->precisions, err))
        return harness::usage_error(report, *opts, "--precisions: " + err, "e.g. --precisions fp32,bf16");
      if (!harness::parse_list(*configs, harness::all_configs(), m->configs, err))
        return harness::usage_error(report, *opts, "--configs: " + err, "e.g. --configs unconditional,sampled");
      if (*frames > 0) m->frames = *frames;
      if (!(m->duration > 0) && !m->frames)
        return harness::usage_error(report, *opts, "--duration must be positive", "e.g. --duration 0.5");
      m->progress = isatty(2) && !opts->quiet;
      harness::run_deep(*target, *m, report);
      return harness::finish_report(report, *opts);
    });
  });
}

}  // namespace mgcheck::cli
