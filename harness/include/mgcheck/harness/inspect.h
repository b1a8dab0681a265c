// `mgcheck inspect FILE`: parse one torch.save file strictly and describe it (contract §2).
#pragma once
#include <string>

#include "mgcheck/format/byte_source.h"
#include "mgcheck/harness/report.h"

namespace mgcheck::harness {

// Fills `report` (command "inspect"): file info, findings, and extra["inspect"] = {format, folder,
// records, structure, tensors, globals}. Never throws for bad input.
// When the file is refused (a fatal finding), extra["inspect"] still describes what was read up to that
// point — complete: false, stopped_at {code, offset}, the records, every GLOBAL seen, the tensors rebuilt
// so far (unnamed: the tree never completed) — so a reviewer sees what the file tried; {} when not even
// the container could be read. Names that are not valid UTF-8 carry name_hex (text.h).
void run_inspect(const std::string& path, Report& report);
// The same on bytes already open (the fuzz target and tests serve them from memory); `path` names them.
void run_inspect(const format::ByteSource& src, const std::string& path, Report& report);

// Human-readable rendering of extra["inspect"] (printed before the findings).
void print_inspect(const Report& report, std::ostream& out);

}  // namespace mgcheck::harness
