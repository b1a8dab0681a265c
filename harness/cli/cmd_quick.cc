// mgcheck quick TARGET: every check that needs no model (contract §2), in well under a second.
#include "commands.h"
#include "mgcheck/harness/quick.h"

namespace mgcheck::cli {

void register_quick(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "quick",
      "Check a MusicGen export without building the model: both files through the strict reader (zip/legacy,\n"
      "pickle allowlist, tensors vs storages, CRC of every record), the export schema AudioCraft's loaders\n"
      "expect, xp.cfg (YAML + OmegaConf interpolation), the expected-vs-found tensor inventory derived from\n"
      "xp.cfg, LM/EnCodec consistency, and a NaN/Inf/all-zero scan of every weight. No libtorch.\n\n"
      "TARGET: an export directory (state_dict.bin + compression_state_dict.bin), one file (checked in the\n"
      "role its content says), or a Hugging Face repo id found offline in $AUDIOCRAFT_CACHE_DIR or the HF cache.\n"
      "Exit 0 pass, 1 fail, 2 unsafe, 3 usage, 4 internal error.\n\n"
      "Examples:\n"
      "  mgcheck quick exports/my-finetune\n"
      "  mgcheck quick facebook/musicgen-small --json report.json --junit junit.xml\n"
      "  mgcheck quick exports/x --strict --sarif results.sarif");
  static harness::ReportOptions opts_storage{};  // lives as long as the CLI (no leak)
  auto* opts = &opts_storage;
  static std::string target_storage{};  // lives as long as the CLI (no leak)
  auto* target = &target_storage;
  static bool no_crc_storage{false};  // lives as long as the CLI (no leak)
  auto* no_crc = &no_crc_storage;
  cmd->add_option("TARGET", *target, "export directory, file, or Hugging Face repo id")->required();
  cmd->add_flag("--no-crc", *no_crc, "skip CRC-32 verification of zip records (faster; torch never checks them)");
  harness::add_report_options(cmd, *opts);
  cmd->callback([&ctx, opts, target, no_crc] {
    harness::Report report;
    report.command = "quick";
    report.target = *target;
    ctx.exit_code = harness::run_guarded(report, *opts, [&] {
      if (!harness::apply_limits(report, *opts)) return harness::finish_report(report, *opts);
      harness::QuickOptions qo;
      qo.verify_crc = !*no_crc;
      qo.hash = !opts->json.empty();  // files[].sha256 appears in the JSON report only
      (void)harness::run_quick(*target, qo, report);
      return harness::finish_report(report, *opts);
    });
  });
}

}  // namespace mgcheck::cli
