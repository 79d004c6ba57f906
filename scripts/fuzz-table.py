#!/usr/bin/env python3
"""The results table of docs/fuzzing.md, as scripts/fuzz-long.sh keeps it.

A target's row is its campaign on one build: the runs of the same target binary (its
SHA-256, first 16 hex digits) add up, each starting from the corpus the runs before it left,
as libFuzzer resumes a campaign; a new build (any change to the code the target links, the
toolchain or the sanitizer) starts a new row. Executions and crashes are summed, the slowest
unit and the peak RSS are the largest of the runs, coverage is the last run's (it loads the
corpus, so it covers what the earlier runs found).

  fuzz-table.py previous DOC CRATE TARGET BUILD
      prints the executions the table holds for TARGET of CRATE on BUILD (0 if none)
  fuzz-table.py write DOC COMMAND MACHINE CRATE TARGET BUILD EXECUTIONS COV FT CRASHES
                SLOWEST_S PEAK_RSS_MB BUDGET TOOK_S DATE
      adds one finished run to the table (and COMMAND to the list of runs, once)
  fuzz-table.py test
      checks the above on a table made here
"""

import fcntl
import re
import sys

START, END = "<!-- fuzz-long:start -->", "<!-- fuzz-long:end -->"
HEADER = "| crate | target | executions | coverage (cov / ft) | crashes | slowest unit | peak RSS | run |"
# The run column: "<budget of the last run>; build `<16 hex>`: <n> run(s), <seconds> s, <date>[ to <date>]"
RUN = re.compile(
    r"^(?P<budget>.*); build `(?P<build>[0-9a-f]{16})`: (?P<runs>\d+) runs?, "
    r"(?P<secs>\d+) s, (?P<first>\d{4}-\d\d-\d\d)(?: to (?P<last>\d{4}-\d\d-\d\d))?$"
)


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def key(line):
    c = cells(line)
    return (c[0].strip("`"), c[1].strip("`"))


def number(text):
    m = re.match(r"^(\d+)", text.replace(",", ""))
    return int(m.group(1)) if m else 0


def read(doc):
    """(match of the section, its command lines, its rows by (crate, target))."""
    m = re.search(re.escape(START) + "(.*?)" + re.escape(END), doc, flags=re.S)
    lines = m.group(1).splitlines() if m else []
    rows = {}
    for line in lines:
        if not line.startswith("| `"):
            continue
        # Rows of the earlier seven-column layout get an unknown run.
        if len(cells(line)) == 7:
            line = line.rstrip() + " an earlier run |"
        rows[key(line)] = line
    commands = [l for l in lines if l.startswith("- `")]
    return m, commands, rows


def campaign(row, build):
    """The row's figures when it is a campaign on `build`, else None."""
    if row is None:
        return None
    c = cells(row)
    run = RUN.match(c[7])
    if not run or run.group("build") != build:
        return None
    return {
        "executions": number(c[2]),
        "crashes": number(c[4]),
        "slowest": number(c[5]),
        "rss": number(c[6]),
        "runs": int(run.group("runs")),
        "secs": int(run.group("secs")),
        "first": run.group("first"),
    }


def previous(doc, crate, target, build):
    _, _, rows = read(doc)
    before = campaign(rows.get((crate, target)), build)
    return before["executions"] if before else 0


def write(doc, command, machine, crate, target, build, executions, cov, ft, crashes,
          slowest, rss, budget, took, date):
    m, commands, rows = read(doc)
    before = campaign(rows.get((crate, target)), build) or {
        "executions": 0, "crashes": 0, "slowest": 0, "rss": 0, "runs": 0, "secs": 0,
        "first": date,
    }
    runs = before["runs"] + 1
    dates = date if before["first"] == date else f"{before['first']} to {date}"
    run = (f"{budget}; build `{build}`: {runs} run{'s' if runs > 1 else ''}, "
           f"{before['secs'] + int(took)} s, {dates}")
    rows[(crate, target)] = (
        f"| `{crate}` | `{target}` | {before['executions'] + int(executions)} | "
        f"{cov or '?'} / {ft or '?'} | {before['crashes'] + int(crashes)} | "
        f"{max(before['slowest'], number(slowest))} s | {max(before['rss'], number(rss))} MB | "
        f"{run} |"
    )
    line = f"- `{command}` ({machine})"
    if line not in commands:
        commands.append(line)
    table = "\n".join([
        "Runs (a target's row adds up its runs on one build; a new build starts a new row):",
        "",
        *commands,
        "",
        HEADER,
        "|---|---|---|---|---|---|---|---|",
        *[rows[k] for k in sorted(rows)],
        "",
    ])
    new = f"{START}\n{table}{END}"
    if m:
        return doc[:m.start()] + new + doc[m.end():]
    return doc.rstrip("\n") + "\n\n" + new + "\n"


def test():
    doc = "# Fuzzing\n\n" + START + "\nRuns:\n\n- `old` (2 cores)\n\n" + HEADER + "\n|---|\n" \
        "| `v` | `old_layout` | 5 | 1 / 2 | 0 | 0 s | 9 MB |\n" \
        "| `v` | `t` | 7503445 | 1340 / 1984 | 0 | 0 s | 31 MB | 1800 s: 1801 s, 2026-12-07 |\n" \
        + END + "\nafter\n"
    # A row without a build is no campaign: nothing to add to.
    assert previous(doc, "v", "t", "0123456789abcdef") == 0
    one = write(doc, "cmd a", "2 cores", "v", "t", "0123456789abcdef", 6000000, 1400, 2000,
                0, "0", "40", "1800 s or 10000000 executions", 1800, "2026-12-07")
    assert previous(one, "v", "t", "0123456789abcdef") == 6000000
    assert previous(one, "v", "t", "fedcba9876543210") == 0
    assert previous(one, "v", "other", "0123456789abcdef") == 0
    two = write(one, "cmd b", "2 cores", "v", "t", "0123456789abcdef", 4000000, 1500, 2100,
                1, "2", "35", "1200 s or 4000000 executions", 1100, "2026-12-08")
    row = [l for l in two.splitlines() if l.startswith("| `v` | `t` |")]
    assert row == ["| `v` | `t` | 10000000 | 1500 / 2100 | 1 | 2 s | 40 MB | "
                   "1200 s or 4000000 executions; build `0123456789abcdef`: 2 runs, 2900 s, "
                   "2026-12-07 to 2026-12-08 |"], row
    assert previous(two, "v", "t", "0123456789abcdef") == 10000000
    # Another build starts again.
    three = write(two, "cmd b", "2 cores", "v", "t", "fedcba9876543210", 10, 1, 1, 0, "0",
                  "30", "60 s", 60, "2026-12-09")
    assert previous(three, "v", "t", "fedcba9876543210") == 10
    assert previous(three, "v", "t", "0123456789abcdef") == 0
    # Other rows, the old layout, the text around the section and each command once.
    assert "| `v` | `old_layout` | 5 | 1 / 2 | 0 | 0 s | 9 MB | an earlier run |" in three
    assert three.startswith("# Fuzzing\n\n") and three.endswith(END + "\nafter\n")
    assert [l for l in three.splitlines() if l.startswith("- `")] == [
        "- `old` (2 cores)", "- `cmd a` (2 cores)", "- `cmd b` (2 cores)"]
    # The same row written twice from the same document is the same document.
    assert write(one, "cmd a", "2 cores", "v", "t", "fedcba9876543210", 1, 1, 1, 0, "0", "1",
                 "1 s", 1, "2026-12-07") == write(
        one, "cmd a", "2 cores", "v", "t", "fedcba9876543210", 1, 1, 1, 0, "0", "1", "1 s", 1,
        "2026-12-07")
    print("fuzz-table: ok")


def main(argv):
    if argv[:1] == ["test"] and len(argv) == 1:
        test()
        return 0
    if argv[:1] == ["previous"] and len(argv) == 5:
        with open(argv[1]) as f:
            print(previous(f.read(), *argv[2:5]))
        return 0
    if argv[:1] == ["write"] and len(argv) == 16:
        # Two runs may finish at once (one per core): the read, the change and the write are
        # one step under an exclusive lock on the document.
        with open(argv[1], "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            doc = write(f.read(), *argv[2:])
            f.seek(0)
            f.truncate()
            f.write(doc)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
