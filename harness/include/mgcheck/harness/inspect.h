// `mgcheck inspect FILE`: parse one torch.save file strictly and describe it (contract §2).
#pragma once
#include <string>

#include "mgcheck/harness/report.h"

namespace mgcheck::harness {

// Fills `report` (command "inspect"): file info, findings, and extra["inspect"] = {format, folder,
// records, structure, tensors, globals}. Never throws for bad input.
void run_inspect(const std::string& path, Report& report);

// Human-readable rendering of extra["inspect"] (printed before the findings).
void print_inspect(const Report& report, std::ostream& out);

}  // namespace mgcheck::harness
