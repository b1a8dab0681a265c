// mgcheck inspect FILE: parse one torch.save file strictly and print its structure (contract §2).
#include <filesystem>

#include "commands.h"
#include "mgcheck/harness/inspect.h"

namespace mgcheck::cli {

void register_inspect(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "inspect",
      "Parse one torch.save file strictly (zip or legacy) without executing anything, and print its format,\n"
      "archive folder, records, top-level structure, every tensor (name, dtype, shape, strides, storage offset,\n"
      "bytes) and every pickle GLOBAL it references. Exit 0 pass, 1 fail, 2 unsafe, 3 usage, 4 internal error.");
  static harness::ReportOptions opts_storage{};  // lives as long as the CLI (no leak)
  auto* opts = &opts_storage;
  static std::string file_storage{};  // lives as long as the CLI (no leak)
  auto* file = &file_storage;
  cmd->add_option("FILE", *file, "the torch.save file (e.g. state_dict.bin)")->required();
  harness::add_report_options(cmd, *opts);
  cmd->callback([&ctx, opts, file] {
    harness::Report report;
    report.command = "inspect";
    report.target = *file;
    ctx.exit_code = harness::run_guarded(report, *opts, [&] {
      if (!harness::apply_limits(report, *opts)) return harness::finish_report(report, *opts);
      std::error_code ec;
      if (!std::filesystem::exists(*file, ec))
        return harness::usage_error(report, *opts, "no such file: " + *file,
                                    "check the path; inspect takes one file, e.g. DIR/state_dict.bin");
      harness::run_inspect(*file, report);
      return harness::finish_report(report, *opts, harness::print_inspect);
    });
  });
}

}  // namespace mgcheck::cli
