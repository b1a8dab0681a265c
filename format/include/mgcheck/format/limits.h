// Every budget mgcheck enforces, in one struct (contract §7; flatbuffers' Verifier style).
// Defaults accept every checkpoint AudioCraft has released (largest ~6.5 GB in one file) and reject
// bombs. Each field is settable with `--limit NAME=VALUE` and echoed in the JSON report; the table in
// limits.cc is the single place that maps names to fields, and docs/limits.md documents each one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mgcheck/format/result.h"

namespace mgcheck::format {

struct Limits {
  // Container (zip / legacy)
  uint64_t max_file_bytes = 64ull << 30;        // 64 GiB: larger inputs are refused up front
  uint64_t max_records = 100000;                 // zip entries
  uint64_t max_central_directory_bytes = 64ull << 20;
  uint64_t max_name_bytes = 4096;                // one record name
  uint64_t max_pickle_bytes = 256ull << 20;      // data.pkl (or one legacy pickle)
  // Pickle machine
  uint64_t max_pickle_opcodes = 50000000;
  uint64_t max_memo_entries = 10000000;
  uint64_t max_nesting_depth = 64;               // MARK frames and container nesting
  uint64_t max_string_bytes = 256ull << 20;      // one str/bytes value
  uint64_t max_objects = 20000000;               // values built in total (a DAG bound, not a tree bound)
  uint64_t max_int_bytes = 8;                    // LONG1 payload used as a size/stride/offset/numel
  // Working memory of one pickle run (values ~80 bytes each, their strings and item lists, stack, memo,
  // side tables). The raw training checkpoint fixture needs < 1 MiB; musicgen-large (~1,000 tensors of
  // ~20 values) ~2 MiB; a training checkpoint with 100 k values ~10 MiB. 128 MiB (~1.5 M values) keeps
  // the process's peak anonymous memory under 256 MiB for any input.
  uint64_t max_pickle_memory_bytes = 128ull << 20;
  // Tensors
  uint64_t max_tensors = 20000;
  uint64_t max_rank = 16;
  uint64_t max_tensor_elements = 1ull << 40;     // one tensor
  uint64_t max_total_storage_bytes = 64ull << 30; // also never more than the file holds
  // xp.cfg (the YAML config inside an export). Released configs are ~10 KB with ~1,500 nodes; deriving
  // the LM or compression config of the bundled tiny exports costs 61-71 resolution steps and ~200 bytes.
  uint64_t max_config_bytes = 4ull << 20;            // the YAML text
  uint64_t max_config_nodes = 200000;                // after expanding aliases (billion-laughs guard)
  uint64_t max_config_depth = 64;                    // mapping/sequence nesting
  uint64_t max_config_interpolation_hops = 32;       // chained ${...} references in one read
  uint64_t max_config_string_bytes = 1ull << 20;     // one string built by string interpolation
  // Work of all reads of one document together (an interpolation bomb such as `a1: ${a0}${a0}` ...
  // `a20: ${a19}${a19}` read from many fields must not cost minutes).
  uint64_t max_config_interpolation_steps = 10000;   // node resolutions
  uint64_t max_config_interpolation_bytes = 64ull << 20;  // scalar text scanned + string bytes built
  // Reports
  uint64_t max_findings = 10000;

  struct Entry {
    const char* name;
    uint64_t Limits::*field;
    const char* doc;
  };
  // The table of every limit, in documentation order.
  static const std::vector<Entry>& table();
  // Parses "NAME=VALUE" (VALUE decimal, optional K/M/G/T binary suffix). Error: MG-IO-LIMIT.
  Status set(const std::string& assignment);
};

}  // namespace mgcheck::format
