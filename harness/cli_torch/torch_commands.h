// The libtorch half of the CLI (mgcheck-torch, exec'd by mgcheck for deep/generate/encode/decode): one
// file per command, each registering a CLI11 subcommand whose callback sets the exit code.
#pragma once
#include <CLI/CLI.hpp>

#include "mgcheck/harness/cli_common.h"

namespace mgcheck::cli {

struct TorchContext {
  int exit_code = 0;
};

void register_deep(CLI::App& app, TorchContext& ctx);
void register_generate(CLI::App& app, TorchContext& ctx);
void register_encode(CLI::App& app, TorchContext& ctx);
void register_decode(CLI::App& app, TorchContext& ctx);

}  // namespace mgcheck::cli
