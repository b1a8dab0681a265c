#!/usr/bin/python3
"""Byte mutants of the bundled checkpoints through the CLI: every report stays a valid document.

Mutates corpus/audiocraft-tiny/*/state_dict.bin with a fixed seed (1-8 random bytes overwritten, or a
byte run inserted/deleted, or the tail cut) and runs `mgcheck inspect MUTANT --json -` and
`mgcheck quick MUTANT --json -` on each. Bad input is a finding, never an internal error: the exit code
must be 0, 1 or 2 (never 3 or 4, never a signal) and stdout must parse as one JSON object whose
`exit_code` equals the process's exit code. A few mutants are also rendered as JUnit and SARIF.

usage: report_mutants.py MGCHECK SOURCE_DIR [--count N] [--seed S] [--keep DIR]
Prints the failures and a summary line; exit status 1 when any mutant failed.
"""
import argparse
import glob
import json
import os
import random
import subprocess
import sys
import tempfile


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.random()
    if kind < 0.6:  # overwrite a few bytes (the case that hits zip record names and pickle strings)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind < 0.75:  # insert a run
        pos = rng.randrange(len(b) + 1)
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind < 0.9:  # delete a run
        pos = rng.randrange(len(b))
        del b[pos:pos + rng.randint(1, 16)]
    else:  # cut the tail
        del b[rng.randrange(len(b)):]
    return bytes(b)


def check(cmd, path, fmt="json"):
    """Returns None when the report is valid, else a one-line reason."""
    out_flag = {"json": "--json", "junit": "--junit", "sarif": "--sarif"}[fmt]
    p = subprocess.run(cmd + [path, out_flag, "-", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if p.returncode < 0 or p.returncode not in (0, 1, 2):
        return f"exit {p.returncode}: {p.stderr.decode(errors='replace')[-200:].strip()}"
    if fmt == "junit":
        import xml.dom.minidom
        try:
            xml.dom.minidom.parseString(p.stdout)
        except Exception as e:  # noqa: BLE001
            return f"JUnit does not parse: {e}"
        return None
    try:
        doc = json.loads(p.stdout.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"{fmt} does not parse: {e}"
    if fmt == "json" and doc.get("exit_code") != p.returncode:
        return f"JSON exit_code {doc.get('exit_code')} != process exit {p.returncode}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mgcheck")
    ap.add_argument("source_dir")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--keep", help="copy failing mutants here")
    a = ap.parse_args()
    seeds = sorted(glob.glob(os.path.join(a.source_dir, "corpus/audiocraft-tiny/*/state_dict.bin")))
    if not seeds:
        print("no corpus/audiocraft-tiny/*/state_dict.bin", file=sys.stderr)
        return 2
    originals = [open(s, "rb").read() for s in seeds]
    rng = random.Random(a.seed)
    failures = {"inspect": 0, "quick": 0}
    with tempfile.TemporaryDirectory(prefix="mgcheck-mutants-") as tmp:
        for i in range(a.count):
            k = rng.randrange(len(originals))
            path = os.path.join(tmp, "state_dict.bin")
            with open(path, "wb") as f:
                f.write(mutate(originals[k], rng))
            fmts = ["json"] + (["junit", "sarif"] if i % 10 == 0 else [])
            for command in ("inspect", "quick"):
                for fmt in fmts:
                    why = check([a.mgcheck, command], path, fmt)
                    if why is None:
                        continue
                    failures[command] += 1
                    print(f"mutant {i} of {os.path.relpath(seeds[k], a.source_dir)}: {command} {fmt}: {why}")
                    if a.keep:
                        os.makedirs(a.keep, exist_ok=True)
                        with open(path, "rb") as src, open(os.path.join(a.keep, f"mutant-{i}.bin"), "wb") as dst:
                            dst.write(src.read())
                    break
    print(f"{a.count} mutants (seed {a.seed}): inspect failures {failures['inspect']}, "
          f"quick failures {failures['quick']}")
    return 1 if any(failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
