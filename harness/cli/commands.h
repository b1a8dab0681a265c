// The CLI's commands, one file each. Each registers a CLI11 subcommand whose callback sets the exit code.
#pragma once
#include <CLI/CLI.hpp>

#include "mgcheck/harness/cli_common.h"

namespace mgcheck::cli {

struct Context {
  int exit_code = 0;
};

void register_inspect(CLI::App& app, Context& ctx);
void register_quick(CLI::App& app, Context& ctx);
void register_export(CLI::App& app, Context& ctx);

}  // namespace mgcheck::cli
